"""render -> lock -> build under one hold of the VM's lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nixlayer.closure.build import build_unlocked, check_out_link
from nixlayer.closure.catalog import Catalog
from nixlayer.closure.lock import lock_unlocked
from nixlayer.closure.paths import prepare_root
from nixlayer.closure.render import commit_render, plan_render
from nixlayer.closure.results import BuildResult, LockResult, RenderResult
from nixlayer.closure.spec import VMSpec
from nixlayer.fsutil import target_lock
from nixlayer.nix.runner import Nix, ProgressCallback


@dataclass(frozen=True)
class ClosureRun:
    render: RenderResult
    lock: LockResult
    build: BuildResult


def run_closure(
    spec: VMSpec,
    *,
    root: Path | str | None = None,
    library: str | None = None,
    catalog: Catalog | None = None,
    out_link: Path | str | None = None,
    nix: Nix | None = None,
    progress: ProgressCallback | None = None,
    on_rendered: Callable[[RenderResult], None] | None = None,
) -> ClosureRun:
    nix = nix or Nix()
    planned = plan_render(spec, root=root, library=library, catalog=catalog, nix=nix)
    cdir = planned.config_dir
    link = check_out_link(cdir, out_link)
    prepare_root(cdir.parent)
    with target_lock(cdir.parent, spec.vm_name):
        rendered = commit_render(planned)
        if on_rendered is not None:
            on_rendered(rendered)
        locked = lock_unlocked(cdir, update_library=spec.update_library, nix=nix)
        built = build_unlocked(cdir, out_link=link, nix=nix, progress=progress)
    return ClosureRun(render=rendered, lock=locked, build=built)
