"""The scenario table: both trees on disk, the snapshot as systemctl prints it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import cast

import pytest

from nixlayer.planner.plan import plan_switch
from tests.planner.scenarios import MASK, SCENARIOS, Scenario, UnitFiles

WARN = (
    "WARN: restarting or reloading systemd units from the activation script is deprecated "
    "and will be removed in NixOS 26.11."
)


def expected_lines(sc: Scenario) -> list[str]:
    """The lines switch-to-configuration-ng prints for a scenario's expected lists (the
    explicit `lines` of a scenario are checked as well)."""
    dry = sc.action == "dry-activate"
    lines = [f"{'would stop' if dry else 'stopping'} swap device: {d}" for d in sc.swapoff]
    if sc.stop:
        lines.append(
            f"{'would stop' if dry else 'stopping'} the following units: {', '.join(sc.stop)}"
        )
    if sc.skip:
        verb = "would NOT stop" if dry else "NOT restarting"
        lines.append(f"{verb} the following changed units: {', '.join(sc.skip)}")
    lines.append(
        "would activate the configuration..." if dry else "activating the configuration..."
    )
    prefix = "dry-activation" if dry else "activation"
    if any(name.startswith(f"{prefix}-") for name in sc.lists):
        lines.append(WARN)
    if sc.system_conf is not None:
        lines.append("would restart systemd" if dry else "restarting systemd...")
    if not dry:
        lines.append("restarting sysinit-reactivation.target")
    for verb, dry_verb, units in (
        ("reloading", "would reload", sc.reload),
        ("restarting", "would restart", sc.restart),
        ("starting", "would start", sc.start),
    ):
        if units:
            lines.append(f"{dry_verb if dry else verb} the following units: {', '.join(units)}")
    return lines


def write_tree(root: Path, units: UnitFiles, fstab: str, system_conf: str | None) -> None:
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for name, text in units.items():
        path = unit_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is MASK:
            os.symlink("/dev/null", path)
        else:
            assert isinstance(text, str)
            path.write_text(text)
    if fstab:
        (root / "etc/fstab").write_text(fstab)
    if system_conf is not None:
        (root / "etc/systemd/system.conf").write_text(system_conf)


def run_scenario(tmp: Path, sc: Scenario) -> dict[str, object]:
    old, new, run = tmp / "old", tmp / "new", tmp / "run"
    confs = sc.system_conf or (None, None)
    write_tree(old, sc.old, sc.old_fstab, confs[0])
    write_tree(new, sc.new, sc.new_fstab, confs[1])
    (run / "nixos").mkdir(parents=True)
    for name, units in sc.lists.items():
        (run / "nixos" / name).write_text("".join(f"{u}\n" for u in units))
    states = sc.active if isinstance(sc.active, dict) else dict.fromkeys(sc.active, "active")
    snapshot = [
        {
            "unit": u,
            "load": "loaded",
            "active": st,
            "sub": "running",
            "description": u,
            **({"fragment_path": sc.fragments[u]} if u in sc.fragments else {}),
        }
        for u, st in states.items()
    ]
    units_file = tmp / "units.json"
    units_file.write_text(json.dumps(snapshot))
    return plan_switch(
        new, from_root=old, action=sc.action, units_file=units_file, runtime_dir=run
    ).to_json()


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(tmp_path: Path, sc: Scenario) -> None:
    plan = run_scenario(tmp_path, sc)
    got = {
        k: plan[k]
        for k in (
            "stop",
            "start",
            "restart",
            "reload",
            "skip",
            "filtered",
            "silent_skip",
            "swapoff",
        )
    }
    want = {
        "stop": sc.stop,
        "start": sc.start,
        "restart": sc.restart,
        "reload": sc.reload,
        "skip": sc.skip,
        "filtered": sc.filtered,
        "silent_skip": sc.silent_skip,
        "swapoff": sc.swapoff,
    }
    assert got == want
    assert plan["lines"] == expected_lines(sc)
    if sc.lines is not None:
        assert plan["lines"] == sc.lines
    assert plan["restart_systemd"] is (sc.system_conf is not None)
    # A reason for every decision, and a decision for every unit on a list.
    decisions = cast(list[dict[str, str]], plan["decisions"])
    assert all(d["reason"] for d in decisions), decisions
    listed = {(d["unit"], d["change"]) for d in decisions}
    for change in ("stop", "restart", "reload", "skip", "start"):
        assert {(u, change) for u in want[change]} <= listed


def test_table_is_large_enough() -> None:
    assert len(SCENARIOS) >= 60
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)
