"""What systemd itself does with the start and restart jobs switch-to-configuration
queues, which no list of switch-to-configuration shows:

- New units start because every active target is started again (upstream comment in
  `collect_unit_changes`: "This should start most changed units we stop here as well as
  any new dependencies"). A start job pulls in the unit's Wants=, Requires=, BindsTo=
  and Upholds= dependencies and its `.wants/`, `.requires/` and `.upholds/` links, so a
  unit is predicted to start iff it is reachable that way from a unit that is started
  or restarted and is not running now. This is a model, not a systemd transaction.
- Conflicts= works both ways (systemd.unit(5)): starting a unit stops every running
  unit it conflicts with, and every running unit that conflicts with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nixlayer.errors import InputError
from nixlayer.planner.snapshot import ActiveUnit
from nixlayer.planner.unitfile import Unit, UnitTree

PULLS = ("Wants", "Requires", "BindsTo", "Upholds")
LINK_DIRS = (".wants", ".requires", ".upholds")
RUNNING = frozenset({"active", "activating", "reloading", "refreshing"})
_TEMPLATE = re.compile(r"^(.*)@[^.]*\.(.*)$")


@dataclass
class Started:
    new: dict[str, str] = field(default_factory=dict)  # unit -> reason
    conflicts: dict[str, str] = field(default_factory=dict)


def _file_of(tree: UnitTree, unit: str) -> str | None:
    if tree.exists(unit):
        return unit
    m = _TEMPLATE.match(unit)
    if m and tree.exists(f"{m.group(1)}@.{m.group(2)}"):
        return f"{m.group(1)}@.{m.group(2)}"
    return None


def _parse(tree: UnitTree, unit: str) -> Unit:
    base = _file_of(tree, unit)
    if base is None or tree.masked(base):
        return {}
    try:
        return tree.parse(unit, base)
    except InputError:
        return {}


def _values(unit: Unit, key: str) -> list[str]:
    return [d for v in unit.get("Unit", {}).get(key, []) for d in v.split()]


def _pulled(tree: UnitTree, unit: str) -> list[str]:
    parsed = _parse(tree, unit)
    deps = [d for key in PULLS for d in _values(parsed, key)]
    for suffix in LINK_DIRS:
        if not tree.listed(f"{unit}{suffix}"):
            continue
        d = tree.path / f"{unit}{suffix}"
        if d.is_dir() and not d.is_symlink():
            deps += sorted(e.name for e in d.iterdir())
    return deps


def started_by_systemd(
    old: UnitTree,
    new: UnitTree,
    snapshot: Mapping[str, ActiveUnit],
    *,
    starting: Iterable[str],
    stopping: Iterable[str],
) -> Started:
    out = Started()
    jobs = set(starting)
    stopped = set(stopping)

    def running(u: str) -> bool:
        state = snapshot.get(u)
        return state is not None and state.active in RUNNING and u not in stopped

    # Breadth first from every unit that gets a start or restart job.
    todo = sorted(jobs)
    seen = set(todo)
    while todo:
        unit = todo.pop(0)
        for dep in _pulled(new, unit):
            if dep in seen:
                continue
            seen.add(dep)
            base = _file_of(new, dep)
            if base is None or new.masked(base):
                continue  # systemd cannot load it: nothing starts
            todo.append(dep)
            if dep not in jobs and not running(dep):
                was = "new in this configuration" if _file_of(old, dep) is None else "not running"
                out.new[dep] = f"{was}; pulled in by {unit}, which is started"
    # Conflicts=, both directions, against what runs after the stops.
    started = jobs | set(out.new)
    for unit in sorted(started):
        for other in _values(_parse(new, unit), "Conflicts"):
            if running(other) and other not in started:
                out.conflicts.setdefault(
                    other, f"systemd stops it: {unit}, which is started, has Conflicts={other}"
                )
    # The other direction matters only for units that do not run yet: a running unit
    # cannot already conflict with another running one. Read files before parsing them.
    fresh = {u for u in started if u not in snapshot or snapshot[u].active not in RUNNING}
    for other in sorted(u for u in snapshot if fresh and running(u) and u not in started):
        base = _file_of(new, other)
        try:
            text = "".join(new.texts(other, base)) if base else ""
        except InputError:
            continue
        if "Conflicts" not in text:
            continue
        for unit in _values(_parse(new, other), "Conflicts"):
            if unit in fresh:
                out.conflicts.setdefault(
                    other, f"systemd stops it: it has Conflicts={unit}, which is started"
                )
    return out
