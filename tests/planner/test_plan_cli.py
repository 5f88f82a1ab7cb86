"""`nixlayer plan` end to end: output forms and bad input."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.helpers import cli, json_result
from tests.planner.scenarios import SCENARIOS
from tests.planner.test_scenarios import write_tree

MIXED = next(s for s in SCENARIOS if s.name == "a mixed switch")


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    write_tree(old, MIXED.old, "", None)
    write_tree(new, MIXED.new, "", None)
    units = tmp_path / "units.json"
    states = MIXED.active if isinstance(MIXED.active, list) else list(MIXED.active)
    units.write_text(
        json.dumps(
            [{"unit": u, "load": "loaded", "active": "active", "sub": "running"} for u in states]
        )
    )
    return old, new, units


def test_json_output(tmp_path: Path) -> None:
    old, new, units = _setup(tmp_path)
    proc = cli(
        "plan",
        "--from",
        str(old),
        "--to",
        str(new),
        "--units",
        str(units),
        "--json",
        "--runtime-dir",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json_result(proc)
    assert doc["version"] == 1 and doc["kind"] == "nixos" and doc["closure"] is None
    plan = doc["switch"]
    assert plan["lines"] == MIXED.lines
    assert set(plan) >= {
        "stop",
        "start",
        "restart",
        "reload",
        "skip",
        "filtered",
        "swapoff",
        "restart_systemd",
        "lines",
    }


def test_human_summary(tmp_path: Path) -> None:
    old, new, units = _setup(tmp_path)
    proc = cli(
        "plan",
        "--from",
        str(old),
        "--to",
        str(new),
        "--units",
        str(units),
        "--runtime-dir",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "stop a.service  [Service] ExecStart changed; stopped before activation" in out
    assert "stop gone.service  not in the new configuration" in out
    assert "restart sshd.service [protected]" in out


def test_asks_systemctl_without_units(tmp_path: Path) -> None:
    old, new, units = _setup(tmp_path)
    fake = tmp_path / "systemctl"
    fake.write_text(f'#!/bin/sh\n[ "$1" = list-units ] && exec cat {units}\nexit 1\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    proc = cli(
        "plan",
        "--from",
        str(old),
        "--to",
        str(new),
        "--json",
        "--runtime-dir",
        str(tmp_path / "run"),
        env={"NIXLAYER_SYSTEMCTL": str(fake)},
    )
    assert proc.returncode == 0, proc.stderr
    assert json_result(proc)["switch"]["lines"] == MIXED.lines


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        ("no_tree", "--to: "),
        ("bad_json", "invalid JSON at line 1"),
        ("not_list", "expected a JSON array"),
        ("no_active", "entry 0 has no 'active' field"),
        ("bad_unit", "a.service: cannot parse"),
        ("unreadable", "a.service: cannot read: Is a directory"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, mutate: str, message: str) -> None:
    old, new, units = _setup(tmp_path)
    if mutate == "no_tree":
        new = tmp_path / "nonexistent"
    elif mutate == "bad_json":
        units.write_text("[{")
    elif mutate == "not_list":
        units.write_text('{"unit": "a.service"}')
    elif mutate == "no_active":
        units.write_text('[{"unit": "a.service"}]')
    elif mutate == "bad_unit":
        (new / "etc/systemd/system/a.service").write_text("[Service\nExecStart=/bin/x \\\n")
    elif mutate == "unreadable":
        (new / "etc/systemd/system/a.service").unlink()
        (new / "etc/systemd/system/a.service").mkdir()
    proc = cli(
        "plan",
        "--from",
        str(old),
        "--to",
        str(new),
        "--units",
        str(units),
        "--runtime-dir",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1
