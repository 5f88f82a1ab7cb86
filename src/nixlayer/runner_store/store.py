"""DIR's store as Nix and copy-mode jobs share it: its checks, Nix's path locks,
and which leftovers are nixlayer's own.

Nix (2.8 here, and since long before) locks `<path>.lock` with flock(2) while it
builds or substitutes `<path>`, and deletes the lock file when done, writing "d"
into it so that a waiter knows to retry. nixlayer takes the same lock before it
puts a path in place: a job's Nix then waits, sees the path valid, and never
builds over it. An unregistered entry whose lock is held is a running build:
never touched. Only names nixlayer journalled in DIR/.nixlayer/pending.json, and
its own staging names, are ever removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import stat
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import GuardRefusedError, InputError, NixlayerError
from nixlayer.fsutil import state_dir, write_files_atomically
from nixlayer.nix import commands
from nixlayer.nix.confine import ConfinedNix
from nixlayer.nix.nixjson.pathinfo import PathInfo, parse
from nixlayer.runner_store.safefs import UnsafePathError, open_dir, open_root, remove

log = logging.getLogger("nixlayer")

PENDING = "pending.json"
OWN_STAGING = (".nixlayer-partial", ".nixlayer-stage-")
DB_FILES = ("db.sqlite", "db.sqlite-wal", "db.sqlite-shm", "schema", "big-lock", "reserved")
_FLOCK = struct.Struct("hhqqi4x")  # struct flock on Linux x86_64


def check_layout(d: Path) -> None:
    """No symlink (or non-directory) where DIR's store and database live, and the
    database files regular: Nix follows symlinks there, so a job that planted one
    would have Nix write outside DIR. Missing parts are fine (Nix makes them)."""
    fd = open_root(str(d))
    opened = [fd]
    try:
        for comp in ("nix", "var", "nix", "db"):
            try:
                fd = open_dir(fd, comp)
            except FileNotFoundError:
                break
            except UnsafePathError as exc:
                raise GuardRefusedError(f"{d}: a symlink or file where {comp} should be") from exc
            opened.append(fd)
        else:
            for name in DB_FILES:
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if not stat.S_ISREG(st.st_mode):
                        raise GuardRefusedError(
                            f"{d}/nix/var/nix/db/{name} is not a regular file (planted?)"
                        )
        try:
            nix_fd = open_dir(opened[0], "nix")
        except FileNotFoundError:
            return
        except UnsafePathError as exc:
            raise GuardRefusedError(f"{d}/nix is a symlink or not a directory") from exc
        opened.append(nix_fd)
        try:
            opened.append(open_dir(nix_fd, "store"))
        except FileNotFoundError:
            return
        except UnsafePathError as exc:
            raise GuardRefusedError(f"{d}/nix/store is a symlink or not a directory") from exc
    finally:
        for o in opened:
            os.close(o)


def open_store(d: Path) -> int:
    """An fd of DIR/nix/store, reached without following symlinks."""
    root = open_root(str(d))
    try:
        nix_fd = open_dir(root, "nix")
        try:
            return open_dir(nix_fd, "store")
        finally:
            os.close(nix_fd)
    except UnsafePathError as exc:
        raise GuardRefusedError(f"{d}/nix/store is a symlink or not a directory") from exc
    finally:
        os.close(root)


def registered(dnix: ConfinedNix) -> dict[str, PathInfo]:
    """DIR's valid paths with their registration (one Nix call, where it cannot
    follow a symlink under DIR; the layout check only gives a clearer message)."""
    check_layout(dnix.root)
    nix = dnix.nix
    out = nix.run(commands.path_info_json(dnix.store(), nix.version(), all_paths=True)).stdout
    return parse(out).valid


@dataclass(frozen=True)
class Entry:
    name: str
    building: bool  # Nix holds its lock


def lock_held(store_fd: int, name: str) -> bool:
    """Does anyone hold Nix's lock on store entry `name`? Probed without taking
    it for more than an instant (flock, as Nix uses; and POSIX locks, just in case)."""
    try:
        fd = os.open(f"{name}.lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=store_fd)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise GuardRefusedError(f"{name}.lock in the store is a symlink (planted?)") from exc
        raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        got = fcntl.fcntl(fd, fcntl.F_GETLK, _FLOCK.pack(fcntl.F_WRLCK, 0, 0, 0, 0))
        return bool(_FLOCK.unpack(got)[0] != fcntl.F_UNLCK)
    finally:
        os.close(fd)


def unregistered(store_fd: int, valid_names: set[str]) -> list[Entry]:
    """Store entries the database does not know (not Nix's lock files or dot-entries)."""
    out = []
    for e in sorted(os.listdir(store_fd)):
        if e.startswith(".") or e.endswith(".lock") or e in valid_names:
            continue
        out.append(Entry(e, lock_held(store_fd, e)))
    return out


@contextlib.contextmanager
def path_locks(store_fd: int, names: Sequence[str]) -> Iterator[None]:
    """Hold Nix's lock on each name (as Nix does before building it)."""
    held: list[tuple[str, int]] = []
    try:
        for name in names:
            held.append((name, _acquire(store_fd, f"{name}.lock")))
        yield
    finally:
        for lock_name, fd in held:
            # As Nix releases: delete the file, then mark it deleted for waiters.
            with contextlib.suppress(OSError):
                os.unlink(lock_name + ".lock", dir_fd=store_fd)
            with contextlib.suppress(OSError):
                os.write(fd, b"d")
            os.close(fd)


def _acquire(store_fd: int, lock: str) -> int:
    waited = False
    while True:
        try:
            fd = os.open(
                lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=store_fd
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise GuardRefusedError(f"{lock} in the store is a symlink (planted?)") from exc
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                log.info("waiting for Nix's lock %s (a job is building that path)", lock)
                waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        st = os.fstat(fd)
        if st.st_nlink > 0 and st.st_size == 0:
            return fd
        os.close(fd)  # deleted by its last holder: take the new one
        time.sleep(0.01)


def pending_path(d: Path) -> Path:
    return state_dir(d) / PENDING


def journal(d: Path, names: Sequence[str]) -> None:
    write_files_atomically({pending_path(d): json.dumps(sorted(names)) + "\n"})


def clear_journal(d: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pending_path(d))


def remove_own_leftovers(d: Path, state_fd: int, store_fd: int, valid_names: set[str]) -> list[str]:
    """What an interrupted nixlayer left: journalled names still unregistered (and
    not locked by a build), its staging directories, and its work directories
    (under DIR/.nixlayer, reached by its fd)."""
    removed: list[str] = []
    for e in os.listdir(state_fd):
        if e.startswith("seed-"):  # the seed lock is ours: no other seed runs
            remove(state_fd, e)
    p = pending_path(d)
    if p.is_file() and not p.is_symlink():
        try:
            names = [str(n) for n in json.loads(p.read_text())]
        except ValueError:
            names = []
        for name in names:
            if "/" in name or name.startswith(".") or name in valid_names:
                continue
            if lock_held(store_fd, name):
                log.warning("%s: left alone, Nix holds its lock (a job is building it)", name)
                continue
            with contextlib.suppress(FileNotFoundError):
                os.stat(name, dir_fd=store_fd, follow_symlinks=False)
                log.warning("removing %s/nix/store/%s: left by an interrupted seed", d, name)
                remove(store_fd, name)
                removed.append(name)
        clear_journal(d)
    for e in os.listdir(store_fd):
        if e == OWN_STAGING[0] or e.startswith(OWN_STAGING[1]):
            remove(store_fd, e)
    return removed


def ensure_gone(store_fd: int, name: str, valid_names: set[str]) -> None:
    """Make room for a path we are about to put in place (its lock is ours): an
    unregistered entry there is a dead build or something planted, as Nix itself
    would delete before building."""
    if name in valid_names:
        raise NixlayerError(f"{name} became valid while being installed")
    remove(store_fd, name)


# The store root travels inside a store URI (local?root=DIR) and a docker volume spec.
_PLAIN_DIR = re.compile(r"^/[A-Za-z0-9._/+@-]*$")
# DIR may not be (or hold, or sit in) these: its store would mix with the system's.
SYSTEM_DIRS = (
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/nix",
    "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
    "/var/lib", "/var/tmp",
)  # fmt: skip
INSIDE_FORBIDDEN = ("/nix", "/proc", "/sys", "/dev", "/etc", "/usr", "/boot", "/bin", "/sbin")


def check_store_dir(d: Path | str) -> Path:
    """DIR must be able to hold a Nix store: absolute, plain, not a system directory
    nor inside one, a writable directory on a filesystem with symlinks. Nothing
    is created until this passes (the symlink probe lives in a temp dir it removes)."""
    p = Path(d)
    if not p.is_absolute():
        raise InputError("--dir", f"{d} is not an absolute path")
    if not _PLAIN_DIR.match(str(p)):
        raise InputError("--dir", f"{d}: use a plain path (letters, digits, . _ / + @ -)")
    real = os.path.realpath(p)
    for candidate in {os.path.normpath(p), real}:
        if candidate in SYSTEM_DIRS:
            raise InputError("--dir", f"{d} is a system directory; use e.g. /srv/nix-runner")
        inside = [s for s in INSIDE_FORBIDDEN if candidate.startswith(s + "/")]
        if inside:
            raise InputError("--dir", f"{d} is inside {inside[0]}, a system directory")
    if os.path.lexists(p) and not p.is_dir():  # a dangling link or a loop too
        raise InputError("--dir", f"{d} exists and is not a directory")
    probe_parent = p if p.exists() else next(a for a in p.parents if a.exists())
    if not os.access(probe_parent, os.W_OK):
        raise InputError("--dir", f"{probe_parent} is not writable")
    try:
        with tempfile.TemporaryDirectory(dir=probe_parent) as tmp:
            os.symlink("target", os.path.join(tmp, "link"))
    except OSError as exc:
        raise InputError(
            "--dir", f"{d} cannot hold a Nix store (no symlinks there: {exc.strerror})"
        ) from exc
    return Path(real)
