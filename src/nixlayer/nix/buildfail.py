"""How Nix names a failed builder, in every version's words.

Nix 2.8 to 2.2x: "builder for '<drv>' failed with exit code N;" and "For full logs, run
'nix log <drv>'.". Nix 2.3x (2.34): "Cannot build '<drv>'.\\n Reason: builder failed with
exit code N." and "For full logs, run:\\n  nix log <drv>". A derivation that failed only
because a dependency did ("Reason: 1 dependency failed") is not a failed builder.
"""

from __future__ import annotations

import re

FAILED_BUILDER = re.compile(
    r"builder for '(?P<old>/nix/store/[^']+\.drv)' failed with exit code (?P<old_code>\d+)"
    r"|Cannot build '(?P<new>/nix/store/[^']+\.drv)'\.\s*Reason: builder failed with exit code"
    r" (?P<new_code>\d+)"
)
LOG_HINT = re.compile(r"For full logs, run(?: '|:\s+)(nix log /nix/store/[^'\s]+\.drv)")


def failed_builder(text: str) -> tuple[str, int] | None:
    """The first derivation whose builder failed in `text`, and its exit code."""
    m = FAILED_BUILDER.search(text)
    if m is None:
        return None
    drv = m.group("old") or m.group("new")
    return drv, int(m.group("old_code") or m.group("new_code"))


def builder_line(drv: str, code: int) -> str:
    """One wording for every version (the older one, which names the builder)."""
    return f"builder for '{drv}' failed with exit code {code}"


def log_hint(text: str) -> str | None:
    """Nix's own `nix log <drv>` hint, whichever way this version phrased it."""
    m = LOG_HINT.search(text)
    return m.group(1) if m else None
