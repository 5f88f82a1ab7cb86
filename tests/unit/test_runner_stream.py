"""The fleet's shared evaluator is one of the runner's children: a signal that ends
nixlayer's `nix` processes ends it too (before, it was started beside the runner and
ran on, the fleet waiting for it). A script stands in for a `nix eval` that hangs."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from nixlayer.closure.fleet_eval import evaluate
from nixlayer.closure.fleet_nix import Target
from nixlayer.errors import Interrupted
from nixlayer.nix import runner
from nixlayer.nix.runner import Nix


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_signal_ends_the_shared_evaluator(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    fake = tmp_path / "nix"
    fake.write_text(
        f"#!/bin/sh\necho $$ > {pid_file}\necho 'trace: nixlayer-begin a' >&2\nexec sleep 60\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    nix = Nix(binary=str(fake))
    target = Target("a", "path:/x?narHash=y", ("packages", "x86_64-linux", "toplevel"), tmp_path)
    raised: list[BaseException] = []

    def work() -> None:
        try:
            evaluate([target], nix=nix)
        except BaseException as exc:  # the thread's outcome is the test's
            raised.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the evaluator did not start"
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        runner._children.stop(signal.SIGTERM)  # what the CLI's handler does
        thread.join(timeout=15)
        assert not thread.is_alive(), "the fleet still waits for its evaluator"
        assert not _alive(pid)
        assert len(raised) == 1 and isinstance(raised[0], Interrupted)
    finally:
        runner._children.reset()
        if pid_file.exists() and pid_file.read_text().strip():
            pid = int(pid_file.read_text())
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_stop_left() -> None:
    runner._children.reset()
