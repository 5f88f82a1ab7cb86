"""Build many VM closures: bounded parallelism, one lock per library revision,
and failures isolated to the VM they belong to."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nixlayer.closure.build import build_unlocked, default_out_link
from nixlayer.closure.fleetspec import FleetEntry
from nixlayer.closure.lock import lock_unlocked
from nixlayer.closure.render import commit_render, plan_render
from nixlayer.closure.results import RenderResult
from nixlayer.errors import NixError, NixlayerError
from nixlayer.fsutil import target_lock, write_files_atomically
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")


@dataclass(frozen=True)
class VMOutcome:
    name: str
    status: str  # "built", "failed" (nix or lock error) or "invalid" (bad spec)
    seconds: float
    toplevel: str | None = None
    init: str | None = None
    initrd: str | None = None
    config_dir: str | None = None
    library: str | None = None
    error: str | None = None
    skipped: bool = False  # its output was already valid: nothing built (shared evaluation)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _error_text(exc: NixlayerError) -> str:
    return f"error: {exc.first_error()}" if isinstance(exc, NixError) else str(exc)


def shared_lock(template: dict[str, Any], keep: Sequence[str]) -> dict[str, Any]:
    """A lock file holding only `keep` root inputs of `template` and the nodes they
    reach: the library pin, shared by every VM that uses the same library."""
    nodes = template["nodes"]
    root_inputs = {k: v for k, v in nodes[template["root"]].get("inputs", {}).items() if k in keep}
    reached: set[str] = set()
    todo = [v for v in root_inputs.values() if isinstance(v, str)]
    while todo:
        n = todo.pop()
        if n in reached:
            continue
        reached.add(n)
        todo += [v for v in nodes[n].get("inputs", {}).values() if isinstance(v, str)]
    out_nodes = {n: nodes[n] for n in sorted(reached)}
    out_nodes[template["root"]] = {"inputs": root_inputs}
    return {"nodes": out_nodes, "root": template["root"], "version": template["version"]}


def fleet_build(
    entries: Sequence[FleetEntry],
    *,
    root: Path | str | None = None,
    library: str | None = None,
    jobs: int = 1,
    nix: Nix | None = None,
    evaluation: str = "shared",
    max_memory_mb: int | None = None,
) -> list[VMOutcome]:
    """`evaluation="shared"`: one evaluator for all VMs and one build graph
    (closure/fleet_eval.py); `"per-vm"`: one `nix build` per VM, `jobs` at a time."""
    nix = nix or Nix()
    started = {e.name: time.perf_counter() for e in entries}
    outcomes: dict[str, VMOutcome] = {}

    def fail(name: str, status: str, error: str) -> None:
        outcomes[name] = VMOutcome(name, status, time.perf_counter() - started[name], error=error)
        log.warning("%s: %s", name, error)

    planned: dict[str, tuple[FleetEntry, RenderResult]] = {}
    for e in entries:
        if e.spec is None:
            fail(e.name, "invalid", e.error or "invalid spec")
            continue
        try:
            planned[e.name] = (e, plan_render(e.spec, root=root, library=library, nix=nix))
        except NixlayerError as exc:
            fail(e.name, "invalid", str(exc))

    groups: dict[str, list[str]] = {}
    for name, (_, r) in planned.items():
        groups.setdefault(r.library, []).append(name)

    def render_and_lock(
        name: str, template: dict[str, Any] | None, update: bool = False
    ) -> dict[str, Any] | None:
        entry, r = planned[name]
        assert entry.spec is not None
        try:
            with target_lock(r.config_dir.parent, name):
                commit_render(r)
                lock = r.config_dir / "flake.lock"
                if template is not None and not lock.exists():
                    seeded = shared_lock(
                        template,
                        [
                            k
                            for k in template["nodes"][template["root"]]["inputs"]
                            if not k.endswith("-src")
                        ],
                    )
                    write_files_atomically(
                        {lock: json.dumps(seeded, indent=2, sort_keys=True) + "\n"}
                    )
                lock_unlocked(r.config_dir, update_library=update, nix=nix)
                data: dict[str, Any] = json.loads(lock.read_text())
                return data
        except NixlayerError as exc:
            fail(name, "failed", f"lock: {_error_text(exc)}")
            return None

    def _wants_update(names: list[str]) -> bool:
        specs = [planned[n][0].spec for n in names]
        return any(s.update_lock for s in specs if s is not None)

    def build(name: str) -> None:
        entry, r = planned[name]
        assert entry.spec is not None
        try:
            with target_lock(r.config_dir.parent, name):
                b = build_unlocked(
                    r.config_dir,
                    out_link=default_out_link(r.config_dir),
                    system=entry.spec.system,
                    configuration=r.configuration,
                    nix=nix,
                )
            outcomes[name] = VMOutcome(
                name,
                "built",
                time.perf_counter() - started[name],
                toplevel=b.toplevel,
                init=b.init,
                initrd=b.initrd,
                config_dir=str(r.config_dir),
                library=r.library,
            )
            log.info("%s: built %s", name, b.toplevel)
        except NixlayerError as exc:
            fail(name, "failed", _error_text(exc))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        # Lock each library revision once (the first VM of each group, in parallel
        # across groups), then seed the other VMs of the group with that pin.
        firsts = {
            lib: pool.submit(render_and_lock, names[0], None, _wants_update(names))
            for lib, names in groups.items()
        }
        rest = []
        for lib, names in groups.items():
            template = firsts[lib].result()
            rest += [pool.submit(render_and_lock, n, template) for n in names[1:]]
        for f in rest:
            f.result()
        outcomes.update(
            _build_all(
                evaluation,
                [n for n in planned if n not in outcomes],
                planned=planned,
                started=started,
                pool=pool,
                build=build,
                nix=nix,
                jobs=jobs,
                max_memory_mb=max_memory_mb,
            )
        )
    return [outcomes[e.name] for e in entries]


def _build_all(
    evaluation: str,
    todo: list[str],
    *,
    planned: dict[str, tuple[FleetEntry, RenderResult]],
    started: dict[str, float],
    pool: ThreadPoolExecutor,
    build: Callable[[str], None],
    nix: Nix,
    jobs: int,
    max_memory_mb: int | None,
) -> dict[str, VMOutcome]:
    """Shared: one evaluator and one build graph for `todo`; per-VM: `build` each
    (which records its own outcome)."""
    if evaluation != "shared":
        list(pool.map(build, todo))
        return {}
    from nixlayer.closure.fleet_shared import shared_fleet_build

    chosen = {n: planned[n] for n in todo}
    return shared_fleet_build(chosen, started, nix=nix, jobs=jobs, max_mb=max_memory_mb)
