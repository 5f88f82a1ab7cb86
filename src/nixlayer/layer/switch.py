"""`nixlayer switch`: build the job's layer over the runner's base, predict the switch,
refuse it if a protected unit would bounce or a switch inhibitor differs, else activate
(in a transient unit, with an exact rollback where the outcome calls for one).
`nixlayer prepare`: only point the job's lock at the runner's base."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from nixlayer.errors import NixError
from nixlayer.layer.activate import Activation, ActivationResult
from nixlayer.layer.base import BaseRef, resolve_base
from nixlayer.layer.failures import IncompleteSwitchError
from nixlayer.layer.job import JobFlake, configuration_name, host_name, installable, open_job
from nixlayer.layer.kinds import KINDS, Kind, detect_kind, parse_action, parse_kind
from nixlayer.layer.outcome import Outcome
from nixlayer.layer.predict import Prediction, predict, refusal
from nixlayer.layer.state import Applied, State, generation, load, locked, save
from nixlayer.layer.state import Pending as PendingRecord
from nixlayer.layer.where import Where
from nixlayer.nix import commands
from nixlayer.nix.nixjson import build as build_json
from nixlayer.nix.runner import Nix, ProgressCallback
from nixlayer.planner.closure_diff import closure_of, diff_closures
from nixlayer.planner.model import Action, SwitchPlan

log = logging.getLogger("nixlayer")

OnInhibit = Literal["refuse", "boot"]
DEFAULT_ACTION: Action = "test"  # activates now; never the boot entry or the profile


@dataclass(frozen=True)
class SwitchResult:
    kind: Kind
    configuration: str
    base: str
    toplevel: str
    action: Action  # what was done: `boot` when inhibitors moved a switch to the next boot
    requested_action: Action
    plan: SwitchPlan
    protected: list[str]
    inhibitors: dict[str, list[str]]
    activated: bool
    outcome: str
    reboot_needed: bool
    failed_units: list[str] = field(default_factory=list)
    transient_units: list[str] = field(default_factory=list)
    closure: dict[str, Any] | None = None  # ClosureDiff of the running and the new system

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_layer(
    flake_dir: Path | str,
    *,
    base: str | None,
    kind: Kind,
    name: str | None,
    nix: Nix,
    progress: ProgressCallback | None = None,
) -> tuple[BaseRef, str, str]:
    base_ref = resolve_base(base)
    job = open_job(flake_dir, nix, base_ref)
    # The configuration it would be (--name, else the host name's) is built straight
    # away. Only a failed build asks Nix for the job's names: to fall back to `default`
    # as the rebuild tools do, or to say what was wrong as it would have first (the job
    # does not evaluate over the base, or has no such configuration); else the build's
    # own error stands.
    first = name or host_name()
    try:
        return base_ref, first, _build(job, base_ref, kind, first, nix, progress=progress)
    except NixError:
        config = configuration_name(job, base_ref, kind, name, nix)
        if config == first:
            raise
    log.info("the job has no %s.%s: building %s", KINDS[kind].outputs, first, config)
    return base_ref, config, _build(job, base_ref, kind, config, nix, progress=progress)


def _build(
    job: JobFlake,
    base: BaseRef,
    kind: Kind,
    config: str,
    nix: Nix,
    *,
    progress: ProgressCallback | None,
) -> str:
    argv = commands.build(
        installable(job, kind, config),
        out_link=None,
        progress_json=bool(progress),
        extra=[*commands.override_input("base", base.ref), "--no-write-lock-file"],
    )
    return build_json.out_path(nix.run(argv, progress=progress).stdout)


def running_store_path(current: Path) -> str | None:
    """The running system, when it is a store path (else there is no closure diff)."""
    try:
        running = os.path.realpath(current)
    except OSError:
        return None
    if not running.startswith("/nix/store/") or not os.path.isdir(running):
        return None
    return running


def _closure_or_none(toplevel: str, nix: Nix) -> dict[str, int] | None:
    """Best effort: the switch never depends on the closure diff."""
    try:
        return closure_of(toplevel, nix)
    except Exception as exc:  # whatever path-info printed or raised, the switch goes on
        log.info("no closure diff (%s)", (str(exc).splitlines() or [type(exc).__name__])[0])
        return None


def switch(
    flake_dir: Path | str = ".",
    *,
    base: str | None = None,
    action: str = DEFAULT_ACTION,
    kind: str | None = None,
    name: str | None = None,
    protect: Sequence[str] = (),
    allow_restart: Sequence[str] = (),
    on_inhibit: OnInhibit = "refuse",
    where: Where | None = None,
    nix: Nix | None = None,
    progress: ProgressCallback | None = None,
    on_plan: Callable[[Prediction], None] | None = None,
) -> SwitchResult:
    requested = parse_action(action)
    the_kind = parse_kind(kind) if kind else detect_kind()
    where = where or Where()
    nix = nix or Nix()
    with locked(where.state_dir) as state_dir:
        from nixlayer.layer.restore import recover

        state = recover(load(state_dir), state_dir, where, nix)
        cur = where.current_for(the_kind)
        # The closure diff's two `nix path-info` calls run beside the work that needs no
        # answer from them: the running system's during the build (evaluation keeps one
        # core busy), the new one's during the plan.
        beside = ThreadPoolExecutor(max_workers=1)
        try:
            running = running_store_path(cur)
            old = beside.submit(_closure_or_none, running, nix) if running else None
            base_ref, config, toplevel = build_layer(
                flake_dir, base=base, kind=the_kind, name=name, nix=nix, progress=progress
            )
            known = old is not None and not (old.done() and old.result() is None)
            new = beside.submit(_closure_or_none, toplevel, nix) if known else None
            prediction = predict(
                the_kind,
                Path(toplevel),
                cur,
                requested,
                where,
                protect=protect,
                allow_restart=allow_restart,
                on_inhibit=on_inhibit,
            )
            old_closure, new_closure = (old.result(), new.result()) if old and new else (None, None)
        except BaseException:
            # Not waiting for the closure query: the error (or the signal, whose handler
            # ends every `nix`, this one too) is reported at once.
            beside.shutdown(wait=False, cancel_futures=True)
            raise
        beside.shutdown()
        if old_closure is not None and new_closure is not None:
            prediction = replace(prediction, closure=diff_closures(old_closure, new_closure))
        if prediction.refused:
            raise refusal(prediction, "switch")
        if on_plan:
            on_plan(prediction)
        done = _activate(
            the_kind,
            toplevel=Path(toplevel),
            action=prediction.action,
            cur=cur,
            where=where,
            nix=nix,
            state=state,
        )
    result = SwitchResult(
        kind=the_kind,
        configuration=config,
        base=base_ref.ref,
        toplevel=toplevel,
        action=prediction.action,
        requested_action=requested,
        plan=prediction.plan,
        closure=prediction.closure.to_json() if prediction.closure else None,
        protected=prediction.protected,
        inhibitors={k: list(v) for k, v in prediction.inhibitors.differing.items()},
        activated=done.activated,
        outcome=done.outcome.value,
        reboot_needed=done.reboot_needed or prediction.action != requested,
        failed_units=done.failed_units,
        transient_units=done.transient_units,
    )
    if done.outcome is Outcome.UNITS_FAILED:
        raise IncompleteSwitchError(
            f"switched to {toplevel}, but some units failed: "
            f"{', '.join(done.failed_units) or 'see the output above'}; nothing was rolled back",
            result.to_json(),
        )
    if done.outcome is Outcome.REBOOT_NEEDED:
        raise IncompleteSwitchError(
            f"{toplevel} is the boot default but was not activated: reboot to use it",
            result.to_json(),
        )
    return result


def _activate(
    kind: Kind,
    *,
    toplevel: Path,
    action: Action,
    cur: Path,
    where: Where,
    nix: Nix,
    state: State | None,
) -> ActivationResult:
    runner = where.runner(kind)
    if action == "dry-activate" and kind != "nixos":
        return ActivationResult(Outcome.OK, activated=False)
    profile = where.profile_for(kind)
    if action != "dry-activate" and state is None and cur.exists():
        # The system before the first job switch: what `restore` returns to.
        state = State(kind, os.path.realpath(cur), generation(profile))
    holder = {"state": state}

    def record(pending: PendingRecord | None) -> None:
        if holder["state"] is not None and action != "dry-activate":
            holder["state"] = replace(holder["state"], pending=pending)
            save(where.state_dir, holder["state"])

    done = Activation(kind, toplevel, action, cur, profile, runner, nix, record).run()
    final = holder["state"]
    if final is not None and action != "dry-activate":
        applied = (*final.applied, Applied(str(toplevel), action))
        save(where.state_dir, replace(final, applied=applied, pending=None))
    return done


def prepare(
    flake_dir: Path | str = ".", *, base: str | None = None, nix: Nix | None = None
) -> dict[str, str]:
    """Rewrite only the job lock's `base` entry, so that a plain
    `nixos-rebuild switch --flake .` (or darwin-rebuild) builds over this runner's base."""
    nix = nix or Nix()
    base_ref = resolve_base(base)
    job = open_job(flake_dir, nix, base_ref)
    nix.run(commands.flake_lock_override(job.ref, "base", base_ref.ref))
    lock = job.directory / "flake.lock"
    if job.staged is not None:
        shutil.copyfile(job.staged / "flake.lock", lock)
    return {"lock_file": str(lock), "base": base_ref.ref, "origin": base_ref.origin}
