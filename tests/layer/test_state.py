"""state.json is read through the one guarded reader and checked field by field."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from nixlayer.errors import InputError
from nixlayer.layer import state
from tests.helpers import cli

GOOD: dict[str, Any] = {
    "kind": "nixos",
    "base_system": "/nix/store/aaaa-nixos-system",
    "base_generation": {"profile": "/nix/var/nix/profiles/system", "number": 7, "target": "/x"},
    "applied": [{"toplevel": "/nix/store/bbbb-job", "action": "test"}],
    "pending": {
        "toplevel": "/nix/store/cccc-job",
        "action": "switch",
        "before": {"profile": "/p", "number": None, "target": None},
        "units": ["a.service"],
    },
    "version": 1,
}


def _with(path: str, value: Any) -> str:
    data = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return json.dumps(data)


BAD: dict[str, str | bytes] = {
    "deep": "[" * 200_000,
    "deep-object": '{"a":' * 100_000,
    "number-true": _with("base_generation.number", True),
    "number-str": _with("base_generation.number", "7"),
    "number-float": _with("base_generation.number", 7.5),
    "pending-number-false": _with("pending.before.number", False),
    "not-an-object": "[]",
    "kind-list": _with("kind", ["nixos"]),
    "kind-unknown": _with("kind", "plan9"),
    "system-int": _with("base_system", 5),
    "generation-list": _with("base_generation", [1]),
    "applied-str": _with("applied", "abc"),
    "applied-item-str": _with("applied.0", "x"),
    "action-int": _with("applied.0.action", 3),
    "units-str": _with("pending.units", "abc"),
    "unit-int": _with("pending.units.0", 1),
    "target-int": _with("base_generation.target", 1),
    "missing-kind": json.dumps({"base_system": "/x"}),
    "duplicate-key": '{"kind": "nixos", "kind": "nixos", "base_system": "/x"}',
    "nan": _with("base_generation.number", 1).replace(": 1,", ": NaN,", 1),
    "not-utf8": b"\xff\xfe{}",
}


def test_a_good_state_round_trips(tmp_path: Path) -> None:
    loaded = state.State.from_json(GOOD)
    state.save(tmp_path, loaded)
    assert state.load(tmp_path) == loaded
    assert loaded.base_generation is not None and loaded.base_generation.number == 7


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_state_is_input_error(tmp_path: Path, name: str) -> None:
    content = BAD[name]
    path = tmp_path / "state.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as err:
        state.load(tmp_path)
    assert err.value.field == "--state-dir" and str(path) in err.value.message


@pytest.mark.parametrize("name", ["deep", "number-true", "kind-list"])
def test_restore_says_one_line_exit_2(tmp_path: Path, name: str) -> None:
    """`restore` crashed with RecursionError ("this is a bug", exit 1) on deep nesting
    and took `"number": true` as generation 1."""
    d = tmp_path / "s"
    d.mkdir(mode=0o700)
    content = BAD[name]
    assert isinstance(content, str)
    (d / "state.json").write_text(content)
    os.chmod(d, 0o700)
    proc = cli("restore", "--state-dir", str(d), "--current", str(d))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "--state-dir" in proc.stderr, proc.stderr
    assert "bug" not in proc.stderr
    assert (d / "state.json").read_text() == content
