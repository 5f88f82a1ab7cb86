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

from nixlayer.closure.fleet_eval import evaluate, past_budget
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
        (4096, 1, None, 2 * GiB),  # nothing known of free memory: the budget alone
        (100_000, 4, None, 4 * GiB),  # never over 4 GiB (Nix would not start at 50 GB)
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


def test_a_cgroup_limit_bounds_the_heap(tmp_path: Path) -> None:
    """v2 (`0::/path`: memory.max - memory.current), v1's memory controller, and no limit
    ("max" in v2, a huge number in v1) on a hybrid host like this one."""
    v2 = tmp_path / "ci.slice/job"
    v2.mkdir(parents=True)
    (v2 / "memory.max").write_text(f"{6 * GiB}\n")
    (v2 / "memory.current").write_text(f"{GiB}\n")
    assert heap.cgroup_free("0::/ci.slice/job\n", tmp_path) == 5 * GiB
    (v2 / "memory.max").write_text("max\n")
    assert heap.cgroup_free("0::/ci.slice/job\n", tmp_path) is None
    v1 = tmp_path / "memory/runner"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(f"{3 * GiB}\n")
    (v1 / "memory.usage_in_bytes").write_text(f"{GiB}\n")
    hybrid = "4:memory:/runner\n1:cpu:/\n0::/\n"
    assert heap.cgroup_free(hybrid, tmp_path) == 2 * GiB
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert heap.cgroup_free(hybrid, tmp_path) is None
    # 2 GiB free in the cgroup, shared by 2 evaluators: 512 MiB each, not half the budget.
    assert heap.initial_heap(4096, 2, 2 * GiB) == 512 * MiB


def test_without_meminfo_physical_memory_bounds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heap, "MEMINFO", str(tmp_path / "none"))
    monkeypatch.setattr(heap, "CGROUP", str(tmp_path / "none"))
    import os

    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert heap.free_memory() == physical


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
    monkeypatch.setattr(heap, "CGROUP", str(tmp_path / "no-cgroup"))  # a CI job's limit
    (tmp_path / "meminfo").write_text(f"MemAvailable: {24 * GiB // 1024} kB\n")
    nix, seen = _reporting_nix(tmp_path)
    with caplog.at_level(logging.INFO, logger="nixlayer"):
        got = evaluate([_target(tmp_path)], nix=nix, max_memory_mb=2048)
    assert got["a"].out_path == "/nix/store/x"
    assert seen.read_text() == f"{GiB}\n"
    assert any(r.getMessage().startswith(f"$ GC_INITIAL_HEAP_SIZE={GiB} ") for r in caplog.records)
    assert nix.env is None  # the caller's Nix is left as it was


def test_a_heap_size_in_the_nix_env_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GC_INITIAL_HEAP_SIZE", raising=False)
    nix, seen = _reporting_nix(tmp_path)
    nix.env = {"GC_INITIAL_HEAP_SIZE": "7M"}
    evaluate([_target(tmp_path)], nix=nix, max_memory_mb=2048)
    assert seen.read_text() == "7M\n"


def test_a_heap_size_the_user_set_reaches_the_evaluator_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GC_INITIAL_HEAP_SIZE", "5M")
    nix, seen = _reporting_nix(tmp_path)
    evaluate([_target(tmp_path)], nix=nix, max_memory_mb=2048)
    assert seen.read_text() == "5M\n"


@pytest.mark.parametrize(
    ("rss", "growth", "restart"),
    [
        (900, 900, False),  # 1.8 GiB next: within 2 GiB
        (1300, 900, True),  # 2.2 GiB next: restart before, not after, passing it
        (2100, 0, True),  # already past it
        (1500, -200, False),  # shrank (a collection): the budget alone
    ],
)
def test_the_evaluator_restarts_before_the_next_system_would_pass_the_budget(
    rss: int, growth: int, restart: bool
) -> None:
    assert past_budget(rss * 1024, growth * 1024, 2048 * 1024) is restart
