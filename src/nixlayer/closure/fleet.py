"""Build many VM closures: bounded parallelism, one lock per library revision,
failures isolated to the VM they belong to and told in full in a log per VM."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from nixlayer.closure.build import build_unlocked, default_out_link
from nixlayer.closure.failure import Failure, describe, describe_build, failed_drv
from nixlayer.closure.fleet_lock import Locked, LockPlan, lock_fleet, locked, plan_lock
from nixlayer.closure.fleetspec import FleetEntry
from nixlayer.closure.lock import lock_unlocked
from nixlayer.closure.paths import config_root, prepare_root
from nixlayer.closure.render import commit_render, plan_render
from nixlayer.closure.results import RenderResult
from nixlayer.closure.spec import VMSpec
from nixlayer.errors import InputError, NixlayerError
from nixlayer.fsutil import state_dir, target_lock, write_files_atomically
from nixlayer.nix import commands
from nixlayer.nix.nixjson import flakelock
from nixlayer.nix.nixjson.flakelock import FlakeLock
from nixlayer.nix.runner import Nix
from nixlayer.safeload import read_text

log = logging.getLogger("nixlayer")

Status = Literal["built", "failed", "invalid"]
Phase = Literal["locking", "building", "built", "failed", "invalid"]
Evaluation = Literal["shared", "per-vm"]


@dataclass(frozen=True)
class VMOutcome:
    """One VM's result. `seconds` counts that VM's own steps (not its wait for a
    free slot); `error` is one line, `log` the whole failure (also in `log_file`)."""

    vm_name: str
    status: Status
    seconds: float
    toplevel: str | None = None
    init: str | None = None
    initrd: str | None = None
    config_dir: str | None = None
    library: str | None = None
    error: str | None = None
    log: str | None = None
    log_file: str | None = None
    skipped: bool = False  # its output was already valid: nothing built (shared evaluation)
    kernel_params: tuple[str, ...] = ()  # for the launcher (a host name set at boot)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FleetEvent:
    vm_name: str
    phase: Phase
    done: int  # VMs finished so far (any status)
    total: int
    seconds: float = 0.0
    error: str | None = None


class _Fleet:
    def __init__(
        self,
        entries: Sequence[FleetEntry],
        root: Path,
        nix: Nix,
        on_event: Callable[[FleetEvent], None] | None,
    ) -> None:
        self.entries = entries
        self.root = root
        self.nix = nix
        self.on_event = on_event
        self.outcomes: dict[str, VMOutcome] = {}
        self.spent: dict[str, float] = {e.name: 0.0 for e in entries}
        self.planned: dict[str, RenderResult] = {}
        self.updates: dict[str, bool] = {}  # its spec asks to re-pin its library
        self.repin: dict[str, bool] = {}  # its library is re-pinned (for its whole group)
        self.leaders: set[str] = set()  # the first VM of each library group
        self.fetched: dict[str, Path] = {}  # library ref -> store path, fetched once
        self.hashes: dict[Path, str] = {}  # pinned path: library -> NAR hash, taken once
        self.lock = threading.Lock()

    def event(self, name: str, phase: Phase, error: str | None = None) -> None:
        if self.on_event is not None:
            with self.lock:
                done = len(self.outcomes)
            self.on_event(FleetEvent(name, phase, done, len(self.entries), self.spent[name], error))

    def finish(self, outcome: VMOutcome, failure: Failure | None = None) -> None:
        log_file = self.write_log(outcome, failure)
        outcome = VMOutcome(**{**asdict(outcome), "log_file": log_file})
        with self.lock:
            self.outcomes[outcome.vm_name] = outcome
        if failure is not None:
            log.warning("%s: %s", outcome.vm_name, failure.summary)
        elif outcome.status == "built":
            log.info("%s: built %s", outcome.vm_name, outcome.toplevel)
        else:
            log.warning("%s: %s: %s", outcome.vm_name, outcome.status, outcome.error)
        self.event(outcome.vm_name, outcome.status, outcome.error)

    def fail(self, name: str, status: Status, failure: Failure) -> None:
        self.finish(
            VMOutcome(
                name,
                status,
                self.spent[name],
                error=failure.summary,
                log=failure.detail,
                config_dir=str(self.planned[name].config_dir) if name in self.planned else None,
            ),
            failure,
        )

    def write_log(self, o: VMOutcome, failure: Failure | None) -> str | None:
        """<root>/.nixlayer/logs/<vm>.log: what happened to this VM in this run."""
        if o.vm_name not in self.planned:
            return None  # an invalid spec names no safe file
        path = state_dir(self.root) / "logs" / f"{o.vm_name}.log"
        text = f"{o.vm_name}: {o.status} in {o.seconds:.1f}s\n"
        if failure is not None:
            text += f"{failure.summary}\n\n{failure.detail}"
        else:
            text += f"toplevel={o.toplevel}\ninit={o.init}\ninitrd={o.initrd}\n"
            if o.kernel_params:
                text += f"kernel_params={' '.join(o.kernel_params)}\n"
        try:
            write_files_atomically({path: text})
        except OSError as exc:
            log.warning("%s: cannot write %s: %s", o.vm_name, path, exc.strerror)
            return None
        return str(path)

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.spent[name] += time.perf_counter() - start

    def plan_lock(self, name: str, template: FlakeLock | None) -> LockPlan | None:
        try:
            plan: LockPlan = self.timed(
                name, lambda: plan_lock(self.planned[name], template, self.repin[name])
            )
            return plan
        except NixlayerError as exc:
            self.fail(name, "failed", describe(exc, "lock"))
            return None

    def render_and_lock(
        self, name: str, template: FlakeLock | None, copy: Locked | None
    ) -> Locked | None:
        """Render and lock one VM (fleet_lock.py): write `copy` when it is this VM's
        lock, else seed the group's library pins as planned and run `nix flake lock`
        (re-pinning the library only for the first VM of a group, `template` None)."""
        r = self.planned[name]
        self.event(name, "locking")

        def work() -> Locked:
            with target_lock(self.root, name):
                commit_render(r)
                lock = r.config_dir / "flake.lock"
                plan = plan_lock(r, template, self.repin[name])
                if copy is not None and copy.portable and plan.key == copy.key:
                    write_files_atomically({lock: copy.text})
                else:
                    if plan.seed is not None:
                        text = json.dumps(plan.seed, indent=2, sort_keys=True) + "\n"
                        write_files_atomically({lock: text})
                    # The group's first VM re-pins for all (the others are seeded with
                    # its pins); should it fail, each VM locks as its own spec says.
                    if name in self.leaders:
                        update = self.repin[name]
                    else:
                        update = template is None and self.updates[name]
                    lock_unlocked(
                        r.config_dir, update_library=update, nix=self.nix, hashes=self.hashes
                    )
                text = read_text(lock, flakelock.FIELD)
                return locked(r, text, flakelock.parse(text, str(lock)))

        try:
            result: Locked = self.timed(name, work)
            return result
        except NixlayerError as exc:
            self.fail(name, "failed", describe(exc, "lock"))
            return None

    def build(self, name: str) -> None:
        r = self.planned[name]
        self.event(name, "building")

        def work() -> Any:
            with target_lock(self.root, name):
                return build_unlocked(
                    r.config_dir, out_link=default_out_link(r.config_dir), nix=self.nix
                )

        try:
            b = self.timed(name, work)
        except NixlayerError as exc:
            self.fail(name, "failed", describe(exc, "build"))
            return
        self.finish(
            VMOutcome(
                name,
                "built",
                self.spent[name],
                toplevel=b.toplevel,
                init=b.init,
                initrd=b.initrd,
                config_dir=str(r.config_dir),
                library=r.library,
                kernel_params=b.kernel_params,
            )
        )

    def build_shared(
        self, todo: list[str], *, jobs: int, max_mb: int | None, share_pkgs: bool
    ) -> None:
        """One evaluator and one build graph for every VM in `todo` (fleet_eval.py);
        each VM is charged an equal share of the time it took."""
        from nixlayer.closure.fleet_shared import shared_fleet_build

        if not todo:
            return
        for name in todo:
            self.event(name, "building")
        start = time.perf_counter()
        results = shared_fleet_build(
            {n: self.planned[n] for n in todo},
            nix=self.nix,
            jobs=jobs,
            max_mb=max_mb,
            share_pkgs=share_pkgs,
        )
        share = (time.perf_counter() - start) / len(todo)
        for name in todo:
            self.spent[name] += share
            o = results[name]
            if o.status != "built":
                self.fail(name, "failed", self.graph_failure(o.error or "failed"))
                continue
            self.finish(VMOutcome(**{**asdict(o), "seconds": self.spent[name]}))

    def graph_failure(self, error: str) -> Failure:
        """A VM that failed in the shared build graph, with its builder's log tail."""
        drv = failed_drv(error)
        if drv is None:
            return Failure(summary=error, detail=error)
        try:
            log_text = self.nix.run(commands.build_log(drv)).stdout
        except NixlayerError:
            log_text = None  # no stored log (keep-build-log off, or a remote build)
        return describe_build(error, drv, log_text)


