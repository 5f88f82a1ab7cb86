"""User units, per logged-in user: what switch-to-configuration-ng's per-user child
(`do_user_switch` in nixpkgs' switch-to-configuration-ng/src/main.rs, since
NixOS/nixpkgs#507588, with the migration pass hardened by #517768) does after the
system's activation:

- the same comparison as for system units (`collect_unit_changes`) over
  OLD_TOPLEVEL/etc/systemd/user against TOPLEVEL/etc/systemd/user, for units whose
  FragmentPath is under /etc/systemd/user (units shadowed by ~/.config/systemd/user
  are left to home-manager); no fstab, no activation lists, no reload re-check;
- leftover lists from $XDG_RUNTIME_DIR/nixos; lines say "user units";
- nixos-activation.service is always restarted (and never listed as skipped);
- a second pass, after nixos-activation.service, for units that move to NixOS from
  another manager: units loaded from ~/.config/systemd/user (predicted: home-manager
  removes its copy and stops the unit, so NixOS's copy is started) and units loaded
  from elsewhere that /etc gains in this switch (still running, now restarted,
  reloaded or skipped by the same X- flags as a changed unit).

The system's dry-activate exits before users are visited, so a dry-activate plan has
no user part.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.planner.engine import NEVER_RESTARTED, PlanInputs, Planner
from nixlayer.planner.inputs import read_list
from nixlayer.planner.model import Action, Change, Decision, UserPlan, sort_units
from nixlayer.planner.snapshot import ActiveUnit
from nixlayer.planner.startup import started_by_systemd
from nixlayer.planner.unitfile import Unit, UnitTree, get_bool

USER_DIR = "etc/systemd/user"
USER_FRAGMENTS = "/etc/systemd/user"
ACTIVATION_UNIT = "nixos-activation.service"


@dataclass(frozen=True)
class UserInputs:
    name: str
    snapshot: Mapping[str, ActiveUnit]  # `systemctl --user list-units --all --output=json`
    config_home: str | None = None  # the user manager's $XDG_CONFIG_HOME (or $HOME/.config)
    runtime_dir: Path | None = None  # $XDG_RUNTIME_DIR, for leftover lists


def _line(verb: str, units: set[str] | frozenset[str]) -> list[str]:
    return [f"{verb} the following user units: {', '.join(sort_units(units))}"] if units else []


def _parse(tree: UnitTree, unit: str) -> Unit:
    try:
        return tree.parse(unit, unit)
    except InputError:
        return {}


def _migration(unit: str, new: Unit, still_running: bool) -> tuple[str, str]:
    """(verb, reason) of upstream's MigrationAction for one unit."""
    if not still_running:
        if get_bool(new, "Unit", "RefuseManualStart", False) or get_bool(
            new, "Unit", "X-OnlyManualStart", False
        ):
            return "skip", "moved from ~/.config/systemd/user to NixOS; not startable by hand"
        return "start", "moved from ~/.config/systemd/user to NixOS: NixOS's copy is started"
    why = "now defined in /etc/systemd/user, which outranks where it was loaded from"
    if unit in NEVER_RESTARTED or unit.endswith((".path", ".slice")):
        return "skip", f"{why}; cannot be restarted directly"
    if get_bool(new, "Service", "X-ReloadIfChanged", False):
        return "reload", f"{why}; reloadIfChanged = true"
    if (
        not get_bool(new, "Service", "X-RestartIfChanged", True)
        or get_bool(new, "Unit", "RefuseManualStop", False)
        or get_bool(new, "Unit", "X-OnlyManualStart", False)
    ):
        return "skip", f"{why}; not restarted (X- flags)"
    return "restart", why


def plan_user(
    user: UserInputs, *, old_root: Path, new_root: Path, action: Action = "switch"
) -> UserPlan:
    old, new = UnitTree(old_root / USER_DIR), UnitTree(new_root / USER_DIR)
    lists = (user.runtime_dir / "nixos") if user.runtime_dir else None
    planner = Planner(
        PlanInputs(
            old=old,
            new=new,
            snapshot=user.snapshot,
            action=action,
            leftover_start=(read_list(lists / "start-list") or ()) if lists else (),
            leftover_restart=(read_list(lists / "restart-list") or ()) if lists else (),
            leftover_reload=(read_list(lists / "reload-list") or ()) if lists else (),
            fragment_prefix=USER_FRAGMENTS,
            runtime_dir=str(user.runtime_dir or "$XDG_RUNTIME_DIR"),
        )
    )
    s = planner.s
    for name, leftovers in (
        ("start", planner.i.leftover_start),
        ("restart", planner.i.leftover_restart),
        ("reload", planner.i.leftover_reload),
    ):
        for unit in leftovers:
            s.add(name, unit, f"left over in $XDG_RUNTIME_DIR/nixos/{name}-list")
    planner.main_pass()
    s.skip.discard(ACTIVATION_UNIT)
    start_shown = s.start - s.filter
    lines = [f"reloading user units for {user.name}..."]
    lines += _line("stopping", s.stop)
    lines += _line("NOT restarting", s.skip)
    lines += _line("reloading", s.reload)
    lines += _line("restarting", s.restart)
    lines += _line("starting", start_shown)
    decisions: list[Decision] = []
    rows: tuple[tuple[Change, str, set[str]], ...] = (
        ("stop", "stop", s.stop),
        ("skip", "skip", s.skip),
        ("reload", "reload", s.reload),
        ("restart", "restart", s.restart),
        ("start", "start", start_shown),
        ("filtered", "start", s.filter),
    )
    for change, name, units in rows:
        decisions += [Decision(u, change, s.reason(name, u)) for u in sort_units(set(units))]
    if new.exists(ACTIVATION_UNIT):
        lines.append(f"restarting the following user units: {ACTIVATION_UNIT}")
        decisions.append(
            Decision(ACTIVATION_UNIT, "restart", "always restarted: runs per-user activation")
        )
    post: dict[str, dict[str, str]] = {"skip": {}, "reload": {}, "restart": {}, "start": {}}
    config_dir = os.path.join(user.config_home, "systemd/user") if user.config_home else None
    for unit in sorted(user.snapshot):
        fragment = user.snapshot[unit].fragment_path
        if fragment is None or not new.exists(unit):
            continue
        parent = os.path.dirname(fragment)
        if parent == USER_FRAGMENTS:
            continue
        from_config = config_dir is not None and parent == config_dir
        if not from_config and old.exists(unit):
            continue
        verb, why = _migration(unit, _parse(new, unit), still_running=not from_config)
        post[verb][unit] = why
    for verb, label in (
        ("skip", "NOT restarting"),
        ("reload", "reloading"),
        ("restart", "restarting"),
        ("start", "starting"),
    ):
        lines += _line(f"{label} (post-activation)", frozenset(post[verb]))
        decisions += [
            Decision(u, "post-activation", f"{verb}: {why}")
            for u, why in sorted(post[verb].items())
        ]
    started = started_by_systemd(
        old, new, user.snapshot, starting=s.start | s.restart, stopping=s.stop
    )
    decisions += [Decision(u, "new", why) for u, why in started.new.items()]
    return UserPlan(
        user=user.name,
        stop=sort_units(s.stop),
        start=sort_units(start_shown),
        restart=sort_units(s.restart),
        reload=sort_units(s.reload),
        skip=sort_units(s.skip),
        filtered=sort_units(s.filter),
        new_units=sort_units(set(started.new)),
        decisions=decisions,
        lines=lines,
    )
