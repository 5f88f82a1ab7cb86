"""A private "host" nix-daemon for the tests: Nix 2.8's nix-daemon in its own mount
namespace (`unshare -m --propagation private`) with a private directory bound over
/nix and a private NIX_CONF_DIR, so the machine's /nix and its Nix are untouched.
Containers reach it through the private directory's real host paths."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BUSYBOX = "/bin/busybox"
SAFE_CONF = f"""\
build-users-group = nixbld
sandbox = true
sandbox-fallback = false
sandbox-paths = /bin/sh={BUSYBOX}
trusted-users = nixlayer-test-admin
allowed-users = *
substituters =
experimental-features = nix-command
"""


@dataclass
class HostDaemon:
    root: Path  # the store root: root/nix/store is the daemon's /nix/store
    conf_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def socket(self) -> Path:
        return self.root / "nix/var/nix/daemon-socket/socket"

    def nix_env(self) -> dict[str, str]:
        """Environment for a host-side client of this daemon."""
        return {
            **os.environ,
            "NIX_REMOTE": f"unix://{self.socket}",
            "NIX_CONFIG": "experimental-features = nix-command\nsubstituters =",
        }


def require_daemon_tools() -> None:
    """Nix's own tools must be here where Nix is required (NIXLAYER_REQUIRE_NIX); the
    sandbox's static busybox comes with scripts/setup-docker (NIXLAYER_REQUIRE_DOCKER)."""
    missing = [t for t in ("unshare", "nix-daemon", "mount") if shutil.which(t) is None]
    reason, strict = None, bool(os.environ.get("NIXLAYER_REQUIRE_NIX"))
    if missing:
        reason = f"missing {', '.join(missing)}"
    elif os.geteuid() != 0:
        reason = "a private nix-daemon needs root (mount namespaces, build users)"
    elif not os.path.exists(BUSYBOX):
        reason = f"{BUSYBOX} missing (scripts/setup-docker installs busybox-static)"
        strict = False
    if reason:
        if strict or os.environ.get("NIXLAYER_REQUIRE_DOCKER"):
            pytest.fail(f"cannot run a private nix-daemon: {reason}")
        pytest.skip(f"cannot run a private nix-daemon: {reason}")


def start(base: Path, conf: str = SAFE_CONF, args: tuple[str, ...] = ()) -> HostDaemon:
    require_daemon_tools()
    root = base / "root"
    (root / "nix/store").mkdir(parents=True, exist_ok=True)
    (root / "nix/var/nix").mkdir(parents=True, exist_ok=True)
    conf_dir = base / "etc-nix"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "nix.conf").write_text(conf)
    log = base / "daemon.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NIX_CONF_DIR": str(conf_dir),
        "HOME": str(base),
        "NIX_USER_CONF_FILES": "",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                'mount --bind "$1" /nix && shift && exec nix-daemon "$@"',
                "sh",
                str(root / "nix"),
                *args,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = HostDaemon(root=root, conf_dir=conf_dir, proc=proc, log=log)
    deadline = time.monotonic() + 30
    while not daemon.socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(daemon)
            raise AssertionError(f"nix-daemon did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return daemon


def stop(daemon: HostDaemon) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.proc.pid, signal.SIGTERM)
    try:
        daemon.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.proc.pid, signal.SIGKILL)
        daemon.proc.wait(timeout=15)


@contextlib.contextmanager
def running(base: Path, conf: str = SAFE_CONF, args: tuple[str, ...] = ()) -> Iterator[HostDaemon]:
    daemon = start(base, conf, args)
    try:
        yield daemon
    finally:
        stop(daemon)
