"""The prediction switch and restore make before activating anything: the plan, the switch
inhibitors, the protection rules and what they refuse."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError, NixlayerError
from nixlayer.layer.failures import SwitchRefusedError
from nixlayer.layer.guard import Violation, violations
from nixlayer.layer.kinds import KINDS, Kind
from nixlayer.layer.protection import Family, build_protection
from nixlayer.layer.transient import systemd_running
from nixlayer.layer.where import Where
from nixlayer.planner.closure_diff import ClosureDiff
from nixlayer.planner.inhibitors import (
    InhibitorDiff,
    check_applies,
    inhibitor_verdict,
    read_inhibitors,
)
from nixlayer.planner.model import Action, SwitchPlan
from nixlayer.planner.others import (
    SERVICES_JSON,
    plan_darwin,
    plan_system_manager,
    unit_tree_or_none,
)
from nixlayer.planner.plan import plan_switch

log = logging.getLogger("nixlayer")

# The planner names its inputs after `plan`'s flags; switch and restore have other ones.
_FIELDS = {"--from": "--current", "--to": "the new system"}


@dataclass(frozen=True)
class Prediction:
    action: Action  # what will run (boot when inhibitors moved a switch to the next boot)
    plan: SwitchPlan
    protected: list[str]
    inhibitors: InhibitorDiff
    violations: list[Violation] = field(default_factory=list)
    inhibited: str | None = None  # why the inhibitors refuse (None: they do not)
    closure: ClosureDiff | None = None  # packages added, removed, changed (None: unknown)

    @property
    def refused(self) -> bool:
        return bool(self.violations) or self.inhibited is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "plan": asdict(self.plan),
            "protected": self.protected,
            "inhibitors": {k: list(v) for k, v in self.inhibitors.differing.items()},
            "closure": self.closure.to_json() if self.closure else None,
        }


def plan_for(kind: Kind, toplevel: Path, current: Path, action: Action, where: Where) -> SwitchPlan:
    if kind == "nixos":
        if where.units_file is None and not systemd_running():
            raise InputError(
                "--units",
                "systemd is not running here, so the active units cannot be asked for: pass "
                "--units FILE (from `systemctl list-units --all --output=json`)",
            )
        try:
            return plan_switch(
                toplevel,
                from_root=current,
                action="switch" if action == "boot" else action,
                units_file=where.units_file,
                runtime_dir=where.runtime_dir,
            )
        except InputError as exc:
            field_name = _FIELDS.get(exc.field, exc.field)
            raise InputError(field_name, exc.message) from exc
        except NixlayerError as exc:
            raise InputError("--units", f"{exc}; pass --units FILE with a snapshot") from exc
    try:
        if kind == "system-manager":
            return plan_system_manager(current, toplevel, action)
        return plan_darwin(current, toplevel, action)
    except (ValueError, OSError, AttributeError) as exc:
        # A unit file or services.json the planner cannot read: one line, not a traceback.
        raise InputError("the new system", f"cannot plan the {kind} switch: {exc}") from exc


def known_units(kind: Kind, roots: Sequence[Path], plan: SwitchPlan) -> set[str]:
    names: set[str] = set()
    for root in roots:
        tree = root / "etc/systemd/system"
        if kind == "nixos" and tree.is_dir():
            names |= set(os.listdir(tree))
        if kind == "system-manager" and (root / SERVICES_JSON).is_file():
            with contextlib.suppress(OSError, ValueError):
                names |= set(json.loads((root / SERVICES_JSON).read_text()))
        if kind == "darwin":
            for d in ("Library/LaunchDaemons", "Library/LaunchAgents"):
                if (root / d).is_dir():
                    names |= {p.removesuffix(".plist") for p in os.listdir(root / d)}
    for units in (plan.stop_all, plan.start_all, plan.restart, plan.reload, plan.skip):
        names |= set(units)
    return names


def predict(
    kind: Kind,
    toplevel: Path,
    current: Path,
    action: Action,
    where: Where,
    *,
    protect: Sequence[str] = (),
    allow_restart: Sequence[str] = (),
    on_inhibit: str = "refuse",
) -> Prediction:
    verdict = InhibitorDiff()
    effective = action
    inhibited: str | None = None
    if kind == "nixos":
        skipped = check_applies(action, os.environ)
        verdict = inhibitor_verdict(read_inhibitors(current), read_inhibitors(toplevel))
        if verdict.inhibited and skipped:
            log.info("switch inhibitors differ (%s), but %s", ", ".join(verdict.names), skipped)
            verdict = InhibitorDiff()
        elif verdict.inhibited:
            effective, inhibited = _on_inhibit(action, verdict, on_inhibit)
    plan = plan_for(kind, toplevel, current, effective, where)
    family: Family = "systemd" if KINDS[kind].systemd else "launchd"
    protection = build_protection(
        family=family,
        systems=[("the running system", current), ("the new system", toplevel)],
        protect=protect,
        allow_restart=allow_restart,
        known_units=known_units(kind, [current, toplevel], plan),
    )
    found: list[Violation] = []
    if effective != "boot":  # boot bounces nothing now
        found = violations(
            plan, protection, unit_tree_or_none(current), unit_tree_or_none(toplevel), kind
        )
    return Prediction(effective, plan, protection.patterns(), verdict, found, inhibited)


def _on_inhibit(
    action: Action, verdict: InhibitorDiff, on_inhibit: str
) -> tuple[Action, str | None]:
    """The action to take, and why the inhibitors refuse it (None: they do not)."""
    names = ", ".join(verdict.names)
    if on_inhibit == "boot" and action == "switch":
        log.warning(
            "switch inhibitors differ (%s): switching at the next boot instead; a reboot is "
            "needed to use the new system",
            names,
        )
        return "boot", None
    hint = (
        "pass --on-inhibit boot to make it the boot default instead (a reboot is needed)"
        if action == "switch"
        else "--action test cannot fall back to the next boot; use --action switch "
        "--on-inhibit boot, or reboot into the new system"
    )
    return action, (
        f"switch inhibitors differ between the running and the new system: "
        f"{verdict.describe()}; {hint}"
    )


def refusal(prediction: Prediction, what: str) -> SwitchRefusedError:
    found = prediction.violations
    parts = []
    if prediction.inhibited:
        parts.append(prediction.inhibited)
    if found:
        lines = "\n".join(f"  {v.line()}" for v in found)
        parts.append(
            f"{len(found)} protected unit(s) would be disturbed:\n{lines}\nKeep the job from "
            "changing these units, or pass --allow-restart UNIT to accept it"
        )
    return SwitchRefusedError(
        f"refusing to {what}: " + "\n".join(parts) + "\nNothing was activated.",
        {"refused": [v.to_json() for v in found], **prediction.to_json()},
    )
