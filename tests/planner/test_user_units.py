"""User units per user (nixpkgs switch-to-configuration-ng `do_user_switch`, PRs #507588
and #517768): decisions, lines and where they fall in the system's output."""

from __future__ import annotations

import json
from pathlib import Path

from nixlayer.planner.plan import plan_switch
from nixlayer.planner.snapshot import ActiveUnit
from nixlayer.planner.users import UserInputs, plan_user
from tests.helpers import cli, json_result
from tests.planner.scenarios import svc

A = "activating the configuration..."
SYSINIT = "restarting sysinit-reactivation.target"
ACT = "[Unit]\nDescription=per-user activation\n[Service]\nExecStart=/nix/store/x-activate\n"


def tree(root: Path, system: dict[str, str], user: dict[str, str]) -> Path:
    for sub, units in (("etc/systemd/system", system), ("etc/systemd/user", user)):
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            (d / name).write_text(text)
    return root


def active(*names: str, fragment: str | None = None) -> dict[str, ActiveUnit]:
    return {n: ActiveUnit(n, "active", "running", fragment) for n in names}


def test_changed_user_units_are_stopped_restarted_reloaded_and_started(tmp_path: Path) -> None:
    old = tree(
        tmp_path / "old",
        {},
        {
            "a.service": svc("/bin/a"),
            "b.service": svc("/bin/b", "X-StopIfChanged=false"),
            "c.service": svc("/bin/c", "X-ReloadIfChanged=true"),
            "d.service": svc("/bin/d", "X-RestartIfChanged=false"),
            "gone.service": svc(),
            "default.target": "[Unit]\nDescription=default\n",
            "nixos-activation.service": ACT,
        },
    )
    new = tree(
        tmp_path / "new",
        {},
        {
            "a.service": svc("/bin/a2"),
            "b.service": svc("/bin/b2", "X-StopIfChanged=false"),
            "c.service": svc("/bin/c2", "X-ReloadIfChanged=true"),
            "d.service": svc("/bin/d2", "X-RestartIfChanged=false"),
            "default.target": "[Unit]\nDescription=default\n",
            "nixos-activation.service": ACT.replace("x-activate", "y-activate"),
        },
    )
    snap = active(
        "a.service",
        "b.service",
        "c.service",
        "d.service",
        "gone.service",
        "default.target",
    )  # nixos-activation.service is a oneshot that has exited: not in the snapshot
    user = plan_user(UserInputs("alice", snap), old_root=old, new_root=new)
    assert user.lines == [
        "reloading user units for alice...",
        "stopping the following user units: a.service, gone.service",
        "NOT restarting the following user units: d.service",
        "reloading the following user units: c.service",
        "restarting the following user units: b.service",
        "starting the following user units: a.service",
        "restarting the following user units: nixos-activation.service",
    ]
    assert user.filtered == ["default.target"]
    assert "nixos-activation.service" not in user.skip  # restarted unconditionally
    reasons = {(d.unit, d.change): d.reason for d in user.decisions}
    assert reasons[("gone.service", "stop")] == "not in the new configuration"
    assert reasons[("c.service", "reload")].endswith("reloadIfChanged = true")


def test_user_lines_come_after_activation_and_before_sysinit(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {"s.service": svc("/bin/s")}, {"u.service": svc("/bin/u")})
    new = tree(
        tmp_path / "new",
        {"s.service": svc("/bin/s2", "X-StopIfChanged=false")},
        {"u.service": svc("/bin/u2")},
    )
    users = [UserInputs("bob", active("u.service")), UserInputs("amy", {})]
    plan = plan_switch(
        new,
        from_root=old,
        snapshot=dict(active("s.service")),
        runtime_dir=tmp_path / "run",
        users=users,
    )
    assert plan.lines == [
        A,
        "reloading user units for bob...",
        "stopping the following user units: u.service",
        "starting the following user units: u.service",
        "reloading user units for amy...",
        SYSINIT,
        "restarting the following units: s.service",
    ]
    assert [u.user for u in plan.users] == ["bob", "amy"]


