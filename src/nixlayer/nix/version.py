"""Which Nix we talk to, and which CLI dialect it speaks (read by nixjson/version.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
    """`nix --version` output, read by the typed boundary (nix/nixjson/version.py)."""
    from nixlayer.nix.nixjson.version import parse

    return parse(text)
