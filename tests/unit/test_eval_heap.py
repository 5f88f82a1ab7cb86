"""The fleet evaluator's starting heap (nix/heap.py): half its memory budget, no more
than half the memory available shared among the evaluators, never below Nix's own
384 MiB, and never over a GC_INITIAL_HEAP_SIZE the user set. The evaluator really
gets it (a script stands in for `nix eval` and reports its environment), and the
logged command shows it, so it pastes into a shell as it ran."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from nixlayer.closure.fleet_eval import evaluate
from nixlayer.closure.fleet_nix import Target
from nixlayer.nix import heap
from nixlayer.nix.runner import Nix

GiB = 1 << 30
MiB = 1 << 20


def test_mem_available_is_read_from_meminfo() -> None:
    text = "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n"
    assert heap.mem_available(text) == 20_000_000 * 1024
    assert heap.mem_available("MemTotal: 5 kB\n") is None
    assert heap.mem_available("MemAvailable: lots kB\n") is None


@pytest.mark.parametrize(
    ("budget_mb", "workers", "available", "expected"),
    [
        (4096, 1, 24 * GiB, 2 * GiB),  # half the budget
        (4096, 1, None, 2 * GiB),  # /proc/meminfo unreadable: the budget alone
        (4096, 2, 2 * GiB, 512 * MiB),  # half the available memory, shared by 2
        (4096, 8, 2 * GiB, None),  # 128 MiB each: Nix's own 384 MiB is larger
        (512, 1, 24 * GiB, None),  # 256 MiB: likewise
    ],
)
def test_initial_heap(
    budget_mb: int, workers: int, available: int | None, expected: int | None
) -> None:
    assert heap.initial_heap(budget_mb, workers, available) == expected


def test_the_users_own_setting_is_kept() -> None:
    assert heap.evaluator_env(4096, 1, {"GC_INITIAL_HEAP_SIZE": "5M"}) == {}


def _reporting_nix(tmp_path: Path) -> tuple[Nix, Path]:
    seen = tmp_path / "seen"
    script = tmp_path / "nix"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "${{GC_INITIAL_HEAP_SIZE:-unset}}" > {seen}\n'
        "echo 'trace: nixlayer-begin a' >&2\n"
        "echo 'trace: nixlayer-done "
        """{"name":"a","drv":"/nix/store/x.drv","out":"/nix/store/x"}' >&2\n"""
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return Nix(binary=str(script)), seen


def _target(tmp_path: Path) -> Target:
    return Target("a", "path:/x?narHash=y", ("packages", "x86_64-linux", "toplevel"), tmp_path)


def test_the_evaluator_starts_with_the_heap_and_the_log_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("GC_INITIAL_HEAP_SIZE", raising=False)
    monkeypatch.setattr(heap, "MEMINFO", str(tmp_path / "meminfo"))
    (tmp_path / "meminfo").write_text(f"MemAvailable: {24 * GiB // 1024} kB\n")
    nix, seen = _reporting_nix(tmp_path)
    with caplog.at_level(logging.INFO, logger="nixlayer"):
        got = evaluate([_target(tmp_path)], nix=nix, max_memory_mb=2048)
    assert got["a"].out_path == "/nix/store/x"
    assert seen.read_text() == f"{GiB}\n"
    assert any(r.getMessage().startswith(f"$ GC_INITIAL_HEAP_SIZE={GiB} ") for r in caplog.records)
    assert nix.env is None  # the caller's Nix is left as it was


def test_a_heap_size_the_user_set_reaches_the_evaluator_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GC_INITIAL_HEAP_SIZE", "5M")
    nix, seen = _reporting_nix(tmp_path)
    evaluate([_target(tmp_path)], nix=nix, max_memory_mb=2048)
    assert seen.read_text() == "5M\n"