def fleet_build(
    entries: Sequence[FleetEntry],
    *,
    root: Path | str | None = None,
    library: str | None = None,
    jobs: int = 1,
    nix: Nix | None = None,
    on_event: Callable[[FleetEvent], None] | None = None,
    evaluation: Evaluation = "shared",
    max_memory_mb: int | None = None,
    share_pkgs: bool = False,
) -> list[VMOutcome]:
    """`evaluation="shared"`: one evaluator for all VMs and one build graph
    (closure/fleet_eval.py); `"per-vm"`: one `nix build` per VM, `jobs` at a time.
    `share_pkgs` (shared evaluation only): VMs that would instantiate nixpkgs
    identically take one package set (closure/fleet_pkgs.py)."""
    if share_pkgs and evaluation != "shared":
        raise InputError("share_pkgs", "sharing package sets needs the shared evaluator")
    nix = nix or Nix()
    config = config_root(root)
    fleet = _Fleet(entries, config, nix, on_event)
    for e in entries:
        if e.spec is None:
            fleet.finish(VMOutcome(e.name, "invalid", 0.0, error=e.error or "invalid spec"))
            continue
        spec = e.spec

        def plan(s: VMSpec = spec) -> RenderResult:
            return plan_render(s, root=config, library=library, nix=nix, fetched=fleet.fetched)

        try:
            fleet.planned[e.name] = fleet.timed(e.name, plan)
            fleet.updates[e.name] = spec.update_library
        except NixlayerError as exc:
            failure = describe(exc)
            fleet.finish(
                VMOutcome(
                    e.name,
                    "invalid",
                    fleet.spent[e.name],
                    error=failure.summary,
                    log=failure.detail,
                ),
                failure,
            )
    if fleet.planned:
        prepare_root(config)

    groups: dict[str, list[str]] = {}
    for name, r in fleet.planned.items():
        groups.setdefault(r.library, []).append(name)
    for names in groups.values():
        # Re-pin a library once per fleet, for every VM that shares it.
        fleet.repin.update(dict.fromkeys(names, any(fleet.updates[n] for n in names)))
        fleet.leaders.add(names[0])

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        lock_fleet(groups, plan=fleet.plan_lock, lock_vm=fleet.render_and_lock, pool=pool)
        todo = [n for n in fleet.planned if n not in fleet.outcomes]
        if evaluation == "shared":
            fleet.build_shared(todo, jobs=jobs, max_mb=max_memory_mb, share_pkgs=share_pkgs)
        else:
            list(pool.map(fleet.build, todo))
    return [fleet.outcomes[e.name] for e in entries]
