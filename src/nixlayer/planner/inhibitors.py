"""Switch inhibitors: named values that must not change under a running system.

NixOS (nixpkgs PRs 473282, 477800, 510514) writes `system.switch.inhibitors`, an attribute
set of names to strings (usually store paths, e.g. systemd's and dbus's), as JSON to
`$toplevel/switch-inhibitors`. switch-to-configuration's pre-switch check compares the
running system's file with the new one's: a name present in both with a different value
refuses `switch` and `test` (exit 1, "Pre-switch checks failed"); names present on one side
only do not count. `boot` and `dry-activate` skip the check, and so does `NIXOS_NO_CHECK=1`.
A missing file means no inhibitors; a file that is not such a JSON object is an error
(nixpkgs fails loudly rather than treating it as empty).

API:
- `read_inhibitors(toplevel) -> dict[str, str]`: a system's inhibitors ({} without the file);
  raises `InputError` (field: the file) when it is malformed.
- `inhibitor_verdict(current, new) -> InhibitorVerdict`: the names whose values differ.
- `check_applies(action, environ) -> str | None`: why the check is skipped, or None when
  switch-to-configuration would run it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nixlayer.errors import InputError

INHIBITORS_FILE = "switch-inhibitors"
UNCHECKED_ACTIONS = frozenset({"boot", "dry-activate"})


@dataclass(frozen=True)
class InhibitorVerdict:
    """`differing`: name -> (current value, new value), for names in both systems."""

    differing: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def inhibited(self) -> bool:
        return bool(self.differing)

    @property
    def names(self) -> list[str]:
        return sorted(self.differing)

    def describe(self) -> str:
        return "; ".join(f"{n}: {a} -> {b}" for n, (a, b) in sorted(self.differing.items()))


def read_inhibitors(toplevel: Path) -> dict[str, str]:
    path = toplevel / INHIBITORS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"not valid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(str(path), "expected a JSON object of names to strings")
    return {str(k): v for k, v in data.items()}


def inhibitor_verdict(current: Mapping[str, str], new: Mapping[str, str]) -> InhibitorVerdict:
    return InhibitorVerdict(
        {
            name: (current[name], new[name])
            for name in sorted(current)
            if name in new and current[name] != new[name]
        }
    )


def check_applies(action: str, environ: Mapping[str, str]) -> str | None:
    """None when switch-to-configuration runs the inhibitor check for `action`."""
    if action in UNCHECKED_ACTIONS:
        return f"{action} skips the switch-inhibitor check"
    if environ.get("NIXOS_NO_CHECK") == "1":
        return "NIXOS_NO_CHECK=1 skips the pre-switch checks"
    return None
