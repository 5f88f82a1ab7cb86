"""The decision pass of switch-to-configuration-ng over injected inputs: two unit
trees, a snapshot, fstabs and list files. Every decision carries a reason.

Function names in comments are those of upstream's
pkgs/by-name/sw/switch-to-configuration-ng/src/main.rs (nixpkgs), the revision named
in model.MODELS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nixlayer.errors import InputError
from nixlayer.planner.compare import Change, compare_units, describe_change
from nixlayer.planner.fstab import escape_path, parse_fstab
from nixlayer.planner.model import Action, Decision, SwitchPlan, UserPlan, sort_units
from nixlayer.planner.model import Change as ChangeKind
from nixlayer.planner.snapshot import ActiveUnit
from nixlayer.planner.startup import started_by_systemd
from nixlayer.planner.unitfile import Unit, UnitTree, get_bool, is_masked

TEMPLATE_RE = re.compile(r"^(.*)@[^.]*\.(.*)$")
SUFFIX_RE = re.compile(r"\.[a-z]*$")
NEVER_RESTARTED = frozenset(
    {"sysinit.target", "basic.target", "multi-user.target", "graphical.target"}
)
SLEEP_TARGETS = frozenset({"suspend.target", "hibernate.target", "hybrid-sleep.target"})
ACTIVE = frozenset({"active", "activating"})
SYSINIT_REACTIVATION = "restarting sysinit-reactivation.target"
SYSTEM_FRAGMENTS = "/etc/systemd/system"
WARN_ACTIVATION_LISTS = (
    "WARN: restarting or reloading systemd units from the activation script is deprecated "
    "and will be removed in NixOS 26.11."
)


@dataclass(frozen=True)
class PlanInputs:
    old: UnitTree
    new: UnitTree
    snapshot: Mapping[str, ActiveUnit]
    action: Action = "switch"
    old_fstab: str = ""
    new_fstab: str = ""
    leftover_start: tuple[str, ...] = ()
    leftover_restart: tuple[str, ...] = ()
    leftover_reload: tuple[str, ...] = ()
    activation_restart: tuple[str, ...] | None = None  # None: no list file
    activation_reload: tuple[str, ...] | None = None
    restart_systemd: bool = False
    fragment_prefix: str = SYSTEM_FRAGMENTS  # user scope: /etc/systemd/user
    runtime_dir: str = "/run"
    users: tuple[UserPlan, ...] = ()  # planned per user, printed after activation


@dataclass
class _Sets:
    stop: set[str] = field(default_factory=set)
    start: set[str] = field(default_factory=set)
    restart: set[str] = field(default_factory=set)
    reload: set[str] = field(default_factory=set)
    skip: set[str] = field(default_factory=set)
    filter: set[str] = field(default_factory=set)
    why: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, name: str, unit: str, reason: str) -> None:
        getattr(self, name).add(unit)
        self.why.setdefault((name, unit), reason)

    def reason(self, name: str, unit: str) -> str:
        return self.why.get((name, unit), "")


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

    # --- handle_modified_unit -------------------------------------------------------
    def handle_modified(
        self, unit: str, bname: str, new: Unit, activation: bool, cause: str
    ) -> None:
        s = self.s
        if unit in NEVER_RESTARTED or unit.endswith((".path", ".slice")):
            return
        if unit.endswith(".mount"):
            if unit in ("-.mount", "nix.mount"):
                s.add("reload", unit, f"{cause}; / and /nix are remounted, never unmounted")
            else:
                s.add("restart", unit, cause)
            return
        if unit.endswith(".socket"):
            return
        if (
            get_bool(new, "Service", "X-ReloadIfChanged", False)
            and unit not in s.restart
            and (activation or unit not in s.stop)
        ):
            s.add("reload", unit, f"{cause}; reloadIfChanged = true")
            return
        for ok, section, key, says in (
            (True, "Service", "X-RestartIfChanged", "restartIfChanged = false"),
            (False, "Unit", "RefuseManualStop", "RefuseManualStop=yes"),
            (False, "Unit", "X-OnlyManualStart", "X-OnlyManualStart=yes"),
        ):
            if get_bool(new, section, key, ok) is not ok:
                s.add("skip", unit, f"{cause}; {says}: the change applies only after a reboot")
                return
        stop, start = ("restart", "restart") if activation else ("stop", "start")
        if not get_bool(new, "Service", "X-StopIfChanged", True) or not unit.endswith(".service"):
            why = "stopIfChanged = false" if unit.endswith(".service") else "not a service"
            s.add("restart", unit, f"{cause}; {why}: restarted in one step")
            s.reload.discard(unit)
            return
        sockets = " ".join(new.get("Service", {}).get("Sockets", [])).split()
        if not sockets:
            sockets = [f"{bname.removesuffix('@')}.socket"]
        socket_activated = False
        for sock in sockets:
            if sock in self.i.snapshot:
                s.add(stop, sock, f"socket of {unit}, which changed: stopped with it")
                if self.i.new.exists(sock):
                    s.add(start, sock, f"socket of {unit}: started again, it starts the service")
                    socket_activated = True
            elif self.i.new.exists(sock):
                socket_activated = True  # transitioning to socket activation
        if get_bool(new, "Service", "X-NotSocketActivated", False):
            socket_activated = False
        if activation:
            s.add("restart", unit, cause)
        else:
            when = "by its socket on demand" if socket_activated else "after activation"
            s.add("stop", unit, f"{cause}; stopped before activation, started {when}")
            if not socket_activated:
                s.add("start", unit, f"{cause}; stopped before activation")
        s.reload.discard(unit)

    # --- collect_unit_changes -------------------------------------------------------
    def main_pass(self) -> None:
        old, new, s = self.i.old, self.i.new, self.s
        for unit in sorted(self.i.snapshot):
            state = self.i.snapshot[unit]
            if state.fragment_path is not None and not state.fragment_path.startswith(
                self.i.fragment_prefix
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
                    why = (
                        "its instance drop-ins were removed"
                        if dropins_removed
                        else "masked in the new configuration"
                        if new.exists(base)
                        else "not in the new configuration"
                    )
                    s.add("stop", unit, why)
                continue
            if unit.endswith(".target"):
                new_unit = new.parse(unit, base)
                if not (
                    unit in SLEEP_TARGETS
                    or get_bool(new_unit, "Unit", "RefuseManualStart", False)
                    or get_bool(new_unit, "Unit", "X-OnlyManualStart", False)
                ):
                    s.add("start", unit, "active target: started again to pull in what it wants")
                    s.filter.add(unit)
                if get_bool(new_unit, "Unit", "X-StopOnReconfiguration", False):
                    s.add("stop", unit, "X-StopOnReconfiguration=true: stopped and started again")
                continue
            change, old_unit, new_unit = self._compare(unit, base)
            if change is Change.RESTART:
                cause = describe_change(old_unit, new_unit)
                self.handle_modified(unit, base_name(base), new_unit, False, cause)
            elif change is Change.RELOAD and unit not in s.restart:
                s.add("reload", unit, f"{describe_change(old_unit, new_unit)}: reload-class change")

    def _compare(self, unit: str, base: str) -> tuple[Change, Unit, Unit]:
        old, new = self.i.old, self.i.new
        fingerprint = old.fingerprint(unit, base)
        if fingerprint is not None and fingerprint == new.fingerprint(unit, base):
            return Change.EQUAL, {}, {}
        old_texts, new_texts = old.texts(unit, base), new.texts(unit, base)
        if old_texts == new_texts:
            return Change.EQUAL, {}, {}
        old_unit, new_unit = old.parse(unit, base, old_texts), new.parse(unit, base, new_texts)
        return compare_units(old_unit, new_unit), old_unit, new_unit

    # --- fstab and swaps ------------------------------------------------------------
    def fstab(self) -> list[str]:
        s = self.s
        old_fs, old_swaps = parse_fstab(self.i.old_fstab)
        new_fs, new_swaps = parse_fstab(self.i.new_fstab)
        for mount_point, entry in old_fs.items():
            name = escape_path(mount_point)
            cur = new_fs.get(mount_point)
            if cur is None:
                automount = "x-systemd.automount" in entry.options
                unit = f"{name}.automount" if automount else f"{name}.mount"
                s.add("stop", unit, f"{mount_point} was removed from fstab")
            elif cur.device != entry.device or cur.fs_type != entry.fs_type:
                what = f"the device or type of {mount_point} changed in fstab"
                if mount_point in ("/", "/nix") and cur.options != entry.options:
                    s.add("reload", f"{name}.mount", f"{what}; / and /nix are only remounted")
                elif mount_point in ("/", "/nix"):
                    s.add("skip", f"{name}.mount", f"{what}; / and /nix are never unmounted")
                else:
                    s.add("restart", f"{name}.mount", what)
            elif cur.options != entry.options:
                s.add("reload", f"{name}.mount", f"mount options of {mount_point} changed: remount")
        return sorted(dev for dev in old_swaps if dev not in new_swaps)

    # --- restart and reload requests of the activation script -----------------------
    def activation_requests(self) -> None:
        old, new, s, snap = self.i.old, self.i.new, self.s, self.i.snapshot
        asked = "the activation script asked for a restart"
        for unit in self.i.activation_restart or ():
            exists = new.exists(unit) or (self.dry and old.exists(unit))
            base = base_of(unit, exists)
            if unit not in snap:
                s.add("start", unit, f"{asked}; not active, so started")
                continue
            new_unit = new.parse(unit, base) if new.exists(base) else {}
            self.handle_modified(unit, base_name(base), new_unit, True, asked)
        for unit in self.i.activation_reload or ():
            if unit in snap and unit not in s.restart and unit not in s.stop:
                s.add("reload", unit, "the activation script asked for a reload")

    # --- the reload-time re-check (after sysinit-reactivation.target) ---------------
    def reload_recheck(self) -> None:
        """Units in RELOAD not active when reloads run are started instead. Predicted: not
        active before, or requiring (Requires=, BindsTo=, PartOf=) a stopped unit."""
        s, new = self.s, self.i.new
        for unit in sorted(s.reload):
            state = self.i.snapshot.get(unit)
            stopped_with = self._stopped_with(unit)
            if state is not None and state.active in ACTIVE and stopped_with is None:
                continue
            s.reload.discard(unit)
            if new.exists(unit) and not new.masked(unit):
                try:
                    parsed = new.parse(unit, unit)
                except InputError:
                    continue
                if not get_bool(parsed, "Unit", "RefuseManualStart", False) or get_bool(
                    parsed, "Unit", "X-OnlyManualStart", False
                ):
                    why = f"it requires {stopped_with}, which is stopped" if stopped_with else ""
                    s.add(
                        "start",
                        unit,
                        f"to be reloaded, but not active by then ({why or 'not running'}): "
                        "started instead",
                    )

    def _stopped_with(self, unit: str) -> str | None:
        seen: set[str] = set()
        todo = [unit]
        while todo:
            u = todo.pop()
            if u in seen:
                continue
            seen.add(u)
            for dep in self._hard_deps(u):
                if dep in self.s.stop:
                    return dep
                todo.append(dep)
        return None

    def _hard_deps(self, unit: str) -> list[str]:
        old = self.i.old
        base = base_of(unit, old.exists(unit))
        if not old.exists(base) or old.masked(base):
            return []
        try:
            parsed = old.parse(unit, base)
        except InputError:
            return []
        section = parsed.get("Unit", {})
        deps = [
            d
            for key in ("Requires", "BindsTo", "PartOf")
            for v in section.get(key, [])
            for d in v.split()
        ]
        d = old.path / f"{unit}.requires"
        if d.is_dir():
            deps += sorted(e.name for e in d.iterdir())
        return deps

    # --- the whole run (do_system_switch, in the order it prints) -------------------
    def run(self) -> SwitchPlan:
        i, s = self.i, self.s
        leftover = f"left over in {i.runtime_dir}/nixos/%s by an interrupted switch"
        for name, leftovers in (
            ("start", i.leftover_start),
            ("restart", i.leftover_restart),
            ("reload", i.leftover_reload),
        ):
            for unit in leftovers:
                s.add(name, unit, leftover % f"{name}-list")
        self.main_pass()
        swapoff = self.fstab()
        dry = self.dry
        lines = [f"{'would stop' if dry else 'stopping'} swap device: {dev}" for dev in swapoff]
        stop_shown = sort_units(s.stop - s.filter)
        skip_shown = sort_units(s.skip)
        if stop_shown:
            lines.append(_line("would stop" if dry else "stopping", stop_shown))
        if skip_shown:
            prefix = "would NOT stop" if dry else "NOT restarting"
            lines.append(f"{prefix} the following changed units: " + ", ".join(skip_shown))
        lines.append(f"{'would activate' if dry else 'activating'} the configuration...")
        if i.activation_restart is not None or i.activation_reload is not None:
            lines.append(WARN_ACTIVATION_LISTS)
        self.activation_requests()
        if i.restart_systemd:
            lines.append("would restart systemd" if dry else "restarting systemd...")
        if not dry:
            for user in i.users:
                lines += user.lines
            lines.append(SYSINIT_REACTIVATION)
            self.reload_recheck()
        for verb, dry_verb, units in (
            ("reloading", "would reload", s.reload),
            ("restarting", "would restart", s.restart),
            ("starting", "would start", s.start - s.filter),
        ):
            if units:
                lines.append(_line(dry_verb if dry else verb, sort_units(units)))
        return self._plan(lines, stop_shown, skip_shown, swapoff)

    def _plan(
        self, lines: list[str], stop_shown: list[str], skip_shown: list[str], swapoff: list[str]
    ) -> SwitchPlan:
        i, s = self.i, self.s
        started = started_by_systemd(
            i.old, i.new, i.snapshot, starting=s.start | s.restart, stopping=s.stop
        )
        decisions = [Decision(dev, "swapoff", "removed from fstab") for dev in swapoff]
        rows: tuple[tuple[ChangeKind, str, Iterable[str]], ...] = (
            ("stop", "stop", stop_shown),
            ("skip", "skip", skip_shown),
            ("reload", "reload", s.reload),
            ("restart", "restart", s.restart),
            ("start", "start", s.start - s.filter),
            ("filtered", "start", s.filter),
            ("silent-skip", "skip", s.skip - set(skip_shown)),
        )
        for change, name, units in rows:
            decisions += [Decision(u, change, s.reason(name, u)) for u in sort_units(set(units))]
        decisions += [Decision(u, "new", why) for u, why in started.new.items()]
        decisions += [Decision(u, "conflict", why) for u, why in started.conflicts.items()]
        return SwitchPlan(
            action=i.action,
            stop=stop_shown,
            start=sort_units(s.start - s.filter),
            restart=sort_units(s.restart),
            reload=sort_units(s.reload),
            skip=skip_shown,
            filtered=sort_units(s.filter),
            silent_skip=sort_units(s.skip - set(skip_shown)),
            stop_all=sort_units(s.stop | set(started.conflicts)),
            start_all=sort_units(s.start),
            swapoff=swapoff,
            restart_systemd=i.restart_systemd,
            lines=lines,
            decisions=decisions,
            new_units=sort_units(set(started.new)),
            conflict_stops=sort_units(set(started.conflicts)),
            users=list(i.users),
        )


def _line(verb: str, units: list[str]) -> str:
    return f"{verb} the following units: {', '.join(units)}"
