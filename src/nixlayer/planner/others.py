"""What system-manager and nix-darwin activations do, in the planner's terms.

system-manager (its engine, services.rs): units removed or masked are stopped
(unless X-StopOnRemoval=false); units whose store path changed are reload-or-
restarted unless X-RestartIfChanged=false; there is no stopIfChanged.
nix-darwin: every launchd plist that changed is unloaded and loaded again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError
from nixlayer.planner.model import SwitchPlan, sort_units
from nixlayer.planner.unitfile import UnitFileError, UnitTree, get_bool, parse_text

SERVICES_JSON = "services/services.json"
LAUNCH_DIRS = ("Library/LaunchDaemons", "Library/LaunchAgents")


def _services(root: Path) -> dict[str, Any]:
    path = root / SERVICES_JSON
    if not path.is_file():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"not valid JSON: {exc.msg}") from exc
    return data


def _unit(store_path: str | None) -> dict[str, dict[str, list[str]]]:
    if not store_path:
        return {}
    try:
        return parse_text(Path(store_path).read_text())
    except (OSError, ValueError) as exc:
        raise UnitFileError(Path(store_path), str(exc)) from exc


def plan_system_manager(old_root: Path, new_root: Path, action: str = "switch") -> SwitchPlan:
    old, new = _services(old_root), _services(new_root)
    active = {n: s for n, s in new.items() if not s.get("masked")}
    stop: set[str] = {n for n, s in new.items() if s.get("masked") and n in old}
    restart: set[str] = set()
    skip: set[str] = set()
    for name, svc in old.items():
        if name not in active:
            if get_bool(_unit(svc.get("storePath")), "Unit", "X-StopOnRemoval", True):
                stop.add(name)
        elif active[name].get("storePath") != svc.get("storePath"):
            restartable = get_bool(
                _unit(active[name].get("storePath")), "Service", "X-RestartIfChanged", True
            )
            (restart if restartable else skip).add(name)
    start = {n for n in active if n not in old}
    lines = [
        f"{verb} {', '.join(sort_units(units))}"
        for verb, units in (
            ("stop:", stop),
            ("not restarting (X-RestartIfChanged=false):", skip),
            ("reload-or-restart:", restart),
            ("start:", start),
        )
        if units
    ]
    return _plan(action, stop=stop, start=start, restart=restart, skip=skip, lines=lines)


def _plists(root: Path) -> dict[str, bytes]:
    out = {}
    for d in LAUNCH_DIRS:
        base = root / d
        if base.is_dir():
            for p in sorted(base.glob("*.plist")):
                out[p.name.removesuffix(".plist")] = p.read_bytes()
    return out


def plan_darwin(old_root: Path, new_root: Path, action: str = "switch") -> SwitchPlan:
    old, new = _plists(old_root), _plists(new_root)
    stop = {label for label in old if label not in new}
    reload = {label for label in old if label in new and old[label] != new[label]}
    start = {label for label in new if label not in old}
    lines = [
        f"{verb} {', '.join(sort_units(units))}"
        for verb, units in (("unload:", stop), ("reload:", reload), ("load:", start))
        if units
    ]
    return _plan(action, stop=stop, start=start, reload=reload, lines=lines)


def _plan(
    action: str,
    *,
    stop: set[str],
    start: set[str],
    restart: set[str] | None = None,
    reload: set[str] | None = None,
    skip: set[str] | None = None,
    lines: list[str],
) -> SwitchPlan:
    return SwitchPlan(
        action=action,
        stop=sort_units(stop),
        start=sort_units(start),
        restart=sort_units(restart or set()),
        reload=sort_units(reload or set()),
        skip=sort_units(skip or set()),
        filtered=[],
        silent_skip=[],
        stop_all=sort_units(stop),
        start_all=sort_units(start),
        swapoff=[],
        restart_systemd=False,
        lines=lines,
    )


def unit_tree_or_none(root: Path) -> UnitTree | None:
    d = root / "etc/systemd/system"
    return UnitTree(d) if d.is_dir() else None
