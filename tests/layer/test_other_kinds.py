"""system-manager (real Nix, stand-in system-manager) and nix-darwin (fake systems)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nixlayer.layer.activate import Activation
from nixlayer.layer.failures import ActivationError
from nixlayer.layer.guard import violations
from nixlayer.layer.protection import build_protection
from nixlayer.layer.transient import StepRunner
from nixlayer.nix.runner import Nix
from nixlayer.planner.others import plan_darwin
from tests.helpers import cli, json_result, run_nix
from tests.layer.conftest import Layered
from tests.layer.test_switch import SSHD_CHANGE


def _sm_args(layered: Layered, current: str, *extra: str, job: Path | None = None) -> list[str]:
    return [
        "switch",
        str(job or layered.job),
        "--base",
        str(layered.base),
        "--kind",
        "system-manager",
        "--name",
        "runner",
        "--current",
        current,
        "--profile",
        str(layered.root / "sm-profile"),
        "--state-dir",
        str(layered.state_dir),
        *extra,
    ]


@pytest.fixture
def sm_current(layered: Layered) -> str:
    out = run_nix("build", "--json", "--no-link", f"path:{layered.base}#systemConfigs.runner")
    return str(json.loads(out)[0]["outputs"]["out"])


@pytest.mark.nix
def test_system_manager_layer_switches(layered: Layered, sm_current: str) -> None:
    log = layered.root / "sm.log"
    env = {**layered.env, "NIXLAYER_FAKE_SM_LOG": str(log)}
    proc = cli(*_sm_args(layered, sm_current, "--json", "--action", "switch"), env=env)
    assert proc.returncode == 0, proc.stderr
    result = json_result(proc)
    new = result["toplevel"]
    assert result["plan"]["start"] == ["docker.service"]
    assert result["plan"]["stop"] == [] and result["plan"]["restart"] == []
    assert log.read_text().splitlines() == [f"{new} register-profile", f"{new} activate"]
    old = json.loads((Path(sm_current) / "services/services.json").read_text())
    now = json.loads((Path(new) / "services/services.json").read_text())
    assert {k: v for k, v in now.items() if k != "docker.service"} == old  # base units untouched


@pytest.mark.nix
def test_system_manager_refuses_and_rolls_back(layered: Layered, sm_current: str) -> None:
    log = layered.root / "sm.log"
    env = {**layered.env, "NIXLAYER_FAKE_SM_LOG": str(log)}
    job = layered.job_variant("sshd-job", SSHD_CHANGE)
    refused = cli(*_sm_args(layered, sm_current, job=job), env=env)
    assert refused.returncode == 3 and "sshd.service was changed" in refused.stderr
    assert not log.exists()
    dry = json_result(
        cli(*_sm_args(layered, sm_current, "--action", "dry-activate", "--json"), env=env)
    )
    env["NIXLAYER_FAKE_SM_FAIL"] = Path(dry["toplevel"]).name[:32]
    failed = cli(*_sm_args(layered, sm_current, "--action", "switch"), env=env)
    assert failed.returncode == 1 and f"rolled back to {sm_current}" in failed.stderr
    assert log.read_text().splitlines() == [
        f"{dry['toplevel']} register-profile",  # fails: activate is never reached
        f"{sm_current} activate",  # the profile is put back by generation, not re-registered
    ]


def _darwin_system(root: Path, plists: dict[str, str], fail: bool = False) -> Path:
    d = root / "Library/LaunchDaemons"
    d.mkdir(parents=True)
    for label, body in plists.items():
        (d / f"{label}.plist").write_text(body)
    act = root / "activate"
    act.write_text(f'#!/bin/sh\necho "$0" >> {root.parent}/darwin.log\nexit {1 if fail else 0}\n')
    act.chmod(0o755)
    return root


def test_darwin_plan_guard_and_rollback(tmp_path: Path) -> None:
    old = _darwin_system(tmp_path / "old", {"com.openssh.sshd": "a", "org.nixos.cron": "a"})
    new = _darwin_system(
        tmp_path / "new",
        {"com.openssh.sshd": "b", "org.nixos.cron": "b", "org.nixos.docker": "x"},
        fail=True,
    )
    plan = plan_darwin(old, new)
    assert plan.action == "switch"  # the action, not "launchd": the guard keys on the kind
    assert (plan.reload, plan.start, plan.stop) == (
        ["com.openssh.sshd", "org.nixos.cron"],
        ["org.nixos.docker"],
        [],
    )
    protection = build_protection(
        family="launchd",
        systems=[],
        protect=["org.nixos.cron"],
        allow_restart=[],
        known_units=["com.openssh.sshd", "org.nixos.cron"],
    )
    found = violations(plan, protection, None, None, "darwin")
    assert [v.unit for v in found] == ["com.openssh.sshd", "org.nixos.cron"]
    assert "unloads and loads it again" in found[0].line()
    assert "com.openssh.sshd (default)" in found[0].line()  # launchd labels: no .service
    profile = tmp_path / "profile"
    runner = StepRunner(transient=False, log_dir=tmp_path / "logs")
    with pytest.raises(ActivationError, match=f"rolled back to {old}"):
        Activation("darwin", new, "test", old, profile, runner, Nix()).run()
    assert (tmp_path / "darwin.log").read_text().splitlines() == [
        f"{new}/activate",
        f"{old}/activate",
    ]
    assert not os.path.exists(profile)  # `test` never touches the profile


@pytest.mark.nix
def test_system_manager_activates_in_transient_units(layered: Layered, sm_current: str) -> None:
    log = layered.root / "sm.log"
    env = {**layered.env, "NIXLAYER_FAKE_SM_LOG": str(log)}
    proc = cli(
        *_sm_args(layered, sm_current, "--json", "--action", "switch", "--transient"), env=env
    )
    assert proc.returncode == 0, proc.stderr
    new = json_result(proc)["toplevel"]
    calls = layered.systemd_run_calls()
    assert [c[-1] for c in calls] == [f"{new}/bin/register-profile", f"{new}/bin/activate"]
    assert log.read_text().splitlines() == [f"{new} register-profile", f"{new} activate"]
