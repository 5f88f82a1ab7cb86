"""One evaluator for many systems, then one build graph.

One `nix eval` process evaluates every target in turn, so nixpkgs, the library
and everything they import are parsed once and every derivation is hashed once,
instead of once per VM. Each target's result leaves the evaluator as a trace line
the moment it is known (`trace: nixlayer-done {...}`), preceded by
`trace: nixlayer-begin NAME`; so when a target's evaluation fails, whatever the
kind of error (`builtins.tryEval` catches only `throw` and `assert`), the
evaluator dies with that target named and Nix's own message, and a fresh one
carries on with the targets after it. The same restart holds memory to a budget:
when the evaluator is past it, or would be after one more target growing it as much
as the last one did, it is stopped after the target it just finished and a fresh
one continues (nix-eval-jobs' --max-memory-size restarts only once past it; workers
are processes here too).

Then every derivation whose output is not already valid is built in one
`nix-store --realise --keep-going` graph, and each target gets its out-link (a GC
root) and its result. A target whose locked flake and attribute were evaluated
before (same narHash, same Nix, same options) and whose output is still valid is
not evaluated again: the key is content-addressed, as Nix's own eval cache is; and
targets with one content (VMs named at boot) are evaluated once (fleet_cache.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from nixlayer.closure.fleet_cache import EvalCache, alike, source
from nixlayer.closure.fleet_nix import Evaluated, Target, fleet_expr
from nixlayer.errors import NixError, NixlayerError
from nixlayer.nix import commands, heap
from nixlayer.nix.buildfail import builder_line, failed_builder
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")

BEGIN = "trace: nixlayer-begin "
DONE = "trace: nixlayer-done "
DEFAULT_MAX_MEMORY_MB = 4096


@dataclass(frozen=True)
class Outcome:
    name: str
    toplevel: str | None
    error: str | None
    skipped: bool  # its output was already valid: nothing was built for it
    cached: bool  # its evaluation came from the cache: it was not evaluated


@dataclass
class EvalStats:
    evaluators: int = 0  # evaluator processes started
    restarts_for_memory: int = 0
    peak_rss_mb: float = 0.0
    evaluated: int = 0
    shared_pkgs: int = 0  # systems evaluated on another's package set
    alike: int = 0  # systems not evaluated: the same content as one that was
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def saw_rss(self, kb: int) -> None:
        with self._lock:
            self.peak_rss_mb = max(self.peak_rss_mb, kb / 1024)


def _rss_kb(pid: int) -> tuple[int, int]:
    """(current, peak) resident set of a process in KiB; (0, 0) once it is gone."""
    try:
        fields = dict(
            ln.split(":", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        pass
    try:  # no /proc (macOS): ps reports the current RSS in KiB
        out = subprocess.run(
            ["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.strip()
        kb = int(out) if out.isdigit() else 0
        return kb, kb
    except OSError:
        return 0, 0


def past_budget(rss_kb: int, growth_kb: int, budget_kb: int) -> bool:
    """Restart the evaluator now? When it is past the budget, or when the next target,
    growing it as much as the last one did, would take it past: restarting between
    targets is the only way to hold its peak to the budget."""
    return rss_kb + max(0, growth_kb) > budget_kb


def _one_evaluator(
    batch: Sequence[Target], nix: Nix, budget_kb: int, stats: EvalStats
) -> tuple[dict[str, Evaluated], list[Target]]:
    """Run one evaluator over `batch`; return its results and the targets it left."""
    args = commands.eval_expr(fleet_expr(batch))
    argv = nix.argv(args)
    results: dict[str, Evaluated] = {}
    current: str | None = None
    other: list[str] = []
    stopped = False
    rss_at_begin = 0
    # Through the runner: logged, and ended with nixlayer on a signal.
    with nix.stream(args) as proc:
        with stats._lock:
            stats.evaluators += 1
        assert proc.stderr is not None
        for line in proc.stderr:
            rss, peak = _rss_kb(proc.pid)
            stats.saw_rss(peak)
            if line.startswith(BEGIN):
                current, other = line[len(BEGIN) :].rstrip("\n"), []
                rss_at_begin = rss
            elif line.startswith(DONE):
                data = json.loads(line[len(DONE) :])
                results[data["name"]] = Evaluated(
                    data["name"], data["drv"], data["out"], shared=data.get("shared") is True
                )
                stats.evaluated += 1
                current = None
                if past_budget(rss, rss - rss_at_begin, budget_kb) and len(results) < len(batch):
                    stopped = True
                    stats.restarts_for_memory += 1
                    log.info(
                        "evaluator at %d MiB, the last system took %d MiB, budget %d MiB: "
                        "restarting it", rss // 1024, (rss - rss_at_begin) // 1024,
                        budget_kb // 1024,
                    )  # fmt: skip
                    proc.kill()
                    break
            else:
                other.append(line)
        returncode = proc.wait()
    if not stopped and returncode != 0 and current is not None:
        text = "".join(other)
        err = NixError(shlex.join(argv[:3]) + " …", returncode, text).first_error()
        results[current] = Evaluated(current, error=f"error: {err}")
    elif not stopped and returncode != 0:
        # Died outside any target (e.g. Nix itself failed): report it on all that are left.
        raise NixError(shlex.join(argv), returncode, "".join(other))
    left = [t for t in batch if t.name not in results]
    return results, left


def evaluate(
    targets: Sequence[Target],
    *,
    nix: Nix,
    max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
    workers: int = 1,
    stats: EvalStats | None = None,
) -> dict[str, Evaluated]:
    """Evaluate every target in at most `workers` evaluators at a time, each
    restarted after a failing target or past `max_memory_mb`."""
    stats = stats if stats is not None else EvalStats()
    budget_kb = max_memory_mb * 1024
    nix = nix.with_env(
        heap.evaluator_env(max_memory_mb, workers, {**os.environ, **(nix.env or {})})
    )
    out: dict[str, Evaluated] = {}

    def work(batch: list[Target]) -> None:
        while batch:
            results, batch = _one_evaluator(batch, nix, budget_kb, stats)
            out.update(results)
            # A target that failed lends its package set to no one: those that were
            # to take it are evaluated alone (their failure is then their own).
            failed = {
                source(t.flake) for t in targets if t.name in results and results[t.name].error
            }
            batch = [
                replace(t, pkgs_from=None) if t.pkgs_from and source(t.pkgs_from) in failed else t
                for t in batch
            ]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for f in [pool.submit(work, s) for s in _split(targets, max(1, workers)) if s]:
            f.result()
    return out


def _split(targets: Sequence[Target], workers: int) -> list[list[Target]]:
    """Targets dealt round-robin to `workers` evaluators; one that takes another's
    package set goes to that one's evaluator."""
    shares: list[list[Target]] = [[] for _ in range(workers)]
    where: dict[str, int] = {}
    dealt = 0
    for t in targets:
        lender = source(t.pkgs_from) if t.pkgs_from else None
        if lender in where:
            i = where[lender]
        else:
            i, dealt = dealt % workers, dealt + 1
        shares[i].append(t)
        where.setdefault(source(t.flake), i)
    return shares


