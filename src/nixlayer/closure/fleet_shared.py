"""Fleet sources for the shared evaluator: rendered per-VM config dirs, and the
`nixosConfigurations` of an existing flake (all, or those matching globs)."""

from __future__ import annotations

import contextlib
import fnmatch
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nixlayer.closure.bootspec import read_bootspec
from nixlayer.closure.build import _evaluated_initrd, default_out_link
from nixlayer.closure.fleet_cache import EvalCache
from nixlayer.closure.fleet_eval import (
    DEFAULT_MAX_MEMORY_MB,
    EvalStats,
    Outcome,
    build_targets,
    nar_hashes,
)
from nixlayer.closure.fleet_nix import Target
from nixlayer.closure.fleet_pkgs import pkgs_leaders
from nixlayer.errors import InputError, NixError, NixlayerError
from nixlayer.fsutil import state_dir, target_lock
from nixlayer.nix import commands
from nixlayer.nix.nixjson import evaluate, metadata
from nixlayer.nix.runner import Nix

if TYPE_CHECKING:
    from nixlayer.closure.fleet import VMOutcome
    from nixlayer.closure.results import RenderResult

# A configuration name becomes a file name (its out-link) and a trace line.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def locked_path_ref(directory: Path, nar_hash: str) -> str:
    return f"path:{directory}?narHash={urllib.parse.quote(nar_hash, safe='')}"


def _error_text(exc: NixlayerError) -> str:
    return f"error: {exc.first_error()}" if isinstance(exc, NixError) else str(exc)


def shared_fleet_build(
    planned: Mapping[str, RenderResult],
    *,
    nix: Nix,
    jobs: int = 1,
    max_mb: int | None = None,
    stats: EvalStats | None = None,
    share_pkgs: bool = False,
) -> dict[str, VMOutcome]:
    """Build rendered, locked VMs: one evaluator, one build graph, same results
    (out-links, VMOutcome) as one `nix build` per VM. `share_pkgs`: VMs that would
    instantiate nixpkgs identically take one package set (fleet_pkgs.py)."""
    from nixlayer.closure.fleet import VMOutcome

    names = list(planned)
    if not names:
        return {}
    cdirs = {n: planned[n].config_dir for n in names}

    def outcome(name: str, status: str, **kw: str | bool | tuple[str, ...] | None) -> VMOutcome:
        # The caller charges each VM its share of the time.
        return VMOutcome(name, status, 0.0, **kw)  # type: ignore[arg-type]

    leaders = pkgs_leaders(planned) if share_pkgs else {}
    root = cdirs[names[0]].parent
    with contextlib.ExitStack() as held:
        # Hold every VM's lock, in one order, as one `nix build` per VM would; hash
        # under them, since a VM with another's content is not evaluated (nor its
        # hash checked by Nix) and must be the content that was hashed.
        for n in sorted(names):
            held.enter_context(target_lock(cdirs[n].parent, n))
        try:
            hashes = dict(zip(names, nar_hashes([cdirs[n] for n in names], nix), strict=True))
        except NixlayerError as exc:
            return {n: outcome(n, "failed", error=_error_text(exc)) for n in names}
        refs = {n: locked_path_ref(cdirs[n], hashes[n]) for n in names}
        targets = []
        for n in names:
            attr = ("packages", planned[n].system, "toplevel")  # as render recorded it
            targets.append(
                Target(
                    n,
                    refs[n],
                    attr,
                    default_out_link(cdirs[n]),
                    config=("nixosConfigurations", planned[n].configuration),
                    pkgs_from=refs[leaders[n]] if n in leaders else None,
                )
            )
        results = build_targets(
            targets,
            nix=nix,
            cache=EvalCache(state_dir(root) / "eval-cache.json", nix),
            max_memory_mb=max_mb or DEFAULT_MAX_MEMORY_MB,
            workers=jobs,
            stats=stats,
        )
    out: dict[str, VMOutcome] = {}
    for n in names:
        r = results[n]
        if r.toplevel is None:
            out[n] = outcome(n, "failed", error=r.error)
            continue
        spec = read_bootspec(Path(r.toplevel))
        init = spec.init if spec else f"{r.toplevel}/init"
        initrd = spec.initrd if spec else None
        if initrd is None:
            try:
                initrd = _evaluated_initrd(nix, refs[n], planned[n].configuration)
            except NixlayerError as exc:
                out[n] = outcome(n, "failed", error=_error_text(exc))
                continue
        manifest = planned[n].manifest
        out[n] = outcome(
            n,
            "built",
            toplevel=r.toplevel,
            init=init,
            initrd=initrd,
            config_dir=str(cdirs[n]),
            library=planned[n].library,
            skipped=r.skipped,
            # Cannot be refused here: render named the dir after a valid vm_name and
            # refuses a symlink in its place (paths.config_dir_for).
            kernel_params=manifest.kernel_params(cdirs[n]) if manifest else (),
        )
    return out


