"""What system-manager and nix-darwin activations do, in the planner's terms.

system-manager (its engine, services.rs): units removed or masked are stopped
(unless X-StopOnRemoval=false); units whose store path changed are reload-or-
restarted unless X-RestartIfChanged=false; there is no stopIfChanged.
nix-darwin: every launchd plist that changed is unloaded and loaded again.
Both share the NixOS plan's shape (model.SwitchPlan), told apart by `kind`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from nixlayer.errors import InputError
from nixlayer.planner.ini import IniError
from nixlayer.planner.model import Action, Change, Decision, Kind, SwitchPlan, sort_units
from nixlayer.planner.snapshot import read_json_file
from nixlayer.planner.unitfile import UnitFileError, UnitTree, get_bool, parse_text

SERVICES_JSON = "services/services.json"
LAUNCH_DIRS = ("Library/LaunchDaemons", "Library/LaunchAgents")


def _services(root: Path) -> dict[str, dict[str, Any]]:
    path = root / SERVICES_JSON
    if not path.is_file():
        return {}
    data = read_json_file(path, str(path))
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(str(path), "expected a JSON object of unit name -> {storePath, ...}")
    return data


def _unit(store_path: Any) -> dict[str, dict[str, list[str]]]:
    if not store_path:
        return {}
    path = Path(str(store_path))
    try:
        return parse_text(path.read_text())
    except OSError as exc:
        raise UnitFileError(path, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise UnitFileError(path, "is not UTF-8") from None
    except IniError as exc:
        raise UnitFileError(path, f"cannot parse: {exc.message}") from exc


def plan_system_manager(old_root: Path, new_root: Path, action: str = "switch") -> SwitchPlan:
    old, new = _services(old_root), _services(new_root)
    active = {n: s for n, s in new.items() if not s.get("masked")}
    why: dict[str, dict[str, str]] = {"stop": {}, "restart": {}, "skip": {}, "start": {}}
    for name in new:
        if new[name].get("masked") and name in old:
            why["stop"][name] = "masked in the new configuration"
    for name, svc in old.items():
        if name not in active:
            if get_bool(_unit(svc.get("storePath")), "Unit", "X-StopOnRemoval", True):
                why["stop"].setdefault(name, "not in the new configuration")
        elif active[name].get("storePath") != svc.get("storePath"):
            restartable = get_bool(
                _unit(active[name].get("storePath")), "Service", "X-RestartIfChanged", True
            )
            if restartable:
                why["restart"][name] = "its unit file changed: reload-or-restart"
            else:
                why["skip"][name] = "its unit file changed; X-RestartIfChanged=false"
    for name in active:
        if name not in old:
            why["start"][name] = "new in this configuration"
    lines = [
        f"{verb} {', '.join(sort_units(frozenset(why[key])))}"
        for verb, key in (
            ("stop:", "stop"),
            ("not restarting (X-RestartIfChanged=false):", "skip"),
            ("reload-or-restart:", "restart"),
            ("start:", "start"),
        )
        if why[key]
    ]
    return _plan("system-manager", why, lines, action)


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
    why: dict[str, dict[str, str]] = {
        "stop": {label: "its plist is gone: unloaded" for label in old if label not in new},
        "reload": {
            label: "its plist changed: unloaded and loaded again"
            for label in old
            if label in new and old[label] != new[label]
        },
        "start": {label: "new plist: loaded" for label in new if label not in old},
    }
    lines = [
        f"{verb} {', '.join(sort_units(frozenset(why[key])))}"
        for verb, key in (("unload:", "stop"), ("reload:", "reload"), ("load:", "start"))
        if why[key]
    ]
    return _plan("nix-darwin", why, lines, action)


def _plan(kind: Kind, why: dict[str, dict[str, str]], lines: list[str], action: str) -> SwitchPlan:
    def units(key: str) -> list[str]:
        return sort_units(frozenset(why.get(key, {})))

    changes: tuple[Change, ...] = ("stop", "skip", "reload", "restart", "start")
    decisions = [
        Decision(unit, change, why[change][unit])
        for change in changes
        if change in why
        for unit in units(change)
    ]
    return SwitchPlan(
        action=cast(Action, action),
        stop=units("stop"),
        start=units("start"),
        restart=units("restart"),
        reload=units("reload"),
        skip=units("skip"),
        filtered=[],
        silent_skip=[],
        stop_all=units("stop"),
        start_all=units("start"),
        swapoff=[],
        restart_systemd=False,
        lines=lines,
        kind=kind,
        decisions=decisions,
    )


def unit_tree_or_none(root: Path) -> UnitTree | None:
    d = root / "etc/systemd/system"
    return UnitTree(d) if d.is_dir() else None
