"""How large a heap a fleet's evaluator starts with.

Nix's Boehm GC starts small (Nix 2.8: 384 MiB, or a quarter of the RAM if less) and
collects each time the heap fills, marking everything still alive; an evaluator of
many NixOS systems keeps a growing heap alive, so it spends seconds marking.
Starting with a larger heap collects less often: Nix's maintainers measured `nix
eval` of a NixOS configuration 25% faster with GC_INITIAL_HEAP_SIZE=4G
(NixOS/nix#16018), and Determinate Nix starts with half the free memory, up to
4 GiB (NixOS/nix#11130). The cost is memory: the heap fills before a first
collection, so resident memory climbs towards it even when little is alive.

So a fleet's evaluator, which already has a memory budget (past it, it is
restarted), starts with half that budget, and at most 4 GiB and half the memory
free now (the host's, and the cgroup's where one limits this process), shared
among the evaluators that run at once. A GC_INITIAL_HEAP_SIZE the user set is
left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

VARIABLE = "GC_INITIAL_HEAP_SIZE"
NIX_DEFAULT = 384 << 20
CAP = 4 << 30
MEMINFO = "/proc/meminfo"
CGROUP = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"


def mem_available(meminfo: str) -> int | None:
    """MemAvailable in bytes, from /proc/meminfo's text (None if it is not there)."""
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        if name == "MemAvailable":
            fields = rest.split()
            if fields and fields[0].isdigit():
                return int(fields[0]) * 1024
    return None


def cgroup_free(proc_cgroup: str, root: Path) -> int | None:
    """What the memory cgroup of this process still allows (limit minus usage), in
    bytes; None without a limit. cgroup v2 (`0::/path`), else v1's memory controller."""
    for line in proc_cgroup.splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hier == "0" and controllers == "":
            where, files = root / path.lstrip("/"), ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            where = root / "memory" / path.lstrip("/")
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        limit, used = (_read_int(where / f) for f in files)
        if limit is not None and used is not None and limit < 1 << 60:  # v1's "no limit"
            return max(0, limit - used)
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # v2's "max" is no limit


def initial_heap(budget_mb: int, workers: int, free: int | None) -> int | None:
    """The heap, in bytes, each of `workers` evaluators starts with; None for Nix's own."""
    size = min((budget_mb << 20) // 2, CAP)
    if free is not None:
        size = min(size, free // (2 * max(1, workers)))
    return size if size > NIX_DEFAULT else None


def free_memory() -> int | None:
    """The memory free for this process now: the host's available memory, or less where
    a cgroup limits it; physical memory when /proc/meminfo cannot be read."""
    frees: list[int] = []
    try:
        with open(MEMINFO, encoding="ascii") as f:
            available = mem_available(f.read())
    except (OSError, UnicodeDecodeError):
        available = None
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (OSError, ValueError):
            available = None
    if available is not None:
        frees.append(available)
    try:
        with open(CGROUP, encoding="utf-8") as f:
            in_cgroup = cgroup_free(f.read(), Path(CGROUP_ROOT))
    except (OSError, UnicodeDecodeError):
        in_cgroup = None
    if in_cgroup is not None:
        frees.append(in_cgroup)
    return min(frees) if frees else None


def evaluator_env(
    budget_mb: int, workers: int, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """What to add to an evaluator's environment (nothing where the user chose)."""
    if VARIABLE in environ:
        return {}
    size = initial_heap(budget_mb, workers, free_memory())
    return {VARIABLE: str(size)} if size else {}
