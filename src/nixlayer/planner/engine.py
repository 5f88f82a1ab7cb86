"""The decision pass of switch-to-configuration-ng (the normative implementation),
over injected inputs: two unit trees, a snapshot, fstabs and list files.

Section numbers refer to shared/docs/switch-to-configuration.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from nixlayer.planner.compare import Change, compare_units
from nixlayer.planner.fstab import escape_path, parse_fstab
from nixlayer.planner.model import SwitchPlan, sort_units
from nixlayer.planner.snapshot import ActiveUnit
from nixlayer.planner.unitfile import Unit, UnitTree, get_bool, is_masked

TEMPLATE_RE = re.compile(r"^(.*)@[^.]*\.(.*)$")
SUFFIX_RE = re.compile(r"\.[a-z]*$")
NEVER_RESTARTED = frozenset(
    {"sysinit.target", "basic.target", "multi-user.target", "graphical.target"}
)
SLEEP_TARGETS = frozenset({"suspend.target", "hibernate.target", "hybrid-sleep.target"})
ACTIVE = frozenset({"active", "activating"})
WARN_ACTIVATION_LISTS = (
    "WARN: restarting or reloading systemd units from the activation script is deprecated "
    "and will be removed in NixOS 26.11."
)


@dataclass(frozen=True)
class PlanInputs:
    old: UnitTree
    new: UnitTree
    snapshot: Mapping[str, ActiveUnit]
    action: str = "switch"
    old_fstab: str = ""
    new_fstab: str = ""
    leftover_start: tuple[str, ...] = ()
    leftover_restart: tuple[str, ...] = ()
    leftover_reload: tuple[str, ...] = ()
    activation_restart: tuple[str, ...] | None = None  # None: no list file
    activation_reload: tuple[str, ...] | None = None
    restart_systemd: bool = False


@dataclass
class _Sets:
    stop: set[str] = field(default_factory=set)
    start: set[str] = field(default_factory=set)
    restart: set[str] = field(default_factory=set)
    reload: set[str] = field(default_factory=set)
    skip: set[str] = field(default_factory=set)
    filter: set[str] = field(default_factory=set)


def base_of(unit: str, exists: bool) -> str:
    """`foo@bar.service` -> `foo@.service` when no file of the instance exists."""
    if not exists:
        m = TEMPLATE_RE.match(unit)
        if m:
            return f"{m.group(1)}@.{m.group(2)}"
    return unit


def base_name(base: str) -> str:
    return SUFFIX_RE.sub("", base, count=1)


class Planner:
    def __init__(self, inputs: PlanInputs) -> None:
        self.i = inputs
        self.s = _Sets()
        self.dry = inputs.action == "dry-activate"

    # --- §5 -------------------------------------------------------------------------
    def handle_modified(self, unit: str, bname: str, new: Unit, activation: bool) -> None:
        s = self.s
        if unit in NEVER_RESTARTED or unit.endswith((".path", ".slice")):
            return
        if unit.endswith(".mount"):
            (s.reload if unit in ("-.mount", "nix.mount") else s.restart).add(unit)
            return
        if unit.endswith(".socket"):
            return
        if (
            get_bool(new, "Service", "X-ReloadIfChanged", False)
            and unit not in s.restart
            and (activation or unit not in s.stop)
        ):
            s.reload.add(unit)
            return
        if (
            not get_bool(new, "Service", "X-RestartIfChanged", True)
            or get_bool(new, "Unit", "RefuseManualStop", False)
            or get_bool(new, "Unit", "X-OnlyManualStart", False)
        ):
            s.skip.add(unit)
            return
        stop = s.restart if activation else s.stop
        start = s.restart if activation else s.start
        if not get_bool(new, "Service", "X-StopIfChanged", True) or not unit.endswith(".service"):
            s.restart.add(unit)
            s.reload.discard(unit)
            return
        sockets = " ".join(new.get("Service", {}).get("Sockets", [])).split()
        if not sockets:
            sockets = [f"{bname.removesuffix('@')}.socket"]
        socket_activated = False
        for sock in sockets:
            if sock in self.i.snapshot:
                stop.add(sock)
                if self.i.new.exists(sock):
                    start.add(sock)
                    socket_activated = True
            elif self.i.new.exists(sock):
                socket_activated = True  # transitioning to socket activation
        if get_bool(new, "Service", "X-NotSocketActivated", False):
            socket_activated = False
        if not socket_activated:
            start.add(unit)
        stop.add(unit)
        s.reload.discard(unit)

    # --- §4 -------------------------------------------------------------------------
    def main_pass(self) -> None:
        old, new, s = self.i.old, self.i.new, self.s
        for unit in sorted(self.i.snapshot):
            state = self.i.snapshot[unit]
            if state.fragment_path is not None and not state.fragment_path.startswith(
                "/etc/systemd/system"
            ):
                continue
            base = base_of(unit, old.exists(unit) or new.exists(unit))
            if not old.exists(base) or state.active not in ACTIVE:
                continue
            dropins_removed = base != unit and (
                any(not is_masked(p) for p in old.dropins(unit))
                and not any(not is_masked(p) for p in new.dropins(unit))
            )
            if not new.exists(base) or new.masked(base) or dropins_removed:
                if get_bool(old.parse(unit, base), "Unit", "X-StopOnRemoval", True):
                    s.stop.add(unit)
                continue
            if unit.endswith(".target"):
                new_unit = new.parse(unit, base)
                if not (
                    unit in SLEEP_TARGETS
                    or get_bool(new_unit, "Unit", "RefuseManualStart", False)
                    or get_bool(new_unit, "Unit", "X-OnlyManualStart", False)
                ):
                    s.start.add(unit)
                    s.filter.add(unit)
                if get_bool(new_unit, "Unit", "X-StopOnReconfiguration", False):
                    s.stop.add(unit)
                continue
            change, new_unit = self._compare(unit, base)
            if change is Change.RESTART:
                self.handle_modified(unit, base_name(base), new_unit, activation=False)
            elif change is Change.RELOAD and unit not in s.restart:
                s.reload.add(unit)

    def _compare(self, unit: str, base: str) -> tuple[Change, Unit]:
        old, new = self.i.old, self.i.new
        fingerprint = old.fingerprint(unit, base)
        if fingerprint is not None and fingerprint == new.fingerprint(unit, base):
            return Change.EQUAL, {}
        old_texts, new_texts = old.texts(unit, base), new.texts(unit, base)
        if old_texts == new_texts:
            return Change.EQUAL, {}
        new_unit = new.parse(unit, base, new_texts)
        return compare_units(old.parse(unit, base, old_texts), new_unit), new_unit

    # --- §6 -------------------------------------------------------------------------
    def fstab(self) -> list[str]:
        s = self.s
        old_fs, old_swaps = parse_fstab(self.i.old_fstab)
        new_fs, new_swaps = parse_fstab(self.i.new_fstab)
        for mount_point, entry in old_fs.items():
            name = escape_path(mount_point)
            cur = new_fs.get(mount_point)
            if cur is None:
                automount = "x-systemd.automount" in entry.options
                s.stop.add(f"{name}.automount" if automount else f"{name}.mount")
            elif cur.device != entry.device or cur.fs_type != entry.fs_type:
                if mount_point in ("/", "/nix"):
                    (s.reload if cur.options != entry.options else s.skip).add(f"{name}.mount")
                else:
                    s.restart.add(f"{name}.mount")
            elif cur.options != entry.options:
                s.reload.add(f"{name}.mount")
        return sorted(dev for dev in old_swaps if dev not in new_swaps)

    # --- §8 -------------------------------------------------------------------------
    def activation_requests(self) -> None:
        old, new, s, snap = self.i.old, self.i.new, self.s, self.i.snapshot
        for unit in self.i.activation_restart or ():
            exists = new.exists(unit) or (self.dry and old.exists(unit))
            base = base_of(unit, exists)
            if unit not in snap:
                s.start.add(unit)
                continue
            new_unit = new.parse(unit, base) if new.exists(base) else {}
            self.handle_modified(unit, base_name(base), new_unit, activation=True)
        for unit in self.i.activation_reload or ():
            if unit in snap and unit not in s.restart and unit not in s.stop:
                s.reload.add(unit)

    # --- §10 step 10 ----------------------------------------------------------------
    def reload_recheck(self) -> None:
        """Units in RELOAD that are not active when reloads run are started instead.
        Predicted: not active before, or requiring (Requires=, BindsTo=, PartOf=) a
        unit that was stopped, since systemd propagates those stops."""
        s, new = self.s, self.i.new
        for unit in sorted(s.reload):
            state = self.i.snapshot.get(unit)
            if state is not None and state.active in ACTIVE and not self._stopped_with(unit):
                continue
            s.reload.discard(unit)
            if new.exists(unit) and not new.masked(unit):
                try:
                    parsed = new.parse(unit, unit)
                except ValueError:
                    continue
                if not get_bool(parsed, "Unit", "RefuseManualStart", False) or get_bool(
                    parsed, "Unit", "X-OnlyManualStart", False
                ):
                    s.start.add(unit)

    def _stopped_with(self, unit: str) -> bool:
        seen: set[str] = set()
        todo = [unit]
        while todo:
            u = todo.pop()
            if u in seen:
                continue
            seen.add(u)
            for dep in self._hard_deps(u):
                if dep in self.s.stop:
                    return True
                todo.append(dep)
        return False

    def _hard_deps(self, unit: str) -> list[str]:
        old = self.i.old
        base = base_of(unit, old.exists(unit))
        if not old.exists(base) or old.masked(base):
            return []
        try:
            parsed = old.parse(unit, base)
        except ValueError:
            return []
        section = parsed.get("Unit", {})
        deps = [
            d
            for key in ("Requires", "BindsTo", "PartOf")
            for v in section.get(key, [])
            for d in v.split()
        ]
        for suffix in (".requires",):
            d = old.path / f"{unit}{suffix}"
            if d.is_dir():
                deps += sorted(e.name for e in d.iterdir())
        return deps

    # --- the whole run --------------------------------------------------------------
    def run(self) -> SwitchPlan:
        i, s = self.i, self.s
        s.start.update(i.leftover_start)
        s.restart.update(i.leftover_restart)
        s.reload.update(i.leftover_reload)
        self.main_pass()
        swapoff = self.fstab()
        dry = self.dry
        lines = [f"{'would stop' if dry else 'stopping'} swap device: {dev}" for dev in swapoff]
        stop_shown = sort_units(s.stop - s.filter)
        skip_shown = sort_units(s.skip)
        if stop_shown:
            lines.append(_line("would stop" if dry else "stopping", stop_shown))
        if skip_shown:
            prefix = (
                "would NOT stop the following changed units: "
                if dry
                else ("NOT restarting the following changed units: ")
            )
            lines.append(prefix + ", ".join(skip_shown))
        lines.append(
            "would activate the configuration..." if dry else "activating the configuration..."
        )
        if i.activation_restart is not None or i.activation_reload is not None:
            lines.append(WARN_ACTIVATION_LISTS)
        self.activation_requests()
        if i.restart_systemd:
            lines.append("would restart systemd" if dry else "restarting systemd...")
        if not dry:
            self.reload_recheck()
        for verb, dry_verb, units in (
            ("reloading", "would reload", s.reload),
            ("restarting", "would restart", s.restart),
            ("starting", "would start", s.start - s.filter),
        ):
            if units:
                lines.append(_line(dry_verb if dry else verb, sort_units(units)))
        return SwitchPlan(
            action=i.action,
            stop=stop_shown,
            start=sort_units(s.start - s.filter),
            restart=sort_units(s.restart),
            reload=sort_units(s.reload),
            skip=skip_shown,
            filtered=sort_units(s.filter),
            silent_skip=sort_units(s.skip - set(skip_shown)),
            stop_all=sort_units(s.stop),
            start_all=sort_units(s.start),
            swapoff=swapoff,
            restart_systemd=i.restart_systemd,
            lines=lines,
        )


def _line(verb: str, units: list[str]) -> str:
    return f"{verb} the following units: {', '.join(units)}"