def test_dry_activate_visits_no_user(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {}, {"u.service": svc("/bin/u")})
    new = tree(tmp_path / "new", {}, {"u.service": svc("/bin/u2")})
    plan = plan_switch(
        new,
        from_root=old,
        action="dry-activate",
        snapshot={},
        runtime_dir=tmp_path / "run",
        users=[UserInputs("bob", active("u.service"))],
    )
    assert plan.users == []
    assert plan.lines == ["would activate the configuration..."]  # and no sysinit line


def test_units_shadowed_by_home_manager_are_left_alone(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {}, {"u.service": svc("/bin/u")})
    new = tree(tmp_path / "new", {}, {"u.service": svc("/bin/u2")})
    snap = active("u.service", fragment="/home/bob/.config/systemd/user/u.service")
    user = plan_user(
        UserInputs("bob", snap, config_home="/home/bob/.config"), old_root=old, new_root=new
    )
    # Not in pass 1 (FragmentPath filter); pass 2 takes it over after nixos-activation.
    assert user.stop == [] and user.restart == [] and user.start == []
    assert user.lines == [
        "reloading user units for bob...",
        "starting (post-activation) the following user units: u.service",
    ]


def test_migration_pass_honours_x_flags(tmp_path: Path) -> None:
    """#517768: units that /etc gains from another location keep reloadIfChanged and
    restartIfChanged = false; only ~/.config candidates are assumed stopped."""
    old = tree(tmp_path / "old", {}, {})
    new = tree(
        tmp_path / "new",
        {},
        {
            "dbus-broker.service": svc("/bin/d", "X-ReloadIfChanged=true"),
            "pinned.service": svc("/bin/p", "X-RestartIfChanged=false"),
            "plain.service": svc("/bin/q"),
            "manual.service": svc("/bin/m", unit="RefuseManualStart=yes"),
        },
    )
    snap = {
        **active("dbus-broker.service", "pinned.service", "plain.service", fragment="/usr/x"),
        **active("manual.service", fragment="/home/c/.config/systemd/user/manual.service"),
    }
    user = plan_user(
        UserInputs("c", snap, config_home="/home/c/.config"), old_root=old, new_root=new
    )
    assert user.lines == [
        "reloading user units for c...",
        "NOT restarting (post-activation) the following user units: manual.service, pinned.service",
        "reloading (post-activation) the following user units: dbus-broker.service",
        "restarting (post-activation) the following user units: plain.service",
    ]
    post = {d.unit: d.reason for d in user.decisions if d.change == "post-activation"}
    assert post["dbus-broker.service"].startswith("reload: ")


def test_user_leftover_lists_are_resumed(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {}, {"u.service": svc()})
    new = tree(tmp_path / "new", {}, {"u.service": svc()})
    runtime = tmp_path / "user-run"
    (runtime / "nixos").mkdir(parents=True)
    (runtime / "nixos/restart-list").write_text("u.service\n")
    user = plan_user(
        UserInputs("d", active("u.service"), runtime_dir=runtime), old_root=old, new_root=new
    )
    assert user.restart == ["u.service"]
    assert user.decisions[0].reason == "left over in $XDG_RUNTIME_DIR/nixos/restart-list"


def test_cli_user_units_flag(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {}, {"u.service": svc("/bin/u")})
    new = tree(tmp_path / "new", {}, {"u.service": svc("/bin/u2")})
    units = tmp_path / "units.json"
    units.write_text("[]")
    user_units = tmp_path / "alice.json"
    user_units.write_text(
        json.dumps({"units": [{"unit": "u.service", "active": "active", "sub": "running"}]})
    )
    base = ["plan", "--from", str(old), "--to", str(new), "--units", str(units)]
    args = [*base, "--runtime-dir", str(tmp_path / "run")]
    proc = cli(*args, "--user-units", f"alice={user_units}", "--json")
    assert proc.returncode == 0, proc.stderr
    users = json_result(proc)["switch"]["users"]
    assert [u["user"] for u in users] == ["alice"] and users[0]["stop"] == ["u.service"]
    bad = cli(*args, "--user-units", "alice")
    assert bad.returncode == 2 and "is not USER=FILE" in bad.stderr
