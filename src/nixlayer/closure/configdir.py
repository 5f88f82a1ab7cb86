"""Install a rendered config dir in one step.

flake.nix, default.nix and the manifest only make sense together, and two file
renames can be interrupted between them. So a render writes the whole new
directory under <root>/.nixlayer/staging/ (never inside the `path:` flake, whose
every file Nix copies into the store) and swaps it with the live one by a single
renameat2(RENAME_EXCHANGE): a reader sees the old set or the new one, never a mix.
flake.lock is carried over; anything else a user left in the dir is moved along.

Where the kernel or file system cannot exchange (not Linux, old kernels), the old
dir is renamed aside first; a kill between the two renames leaves no config dir
(never a mixed one), and the next render takes the lock back from the aside copy.
The caller holds the VM's lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nixlayer.fsutil import holds, state_dir

log = logging.getLogger("nixlayer")

KEEP = ("flake.lock",)
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def staging_root(cdir: Path) -> Path:
    return state_dir(cdir.parent) / "staging"


def install(cdir: Path, files: Mapping[str, str]) -> tuple[str, ...]:
    """Make `cdir` hold exactly `files` (plus flake.lock and user files); return
    the names whose content changed (nothing is touched when none did)."""
    _recover(cdir)
    changed = tuple(name for name, text in files.items() if not holds(cdir / name, text.encode()))
    if not changed and cdir.is_dir():
        return ()
    stage = staging_root(cdir) / f"{cdir.name}.{secrets.token_hex(4)}"
    stage.mkdir(parents=True)
    try:
        for name, text in files.items():
            _write(stage / name, text.encode())
        if cdir.is_dir():
            for entry in os.listdir(cdir):
                if entry in files:
                    continue
                if entry in KEEP and not (cdir / entry).is_symlink():
                    _write(stage / entry, (cdir / entry).read_bytes())
                else:
                    os.rename(cdir / entry, stage / entry)
            _fsync(stage)
            _swap(stage, cdir)
        else:
            _fsync(stage)
            os.rename(stage, cdir)
        _fsync(cdir.parent)
    finally:
        # Success or not, the stage goes; user files it holds go back first.
        _recover(cdir)
    return changed


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _renameat2() -> Any:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return getattr(libc, "renameat2", None)


def _swap(stage: Path, cdir: Path) -> None:
    """Exchange the two directories; afterwards `stage` holds the old one."""
    fn = _renameat2()
    if fn is not None:
        rc = fn(AT_FDCWD, os.fsencode(stage), AT_FDCWD, os.fsencode(cdir), RENAME_EXCHANGE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(cdir))
    aside = Path(f"{stage}.old")
    os.rename(cdir, aside)
    os.rename(stage, cdir)
    os.rename(aside, stage)


def _recover(cdir: Path) -> None:
    """Clean up after a run that was killed mid-install: bring back a dir renamed
    aside (when the live one is missing) and the user files a stage held."""
    staging = staging_root(cdir)
    if not staging.is_dir():
        return
    mine = sorted(
        (p for p in staging.iterdir() if p.name.startswith(f"{cdir.name}.")),
        # Dirs renamed aside first: they may be the only copy of the config dir.
        key=lambda p: (not p.name.endswith(".old"), p.stat().st_mtime),
    )
    for old in mine:
        if old.name.endswith(".old") and not cdir.exists():
            log.warning("restoring %s from an interrupted render (%s)", cdir, old)
            os.rename(old, cdir)
            continue
        if cdir.is_dir():
            for entry in os.listdir(old):
                if not (cdir / entry).exists() and not (cdir / entry).is_symlink():
                    with contextlib.suppress(OSError):
                        os.rename(old / entry, cdir / entry)
        shutil.rmtree(old, ignore_errors=True)
