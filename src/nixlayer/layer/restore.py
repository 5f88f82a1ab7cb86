"""`nixlayer restore`: return a shared runner to the system it ran before the first job
switch, through the same guard. Idempotent, and a no-op when nothing was applied.

It returns to the *recorded* system rather than rebuilding the base: that is exactly what
ran before the job (even if the platform team updated the base flake meanwhile), it needs
no evaluation or build in a job's after_script, and it works when the job left a broken
flake behind. Before anything else, `recover` repairs a run that was killed mid-way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError
from nixlayer.layer.activate import Activation, is_running, restore_profile
from nixlayer.layer.kinds import Kind, parse_kind
from nixlayer.layer.predict import Prediction, predict, refusal
from nixlayer.layer.state import Applied, Pending, State, generation, load, locked, save
from nixlayer.layer.transient import wait_for_unit
from nixlayer.layer.where import Where
from nixlayer.nix.runner import Nix
from nixlayer.planner.model import Action

log = logging.getLogger("nixlayer")


@dataclass(frozen=True)
class RestoreResult:
    restored: bool
    reason: str
    base_system: str | None
    action: Action | None = None
    prediction: dict[str, Any] | None = None
    transient_units: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "restored": self.restored,
            "reason": self.reason,
            "base_system": self.base_system,
            "action": self.action,
            "prediction": self.prediction,
            "transient_units": self.transient_units,
        }


def recover(state: State | None, state_dir: Path, where: Where, nix: Nix) -> State | None:
    """Finish the record of an activation whose nixlayer was killed.

    If the new system is running, it was activated: keep it. Otherwise put the profile
    back at the generation recorded before, so it never points at a system that was never
    activated (a kill right after `nix-env --set`)."""
    if state is None or state.pending is None:
        return state
    pending: Pending = state.pending
    for unit in pending.units:
        wait_for_unit(unit)
    cur = where.current_for(state.kind)
    applied = state.applied
    if pending.action in ("switch", "test") and is_running(cur, Path(pending.toplevel)):
        log.warning("an interrupted activation of %s had finished; keeping it", pending.toplevel)
        applied = (*applied, _applied(pending))
    elif pending.before is not None:
        back = restore_profile(pending.before, nix)
        log.warning(
            "an earlier run was interrupted before %s was activated%s",
            pending.toplevel,
            back or "; the profile was not changed",
        )
        if back and pending.action in ("switch", "boot"):
            # Its boot loader step may have run: restore re-installs the base's entry.
            applied = (*applied, _applied(replace(pending, action="boot")))
    new = replace(state, pending=None, applied=applied)
    save(state_dir, new)
    return new


def _applied(pending: Pending) -> Applied:
    return Applied(pending.toplevel, pending.action)


def restore(
    *,
    kind: str | None = None,
    protect: Sequence[str] = (),
    allow_restart: Sequence[str] = (),
    where: Where | None = None,
    nix: Nix | None = None,
    on_plan: Callable[[Prediction], None] | None = None,
) -> RestoreResult:
    where = where or Where()
    nix = nix or Nix()
    with locked(where.state_dir) as state_dir:
        state = recover(load(state_dir), state_dir, where, nix)
        if state is None:
            return RestoreResult(False, "nothing was applied: no job switch is recorded", None)
        if kind and parse_kind(kind) != state.kind:
            raise InputError("--kind", f"the recorded switches are {state.kind}, not {kind}")
        the_kind: Kind = state.kind
        base = Path(state.base_system)
        if not base.is_dir():
            raise InputError("--state-dir", f"the recorded base system {base} no longer exists")
        cur = where.current_for(the_kind)
        profile = where.profile_for(the_kind)
        action = _action_needed(state, cur, base, profile)
        if action is None:
            save(state_dir, None)
            return RestoreResult(False, "already running the base system", str(base))
        prediction = predict(
            the_kind, base, cur, action, where, protect=protect, allow_restart=allow_restart
        )
        if prediction.refused:
            raise refusal(prediction, "restore the base")
        if on_plan:
            on_plan(prediction)
        if state.base_generation is not None and action in ("switch", "boot"):
            restore_profile(state.base_generation, nix)
        runner = where.runner(the_kind)

        def record(pending: Pending | None) -> None:
            save(state_dir, replace(state, pending=pending))

        Activation(the_kind, base, action, cur, profile, runner, nix, record).run()
        save(state_dir, None)
    return RestoreResult(
        True,
        f"restored {base} ({action})",
        str(base),
        action,
        prediction.to_json(),
        list(runner.units),
    )


def _action_needed(state: State, cur: Path, base: Path, profile: Path) -> Action | None:
    touched_boot = any(a.action in ("switch", "boot") for a in state.applied)
    running_base = is_running(cur, base)
    gen = state.base_generation
    profile_ok = gen is None or generation(profile).target == gen.target
    if not running_base:
        return "switch" if touched_boot else "test"
    if touched_boot and not profile_ok:
        return "boot"
    return None
