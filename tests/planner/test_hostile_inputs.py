"""Hostile unit snapshots and systems: one line naming the file, exit 2, no traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from nixlayer.planner.snapshot import MAX_SNAPSHOT_BYTES
from tests.helpers import cli, json_result
from tests.planner.scenarios import svc


def _entry(name: object) -> str:
    return json.dumps([{"unit": name, "active": "active", "sub": "running"}])


def _huge(path: Path) -> None:
    with path.open("wb") as fh:
        fh.truncate(MAX_SNAPSHOT_BYTES + 1)  # sparse: no disk used


CASES: dict[str, tuple[Callable[[Path], object], str]] = {
    "malformed": (lambda p: p.write_text('[{"unit": '), "invalid JSON at line 1"),
    "deep nesting": (lambda p: p.write_text("[" * 200_000), "nested deeper than"),
    "huge": (_huge, "is too large"),
    "not utf-8": (lambda p: p.write_bytes(b'[{"unit": "\xff"}]'), "offset 11"),
    "NUL in a name": (lambda p: p.write_text(_entry("a\u0000.service")), "NUL character"),
    "lone surrogate": (
        lambda p: p.write_text('[{"unit": "\\ud800.service", "active": "active"}]'),
        "is not valid Unicode",
    ),
    "path in a name": (lambda p: p.write_text(_entry("../../etc/passwd")), "is not a unit name"),
    "dot dot": (lambda p: p.write_text(_entry("..")), "is not a unit name"),
    "long name": (lambda p: p.write_text(_entry("a" * 300 + ".service")), "longer than 255"),
    "number as name": (lambda p: p.write_text(_entry(7)), "'unit' is not a string"),
    "active not a string": (
        lambda p: p.write_text('[{"unit": "a.service", "active": [1]}]'),
        "must be strings",
    ),
    "a directory": (lambda p: p.mkdir(), "Is a directory"),
    "missing": (lambda p: None, "No such file or directory"),
}


@pytest.fixture
def systems(tmp_path: Path) -> tuple[Path, Path]:
    for side in ("old", "new"):
        d = tmp_path / side / "etc/systemd/system"
        d.mkdir(parents=True)
        (d / "a.service").write_text(svc(f"/bin/{side}"))
    return tmp_path / "old", tmp_path / "new"


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_snapshot(tmp_path: Path, systems: tuple[Path, Path], case: str) -> None:
    make, message = CASES[case]
    units = tmp_path / "units.json"
    make(units)
    before = sorted(p.name for p in tmp_path.iterdir())
    old, new = systems
    args = ["plan", "--from", str(old), "--to", str(new), "--units", str(units)]
    args += ["--runtime-dir", str(tmp_path / "run")]
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"--units {units}: " in proc.stderr and message in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    env = cli(*args, "--json")
    assert env.returncode == 2
    assert json_result(env, ok=False) is None and json.loads(env.stdout)["error"]["kind"] == "input"
    # The same file as a user's snapshot.
    user = cli(*args[:-2], "--user-units", f"u={units}")
    assert user.returncode == 2 and "Traceback" not in user.stderr, user.stderr


def test_hostile_unit_files(tmp_path: Path, systems: tuple[Path, Path]) -> None:
    old, new = systems
    (new / "etc/systemd/system/a.service").write_bytes(b"[Service]\nExecStart=\xff\xfe\n[X")
    units = tmp_path / "units.json"
    units.write_text(_entry("a.service"))
    proc = cli("plan", "--from", str(old), "--to", str(new), "--units", str(units))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{new}/etc/systemd/system/a.service: cannot parse" in proc.stderr


def test_hostile_list_file(tmp_path: Path, systems: tuple[Path, Path]) -> None:
    old, new = systems
    run = tmp_path / "run/nixos"
    run.mkdir(parents=True)
    (run / "start-list").write_bytes(b"\xff\n")
    units = tmp_path / "units.json"
    units.write_text("[]")
    proc = cli(
        "plan", "--from", str(old), "--to", str(new), "--units", str(units),
        "--runtime-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{run}/start-list is not UTF-8" in proc.stderr


@pytest.mark.parametrize("system", ["no/such/dir", "path:/nonexistent#vm", "github:"])
def test_bad_systems(tmp_path: Path, system: str) -> None:
    proc = cli("plan", "--to", system, "--units", str(tmp_path / "u.json"), "--no-closure")
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stderr
    if system == "no/such/dir":
        assert proc.returncode == 2 and "--to: " in proc.stderr
