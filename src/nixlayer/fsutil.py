"""Atomic file replacement and per-target locks."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

log = logging.getLogger("nixlayer")

STATE_DIR = ".nixlayer"


def write_files_atomically(files: Mapping[Path, str]) -> tuple[Path, ...]:
    """Replace each file whose content differs, all-or-nothing up to the renames.

    Every new content is written and fsynced to a temp file beside its target
    first; only when all are on disk are they renamed into place, so a failure
    while writing leaves every previous file as it was. Returns the changed paths.
    """
    staged: list[tuple[Path, str]] = []
    try:
        for path, text in files.items():
            data = text.encode()
            if holds(path, data):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((path, tmp))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
        for path, tmp in staged:
            os.replace(tmp, path)
    except BaseException:
        for _, tmp in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    if staged:
        _fsync_dir(staged[0][0].parent)
    return tuple(path for path, _ in staged)


def holds(path: Path, data: bytes) -> bool:
    """Whether `path` is a regular file holding exactly `data`. A symlink, a FIFO or a
    device planted in its place is never followed, waited on or read: it is replaced."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # missing, a symlink (ELOOP) or unreadable: written anew
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(data):
            return False
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(len(data) + 1) == data
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def state_dir(root: Path) -> Path:
    """nixlayer's own files beside the config dirs (locks, out-links). VM names
    start with an alphanumeric, so `.nixlayer` never collides with one."""
    return root / STATE_DIR


def lock_path(root: Path, name: str) -> Path:
    return state_dir(root) / "locks" / f"{name}.lock"


@contextlib.contextmanager
def target_lock(root: Path, name: str) -> Iterator[None]:
    """Serialize runs on one target (a VM); other targets proceed in parallel.

    An flock(2) on a file per target: released by the kernel when the process
    dies, so a killed run never leaves a stale lock behind.
    """
    path = lock_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        flock_exclusive(fd, f"waiting for another nixlayer run on {name} ({path})")
        yield
    finally:
        os.close(fd)


def flock_exclusive(fd: int, waiting: str) -> None:
    """Take an exclusive flock(2) on `fd`, saying `waiting` when another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("%s", waiting)
        fcntl.flock(fd, fcntl.LOCK_EX)
