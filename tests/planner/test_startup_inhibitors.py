"""What systemd does with the queued jobs (new units, Conflicts=), the switch-inhibitor
verdict and the sysinit-reactivation line, each as a scenario with exact output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nixlayer.errors import InputError
from nixlayer.planner.inhibitors import plan_inhibitors
from nixlayer.planner.model import SwitchPlan
from nixlayer.planner.plan import plan_switch
from nixlayer.planner.snapshot import ActiveUnit
from tests.helpers import cli, json_result
from tests.planner.scenarios import svc, target

A = "activating the configuration..."
SYSINIT = "restarting sysinit-reactivation.target"


def tree(root: Path, units: dict[str, str], links: dict[str, list[str]] | None = None) -> Path:
    d = root / "etc/systemd/system"
    d.mkdir(parents=True)
    for name, text in units.items():
        (d / name).write_text(text)
    for wants, names in (links or {}).items():
        (d / wants).mkdir()
        for n in names:
            os.symlink(f"../{n}", d / wants / n)
    return root


def snap(*names: str) -> dict[str, ActiveUnit]:
    return {n: ActiveUnit(n, "active", "running") for n in names}


def plan(
    tmp_path: Path, old: Path, new: Path, active: dict[str, ActiveUnit], action: str = "switch"
) -> SwitchPlan:
    return plan_switch(
        new, from_root=old, snapshot=active, runtime_dir=tmp_path / "run", action=action
    )


def test_sysinit_reactivation_line_on_switch_and_test_only(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {"a.service": svc("/bin/a")})
    new = tree(tmp_path / "new", {"a.service": svc("/bin/b", "X-StopIfChanged=false")})
    for action, lines in (
        ("switch", [A, SYSINIT, "restarting the following units: a.service"]),
        ("test", [A, SYSINIT, "restarting the following units: a.service"]),
        (
            "dry-activate",
            ["would activate the configuration...", "would restart the following units: a.service"],
        ),
    ):
        assert plan(tmp_path, old, new, snap("a.service"), action=action).lines == lines


def test_new_unit_wanted_by_an_active_target_is_started(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {"multi-user.target": target()})
    new = tree(
        tmp_path / "new",
        {
            "multi-user.target": target(),
            "web.service": svc(unit="Wants=helper.service"),
            "helper.service": svc(),
            "bound.service": svc(unit="BindsTo=multi-user.target"),
        },
        {"multi-user.target.wants": ["web.service"]},
    )
    p = plan(tmp_path, old, new, snap("multi-user.target"))
    assert p.new_units == ["helper.service", "web.service"]  # not bound.service
    assert p.start == [] and p.lines == [A, SYSINIT]  # switch-to-configuration lists neither
    why = {d.unit: d.reason for d in p.decisions if d.change == "new"}
    assert why["web.service"] == (
        "new in this configuration; pulled in by multi-user.target, which is started"
    )
    assert why["helper.service"].endswith("pulled in by web.service, which is started")


def test_new_unit_with_conflicts_stops_a_running_protected_unit(tmp_path: Path) -> None:
    units = {"multi-user.target": target(), "sshd.service": svc("/bin/sshd")}
    old = tree(tmp_path / "old", units)
    new = tree(
        tmp_path / "new",
        {**units, "dropbear.service": svc("/bin/dropbear", unit="Conflicts=sshd.service")},
        {"multi-user.target.wants": ["dropbear.service"]},
    )
    p = plan(tmp_path, old, new, snap("multi-user.target", "sshd.service"))
    assert p.new_units == ["dropbear.service"]
    assert p.conflict_stops == ["sshd.service"] and "sshd.service" in p.stop_all
    assert p.stop == []  # systemd stops it, switch-to-configuration prints nothing
    assert p.reasons("sshd.service")[0].reason == (
        "systemd stops it: dropbear.service, which is started, has Conflicts=sshd.service"
    )


def test_conflicts_work_both_ways(tmp_path: Path) -> None:
    """An unchanged running unit that conflicts with a new one is stopped by systemd."""
    units = {"multi-user.target": target(), "b.service": svc(unit="Conflicts=a.service")}
    old = tree(tmp_path / "old", units)
    new = tree(
        tmp_path / "new", {**units, "a.service": svc()}, {"multi-user.target.wants": ["a.service"]}
    )
    p = plan(tmp_path, old, new, snap("multi-user.target", "b.service"))
    assert p.new_units == ["a.service"] and p.start == []
    assert p.conflict_stops == ["b.service"]
    assert "it has Conflicts=a.service, which is started" in p.reasons("b.service")[0].reason


def inhibitors(root: Path, data: object) -> None:
    (root / "switch-inhibitors").write_text(json.dumps(data))


def test_inhibitor_verdict(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {})
    new = tree(tmp_path / "new", {})
    inhibitors(old, {"systemd": "/nix/store/a-systemd-258", "dbus": "/nix/store/d", "x": "1"})
    inhibitors(new, {"systemd": "/nix/store/b-systemd-259", "dbus": "/nix/store/d", "y": "2"})
    v = plan_inhibitors(old, new, "switch")
    assert v.checked and v.inhibited
    assert [(c.name, c.old, c.new) for c in v.changed] == [
        ("systemd", "/nix/store/a-systemd-258", "/nix/store/b-systemd-259")
    ]
    assert "NIXOS_NO_CHECK=1" in v.note
    for action in ("dry-activate", "boot"):  # nixpkgs #510514: no check
        assert not plan_inhibitors(old, new, action).checked
    p = plan(tmp_path, old, new, {})
    assert p.inhibitors is not None and p.inhibitors.inhibited
    (old / "switch-inhibitors").unlink()  # first activation, or no inhibitors before
    assert not plan_inhibitors(old, new, "switch").inhibited


@pytest.mark.parametrize("text", ["{", "[1, 2]", "\x00", "[" * 100_000])
def test_corrupt_inhibitors_fail_loudly(tmp_path: Path, text: str) -> None:
    old = tree(tmp_path / "old", {})
    new = tree(tmp_path / "new", {})
    inhibitors(old, {})
    (new / "switch-inhibitors").write_text(text)
    with pytest.raises(InputError) as err:
        plan_inhibitors(old, new, "switch")
    assert err.value.field == str(new / "switch-inhibitors")


def test_cli_reports_inhibited_switch(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {})
    new = tree(tmp_path / "new", {})
    inhibitors(old, {"systemd": "/nix/store/a"})
    inhibitors(new, {"systemd": "/nix/store/b"})
    units = tmp_path / "u.json"
    units.write_text("[]")
    args = ["plan", "--from", str(old), "--to", str(new), "--units", str(units)]
    args += ["--runtime-dir", str(tmp_path / "run")]
    human = cli(*args)
    assert human.returncode == 0, human.stderr
    assert "switch inhibitors: refused: switch inhibitors changed (systemd)" in human.stdout
    verdict = json_result(cli(*args, "--json"))["switch"]["inhibitors"]
    assert verdict["inhibited"] is True and verdict["changed"][0]["new"] == "/nix/store/b"
