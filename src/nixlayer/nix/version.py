"""Which Nix we talk to, and which CLI dialect it speaks."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


class Dialect(enum.Enum):
    """`MODERN`: Nix >= 2.19 and Lix (`nix flake update --flake REF INPUT...`).
    `LEGACY`: older Nix (`nix flake lock REF --update-input INPUT`)."""

    MODERN = "modern"
    LEGACY = "legacy"


@dataclass(frozen=True)
class NixVersion:
    implementation: str  # "nix", "lix" or "determinate"
    version: tuple[int, int, int]
    text: str

    @property
    def dialect(self) -> Dialect:
        if self.implementation == "lix" or self.version >= (2, 19, 0):
            return Dialect.MODERN
        return Dialect.LEGACY


def parse_version(text: str) -> NixVersion:
    """Parse `nix --version` output, e.g. `nix (Nix) 2.8.0`, `nix (Lix, like Nix) 2.91.1`,
    `nix (Determinate Nix 3.6.2) 2.29.0`."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    lowered = first.lower()
    if "lix" in lowered:
        impl = "lix"
    elif "determinate" in lowered:
        impl = "determinate"
    else:
        impl = "nix"
    # The Nix version is the last dotted number on the line (Determinate puts its own first).
    matches = list(_VERSION_RE.finditer(first))
    if not matches:
        raise ValueError(f"cannot read a version from {first!r}")
    m = matches[-1]
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    return NixVersion(implementation=impl, version=version, text=first)
