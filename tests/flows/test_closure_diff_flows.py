"""The closure diff on the recording fake Nix: one `nix path-info` of both systems, and
each closure is what its root's references reach in that one answer. No Nix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nixlayer.planner.closure_diff import closure_diff
from tests.fakenix import FakeNix, captured, dialect_version

VERSIONS = ["2.8", "2.26", "2.34"]


def store_paths(version: str) -> dict[str, str]:
    """name -> store path, in the captured answer (18 paths of a small system's closure)."""
    data: Any = json.loads(captured(version, "path-info-all.json"))
    paths = [o["path"] for o in data] if isinstance(data, list) else list(data)
    return {p.split("-", 1)[1]: p for p in paths}


@pytest.mark.parametrize("version", VERSIONS)
def test_one_path_info_gives_both_closures(version: str) -> None:
    """gdb's closure is gdb and its source; strace's likewise. The answer also holds paths
    of neither closure: they are not counted."""
    paths = store_paths(version)
    nix = FakeNix(dialect_version(version))
    nix.on("nix", "path-info", stdout=captured(version, "path-info-all.json"))
    diff = closure_diff(paths["gdb-1.0"], paths["strace-1.0"], nix)
    fmt = ["--json-format", "1"] if version == "2.34" else []
    assert nix.calls == [
        ["nix", "path-info", "--json", *fmt, "--recursive", paths["gdb-1.0"], paths["strace-1.0"]]
    ]
    assert (diff.old_paths, diff.new_paths) == (2, 2)
    assert (diff.old_size, diff.new_size) == (1088 + 144, 1104 + 144)
    assert [(c.name, c.change, c.new_versions) for c in diff.added] == [
        ("strace", "added", ["1.0"])
    ]
    assert [(c.name, c.old_size) for c in diff.removed] == [("gdb", 1232)]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_closure_reaches_through_references_and_cycles(version: str) -> None:
    """The system refers to itself and to libbpf-tools, which alone refers to its source:
    its closure is all 18 paths."""
    paths = store_paths(version)
    nix = FakeNix(dialect_version(version))
    nix.on("nix", "path-info", stdout=captured(version, "path-info-all.json"))
    diff = closure_diff(paths["gdb-1.0"], paths["nixos-system-vm-26.05"], nix)
    assert (diff.old_paths, diff.new_paths) == (2, 18)
    assert "libbpf-tools-src" in {c.name for c in diff.added}
    assert len(nix.calls) == 1
