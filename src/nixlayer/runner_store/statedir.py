"""DIR/.nixlayer, where seed keeps its lock, journal, record and work directories:
reached and made only through directory fds, never through a symlink.

fsutil's path-based helpers would follow a `.nixlayer`, `locks` or `seed.lock`
planted as a symlink and create the lock and a whole work tree wherever it points.
Here each component is made with mkdirat (which never follows) and opened with
O_NOFOLLOW|O_DIRECTORY, the lock file with O_NOFOLLOW: a symlink at any of them is
refused (exit 3) before anything is created under it, and one renamed in later
cannot redirect what was already opened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from nixlayer.errors import GuardRefusedError
from nixlayer.fsutil import STATE_DIR, flock_exclusive, lock_path, state_dir
from nixlayer.runner_store.safefs import UnsafePathError, open_dir, open_root


def _subdir(parent: int, name: str, shown: Path) -> int:
    """`name` under `parent` (made 0700 if missing), opened without following."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=parent)
    try:
        return open_dir(parent, name)
    except UnsafePathError as exc:
        raise GuardRefusedError(f"{shown} is a symlink or not a directory (planted?)") from exc


def open_state(d: Path) -> int:
    """An fd of DIR/.nixlayer, made if missing."""
    root = open_root(str(d))
    try:
        return _subdir(root, STATE_DIR, state_dir(d))
    finally:
        os.close(root)


@contextlib.contextmanager
def seed_lock(d: Path, state_fd: int) -> Iterator[None]:
    """DIR's seed lock (DIR/.nixlayer/locks/seed.lock, where `status` looks), an
    flock the kernel releases when the process dies."""
    path = lock_path(d, "seed")
    locks = _subdir(state_fd, path.parent.name, path.parent)
    try:
        try:
            fd = os.open(
                path.name,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=locks,
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise GuardRefusedError(f"{path} is a symlink (planted?)") from exc
            raise
    finally:
        os.close(locks)
    try:
        flock_exclusive(fd, f"waiting for another seed of {d} ({path})")
        yield
    finally:
        os.close(fd)


def make_work(d: Path, state_fd: int) -> Path:
    """A fresh DIR/.nixlayer/seed-* work directory (0700), made with mkdirat."""
    while True:
        name = f"seed-{secrets.token_hex(6)}"
        try:
            os.mkdir(name, 0o700, dir_fd=state_fd)
        except FileExistsError:
            continue
        return state_dir(d) / name