def nar_hashes(dirs: Sequence[Path], nix: Nix) -> list[str]:
    """The narHash of each directory, as a `path:` flake's lock records it."""
    if not dirs:
        return []
    lines = nix.run(commands.hash_paths(dirs)).stdout.split()
    if len(lines) != len(dirs):
        raise NixlayerError(f"nix hash path printed {len(lines)} hashes for {len(dirs)} paths")
    return lines


def invalid_paths(paths: Sequence[str], nix: Nix) -> set[str]:
    if not paths:
        return set()
    out = nix.run(commands.check_validity(paths), tool="nix-store").stdout
    return set(out.split())


def build_targets(
    targets: Sequence[Target],
    *,
    nix: Nix,
    cache: EvalCache | None = None,
    max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
    workers: int = 1,
    stats: EvalStats | None = None,
) -> dict[str, Outcome]:
    """Evaluate (shared), build (one graph) and link every target."""
    stats = stats if stats is not None else EvalStats()
    evaluated, todo = _from_cache(targets, cache, nix)
    firsts, copies = alike(todo)
    if firsts:
        started = time.perf_counter()
        evaluated.update(
            evaluate(firsts, nix=nix, max_memory_mb=max_memory_mb, workers=workers, stats=stats)
        )
        log.info(
            "evaluated %d systems in %.1fs (%d evaluator(s), peak %.0f MiB)",
            len(firsts),
            time.perf_counter() - started,
            stats.evaluators,
            stats.peak_rss_mb,
        )
    for name, first in copies.items():
        if first in evaluated:
            evaluated[name] = replace(evaluated[first], name=name)
    if copies:
        stats.alike += len(copies)
        log.info("%d system(s) the same locked source and attribute as another: evaluated once",
                 len(copies))  # fmt: skip
    _tell_shared(firsts, evaluated, stats)
    if cache:
        for t in todo:
            if t.name in evaluated:
                cache.put(t, evaluated[t.name])
        cache.save()

    ok = {n: e for n, e in evaluated.items() if e.out_path and e.drv_path}
    invalid = invalid_paths(sorted({e.out_path for e in ok.values() if e.out_path}), nix)
    to_build = sorted({e.drv_path for e in ok.values() if e.out_path in invalid and e.drv_path})
    # Until its out-link exists, a built output is held by a root in here: a garbage
    # collection between the build and the links would otherwise delete it.
    held = Path(tempfile.mkdtemp(prefix="nixlayer-built-"))
    try:
        build_log = ""
        if to_build:
            try:
                nix.run(commands.realise(to_build, root=held / "out"), tool="nix-store")
            except NixError as exc:
                build_log = exc.stderr
            invalid = invalid_paths(sorted(invalid), nix)

        outcomes: dict[str, Outcome] = {}
        linkable: list[tuple[Target, str]] = []
        for t in targets:
            e = evaluated.get(t.name)
            if e is None or e.error or not e.out_path or not e.drv_path:
                err = (e.error if e else None) or "not evaluated"
                outcomes[t.name] = Outcome(t.name, None, err, skipped=False, cached=False)
            elif e.out_path in invalid:
                err = _build_error(build_log, e.drv_path)
                outcomes[t.name] = Outcome(t.name, None, err, skipped=False, cached=e.cached)
            else:
                linkable.append((t, e.out_path))
                skipped = e.drv_path not in to_build
                outcomes[t.name] = Outcome(t.name, e.out_path, None, skipped, e.cached)

        for name, error in _link(linkable, nix).items():
            outcomes[name] = Outcome(name, None, error, False, False)
        return outcomes
    finally:
        shutil.rmtree(held, ignore_errors=True)