def flake_configurations(flake: str, select: Sequence[str], nix: Nix) -> tuple[str, list[str]]:
    """The locked URL of `flake` and the names of its nixosConfigurations that match
    any of `select` (shell globs; all when empty)."""
    locked = metadata.parse(nix.run(commands.flake_metadata(flake)).stdout).url
    proc = nix.run(
        commands.eval_json(f"{locked}#nixosConfigurations", apply="c: builtins.attrNames (c)")
    )
    every = evaluate.names(proc.stdout)
    chosen = [n for n in every if not select or any(fnmatch.fnmatchcase(n, g) for g in select)]
    if not chosen:
        raise InputError(
            "--select",
            f"{', '.join(select)} matches none of {flake}'s nixosConfigurations"
            f" ({', '.join(every) or 'none'})",
        )
    return locked, chosen


def flake_fleet_build(
    flake: str,
    *,
    root: Path,
    select: Sequence[str] = (),
    nix: Nix | None = None,
    jobs: int = 1,
    max_mb: int | None = None,
    stats: EvalStats | None = None,
) -> list[VMOutcome]:
    """Build `nixosConfigurations.<name>.config.system.build.toplevel` of a flake for
    every selected name, out-links under `<root>/.nixlayer/results/<name>`."""
    from nixlayer.closure.fleet import VMOutcome

    nix = nix or Nix()
    start = time.perf_counter()
    locked, chosen = flake_configurations(flake, select, nix)
    results_dir = state_dir(root) / "results"
    bad = [n for n in chosen if not SAFE_NAME.fullmatch(n)]
    targets = [
        Target(
            n,
            locked,
            ("nixosConfigurations", n, "config", "system", "build", "toplevel"),
            results_dir / n,
        )
        for n in chosen
        if n not in bad
    ]
    with target_lock(root, ".flake-fleet"):
        results: dict[str, Outcome] = build_targets(
            targets,
            nix=nix,
            cache=EvalCache(state_dir(root) / "eval-cache.json", nix),
            max_memory_mb=max_mb or DEFAULT_MAX_MEMORY_MB,
            workers=jobs,
            stats=stats,
        )
    seconds = time.perf_counter() - start
    out = []
    for n in chosen:
        if n in bad:
            out.append(VMOutcome(n, "invalid", 0.0, error=f"unsafe configuration name {n!r}"))
            continue
        r = results[n]
        if r.toplevel is None:
            out.append(VMOutcome(n, "failed", seconds, error=r.error, library=locked))
            continue
        spec = read_bootspec(Path(r.toplevel))
        out.append(
            VMOutcome(
                n,
                "built",
                seconds,
                toplevel=r.toplevel,
                init=spec.init if spec else f"{r.toplevel}/init",
                initrd=spec.initrd if spec else None,
                library=locked,
                skipped=r.skipped,
            )
        )
    return out
