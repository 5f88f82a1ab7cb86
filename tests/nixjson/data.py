"""The outputs captured from each real Nix version (scripts/capture-nix-json)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent.parent / "data" / "nix-json"
VERSIONS = sorted(
    (p.name for p in DATA.iterdir() if p.is_dir()), key=lambda v: tuple(map(int, v.split(".")))
)
# The captures ran in one fixed directory, so every version names the same paths.
WORK = "/tmp/nixlayer-capture"


def read(version: str, name: str) -> str:
    return (DATA / version / name).read_text()


def newer_than_2_8(version: str) -> bool:
    return tuple(int(x) for x in version.split(".")) > (2, 8)


every_version = pytest.mark.parametrize("version", VERSIONS)