def _tell_shared(todo: Sequence[Target], evaluated: dict[str, Evaluated], stats: EvalStats) -> None:
    """Count the systems evaluated on a lent package set; name those that were to be
    and were not."""
    for t in todo:
        e = evaluated.get(t.name)
        if t.pkgs_from is None or e is None or e.error:
            continue
        if e.shared:
            stats.shared_pkgs += 1
        else:
            log.info(
                "%s: evaluated on its own package set (its nixpkgs settings differ from"
                " those of the VM it was to share with, or that VM failed)",
                t.name,
            )
    if stats.shared_pkgs:
        log.info("%d system(s) evaluated on a shared package set", stats.shared_pkgs)


def _from_cache(
    targets: Sequence[Target], cache: EvalCache | None, nix: Nix
) -> tuple[dict[str, Evaluated], list[Target]]:
    """Targets answered by the cache, and those to evaluate."""
    evaluated: dict[str, Evaluated] = {}
    for t in targets:
        hit = cache.get(t) if cache else None
        if hit is not None:
            evaluated[t.name] = hit
    if evaluated:
        # A cached target whose .drv is gone (garbage-collected) is evaluated again;
        # one whose output alone is gone is rebuilt from its .drv.
        gone = invalid_paths([e.drv_path for e in evaluated.values() if e.drv_path], nix)
        evaluated = {n: e for n, e in evaluated.items() if e.drv_path not in gone}
    return evaluated, [t for t in targets if t.name not in evaluated]


def _link(linkable: Sequence[tuple[Target, str]], nix: Nix) -> dict[str, str]:
    """Point each out-link (an indirect GC root) at its output; errors by name."""
    errors: dict[str, str] = {}

    def link(item: tuple[Target, str]) -> None:
        t, out = item
        with contextlib.suppress(OSError):
            if t.out_link.is_symlink() and os.readlink(t.out_link) == out:
                return  # already our GC root for exactly this output
        t.out_link.parent.mkdir(parents=True, exist_ok=True)
        try:
            nix.run(commands.build(out, out_link=t.out_link, progress_json=False))
        except NixlayerError as exc:
            errors[t.name] = f"out-link: {exc}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(link, linkable))
    return errors


def _build_error(build_log: str, drv: str) -> str:
    lines = [ln for ln in build_log.splitlines() if ln.startswith("error:")]
    own = [ln for ln in lines if drv in ln]
    pick = own or lines or ["error: build failed"]
    raw = next((ln for ln in lines if "builder for" in ln), None)
    failed = failed_builder(build_log)  # newer Nix: "Cannot build ...", then a Reason line
    first = raw or (f"error: {builder_line(*failed)}" if failed else None)
    return pick[0] if not first or first in pick else f"{pick[0]} ({first.removeprefix('error: ')})"
