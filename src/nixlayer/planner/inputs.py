"""Read a planner's inputs from disk: unit trees, fstabs, the runtime list files,
and whether systemd itself would be re-executed."""

from __future__ import annotations

import os
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.planner.engine import PlanInputs
from nixlayer.planner.model import ACTIONS, Action, UserPlan
from nixlayer.planner.snapshot import ActiveUnit, load_snapshot, query_snapshot
from nixlayer.planner.unitfile import UnitTree
from nixlayer.safeload import read_text

UNIT_DIR = "etc/systemd/system"


def unit_tree(root: Path, flag: str) -> UnitTree:
    if not root.is_dir():
        raise InputError(flag, f"{root} is not a directory")
    units = root / UNIT_DIR
    if not units.is_dir():
        raise InputError(flag, f"{root} has no {UNIT_DIR} (give a system root or a toplevel)")
    if not os.access(units, os.R_OK | os.X_OK):
        raise InputError(flag, f"{units} is not readable")
    return UnitTree(units)


def _read_optional(path: Path) -> str:
    if not path.exists():
        return ""
    return read_text(path, str(path))


def read_list(path: Path) -> tuple[str, ...] | None:
    if not path.exists():
        return None
    return tuple(line.strip() for line in _read_optional(path).splitlines() if line.strip())


def _realpath_or_unknown(path: Path) -> str:
    try:
        return os.path.realpath(path, strict=True)
    except OSError:
        return "/unknown"


def systemd_changes(old_root: Path, new_root: Path) -> bool:
    """Re-exec when pid 1's binary or system.conf differ (upstream `do_system_switch`)."""
    if old_root.resolve() == Path("/") and not (old_root / "systemd").exists():
        old_exe = _realpath_or_unknown(Path("/proc/1/exe"))
    else:
        old_exe = _realpath_or_unknown(old_root / "systemd/lib/systemd/systemd")
    new_exe = _realpath_or_unknown(new_root / "systemd/lib/systemd/systemd")
    old_conf = _realpath_or_unknown(old_root / "etc/systemd/system.conf")
    new_conf = _realpath_or_unknown(new_root / "etc/systemd/system.conf")
    return old_exe != new_exe or old_conf != new_conf


def load_inputs(
    *,
    to_root: Path,
    from_root: Path = Path("/"),
    action: str = "switch",
    units_file: Path | None = None,
    snapshot: dict[str, ActiveUnit] | None = None,
    runtime_dir: Path = Path("/run"),
    users: tuple[UserPlan, ...] = (),
) -> PlanInputs:
    checked = parse_action(action)
    old, new = unit_tree(from_root, "--from"), unit_tree(to_root, "--to")
    if snapshot is None:
        snapshot = load_snapshot(units_file) if units_file is not None else query_snapshot()
    nixos = runtime_dir / "nixos"
    prefix = "dry-activation" if action == "dry-activate" else "activation"
    return PlanInputs(
        old=old,
        new=new,
        snapshot=snapshot,
        action=checked,
        old_fstab=_read_optional(from_root / "etc/fstab"),
        new_fstab=_read_optional(to_root / "etc/fstab"),
        leftover_start=read_list(nixos / "start-list") or (),
        leftover_restart=read_list(nixos / "restart-list") or (),
        leftover_reload=read_list(nixos / "reload-list") or (),
        activation_restart=read_list(nixos / f"{prefix}-restart-list"),
        activation_reload=read_list(nixos / f"{prefix}-reload-list"),
        restart_systemd=systemd_changes(from_root, to_root),
        runtime_dir=str(runtime_dir),
        users=users,
    )


def parse_action(action: str) -> Action:
    for known in ACTIONS:
        if action == known:
            return known
    raise InputError("--action", f"{action!r} is not one of {', '.join(ACTIONS)}")
