"""SIGTERM and SIGINT in the middle of a real `nix build`: nixlayer ends its `nix`
children (and their builders), and releases the VM's lock only after they are gone."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from nixlayer.closure.manifest import MANIFEST, Manifest
from nixlayer.fsutil import lock_path, state_dir
from tests.helpers import nixlayer_bin

pytestmark = pytest.mark.nix

SLOW_FLAKE = """{
  outputs = { self }: {
    packages.x86_64-linux.toplevel = derivation {
      name = "slow-build";
      system = "x86_64-linux";
      builder = "/bin/sh";
      marker = "MARKER";
      args = [ "-c" "echo $$ > $marker; exec /bin/sleep 300" ];
    };
  };
}
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _tree() -> str:
    return subprocess.run(
        ["ps", "-eo", "pid,ppid,pgid,stat,args"], capture_output=True, text=True, check=False
    ).stdout


def _wait_for(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_build_ends_nix_before_the_lock_is_released(
    tmp_path: Path, nix_available: None, signum: int, status: int
) -> None:
    root = tmp_path / "vms"
    cdir = root / "slow"
    cdir.mkdir(parents=True)
    marker = tmp_path / "builder.pid"
    # A derivation unique to this test, so no earlier run has built it.
    (cdir / "flake.nix").write_text(
        SLOW_FLAKE.replace("MARKER", str(marker)).replace("slow-build", f"slow-{tmp_path.name}")
    )
    # build reads what to build from render's manifest: a minimal one for this bare flake.
    manifest = Manifest("slow", "slow", "x86_64-linux", "path:/nonexistent", "nixlayer")
    (cdir / MANIFEST).write_text(manifest.text())
    proc = subprocess.Popen(
        [nixlayer_bin(), "build", str(cdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a terminal's foreground job
    )
    try:
        _wait_for(lambda: proc.poll() is not None or (marker.exists() and marker.read_text()))
        assert proc.poll() is None, proc.communicate()
        builder = int(marker.read_text())
        nix = [p for p in _children(proc.pid) if _alive(p)]
        assert nix and _alive(builder), f"nix and its builder run: {_tree()}"
        assert all(os.getpgid(p) == p for p in nix), "each nix leads its own process group"
        lock_fd = os.open(lock_path(root, "slow"), os.O_RDWR)
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)  # what Ctrl-C does: nix is not in that group
        else:
            proc.send_signal(signum)
        # The moment the lock can be taken, nothing of the build may be left running.
        deadline = time.monotonic() + 60
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the lock was never released"
                time.sleep(0.005)
        survivors = [p for p in [*nix, builder] if _alive(p)]
        os.close(lock_fd)
        assert survivors == [], "a nix process outlived the lock"
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == status, stderr
        assert "Traceback" not in stderr and "interrupted" in stderr
        time.sleep(1)
        assert not (state_dir(root) / "results" / "slow").exists(), "no late out-link"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
