"""Build many VM closures: bounded parallelism, one lock per library revision,
and failures isolated to the VM they belong to."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
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
from nixlayer.nix.nixjson import flakelock
from nixlayer.nix.nixjson.flakelock import FlakeLock
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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _error_text(exc: NixlayerError) -> str:
    return f"error: {exc.first_error()}" if isinstance(exc, NixError) else str(exc)


def fleet_build(
    entries: Sequence[FleetEntry],
    *,
    root: Path | str | None = None,
    library: str | None = None,
    jobs: int = 1,
    nix: Nix | None = None,
) -> list[VMOutcome]:
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
        name: str, template: FlakeLock | None, update: bool = False
    ) -> FlakeLock | None:
        entry, r = planned[name]
        assert entry.spec is not None
        try:
            with target_lock(r.config_dir.parent, name):
                commit_render(r)
                lock = r.config_dir / "flake.lock"
                if template is not None and not lock.exists():
                    seeded = template.shared(
                        k for k in template.root_inputs() if not k.endswith("-src")
                    )
                    write_files_atomically(
                        {lock: json.dumps(seeded, indent=2, sort_keys=True) + "\n"}
                    )
                lock_unlocked(r.config_dir, update_library=update, nix=nix)
                return flakelock.read(lock)
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
        list(pool.map(build, [n for n in planned if n not in outcomes]))
    return [outcomes[e.name] for e in entries]
