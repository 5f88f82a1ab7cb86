"""The guard: refuse a switch that would bounce what keeps the job connected."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from nixlayer.errors import InputError
from nixlayer.layer.kinds import Kind
from nixlayer.layer.protection import Protection
from nixlayer.planner.model import SwitchPlan, sort_units
from nixlayer.planner.unitfile import UnitTree

log = logging.getLogger("nixlayer")


@dataclass(frozen=True)
class Violation:
    unit: str
    change: str  # "stop", "restart", "reload" or "skip"
    cause: str
    rule: str  # the protecting rule: its pattern and where it came from

    def line(self) -> str:
        verbs = {
            "stop": "would be stopped",
            "restart": "would be restarted",
            "reload": "would be reloaded (launchd unloads and loads it again)",
            "skip": "was changed, and switch-to-configuration would not restart it "
            "(restartIfChanged = false), so the change would silently not apply",
        }
        return f"{self.unit} {verbs[self.change]}: {self.cause} [protected: {self.rule}]"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def violations(
    plan: SwitchPlan,
    protection: Protection,
    old: UnitTree | None,
    new: UnitTree | None,
    kind: Kind = "nixos",
) -> list[Violation]:
    found: dict[str, Violation] = {}
    for change, units in (
        ("skip", [*plan.skip, *plan.silent_skip]),
        # launchd has no reload: a changed plist is unloaded and loaded again.
        ("reload", plan.reload if kind == "darwin" else []),
        ("restart", plan.restart),
        ("stop", plan.stop_all),
    ):
        for unit in units:
            rule = protection.rule_for(unit)
            if rule is not None:
                found[unit] = Violation(unit, change, explain(unit, old, new), rule.describe())
    return [found[u] for u in sort_units(frozenset(found))]


def explain(unit: str, old: UnitTree | None, new: UnitTree | None) -> str:
    """What changed in a unit between the two systems, in a few words."""
    if old is None or new is None:
        return "its definition changed"
    if not new.exists(unit):
        return "it is not in the new configuration"
    if new.masked(unit):
        return "the new configuration masks it"
    if not old.exists(unit):
        return "it is new or generated"
    try:
        a, b = old.parse(unit, unit), new.parse(unit, unit)
    except InputError:
        return "its unit file changed"
    changed = sorted(
        f"[{section}] {key}"
        for section in set(a) | set(b)
        for key in set(a.get(section, {})) | set(b.get(section, {}))
        if a.get(section, {}).get(key) != b.get(section, {}).get(key)
    )
    if not changed:
        return "it goes with a unit that changes (its socket or service)"
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return f"{shown} changed"
