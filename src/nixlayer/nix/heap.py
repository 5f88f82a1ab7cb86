"""How large a heap a fleet's evaluator starts with.

Nix's Boehm GC starts with a 384 MiB heap and collects each time it fills, marking
everything still alive; an evaluator of many NixOS systems keeps a growing heap
alive, so it spends seconds marking. Starting with a larger heap collects less
often: Nix's maintainers measured `nix eval` of a NixOS configuration 25% faster
with GC_INITIAL_HEAP_SIZE=4G (NixOS/nix#16018), and Determinate Nix starts with half
the free memory, up to 4 GiB. A fleet's evaluator already has a memory budget
(past it, it is restarted), so its heap starts at half that budget, and at no more
than half the memory available now, shared among the evaluators that run at once.
A GC_INITIAL_HEAP_SIZE the user set is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

VARIABLE = "GC_INITIAL_HEAP_SIZE"
NIX_DEFAULT = 384 << 20
MEMINFO = "/proc/meminfo"


def mem_available(meminfo: str) -> int | None:
    """MemAvailable in bytes, from /proc/meminfo's text (None if it is not there)."""
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        if name == "MemAvailable":
            fields = rest.split()
            if fields and fields[0].isdigit():
                return int(fields[0]) * 1024
    return None


def initial_heap(budget_mb: int, workers: int, available: int | None) -> int | None:
    """The heap, in bytes, each of `workers` evaluators starts with; None for Nix's own."""
    size = (budget_mb << 20) // 2
    if available is not None:
        size = min(size, available // (2 * max(1, workers)))
    return size if size > NIX_DEFAULT else None


def evaluator_env(
    budget_mb: int, workers: int, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """What to add to an evaluator's environment (nothing where the user chose)."""
    if VARIABLE in environ:
        return {}
    try:
        with open(MEMINFO, encoding="ascii") as f:
            available = mem_available(f.read())
    except (OSError, UnicodeDecodeError):
        available = None
    size = initial_heap(budget_mb, workers, available)
    return {VARIABLE: str(size)} if size else {}
