"""File operations that cannot leave the directory they were given.

Every path is walked one component at a time from an open directory fd, each
component opened with O_NOFOLLOW|O_DIRECTORY, so a symlink anywhere on the way
fails with ELOOP/ENOTDIR instead of being followed. Leaves are made with calls
that never follow a final symlink either: O_CREAT|O_EXCL opens, mkdirat,
symlinkat, linkat without AT_SYMLINK_FOLLOW, renameat, unlinkat. Modes are set
with fchmod on an fd opened no-follow, times with utimensat(AT_SYMLINK_NOFOLLOW).
Nothing here takes a path string that the kernel would resolve from `/`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(Exception):
    """A component that should be a directory is a symlink or something else."""

    def __init__(self, where: str, detail: str) -> None:
        self.where = where
        super().__init__(f"{where}: {detail}")


def open_dir(parent: int, name: str) -> int:
    """Open `name` (one component) under the directory fd `parent`, never following."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(name, "is a symlink or not a directory") from exc
        raise


def open_root(path: str) -> int:
    """The one place a path is resolved by the kernel: the directory we were given."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def parts(rel: str) -> list[str]:
    out = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in out):
        raise UnsafePathError(rel, "climbs with ..")
    return out


class Tree:
    """A directory we own, written only through fds. Directory fds are cached
    (they stay valid whatever is renamed or planted later)."""

    def __init__(self, root_fd: int, label: str) -> None:
        self.root = root_fd
        self.label = label
        self._dirs: dict[str, int] = {"": root_fd}

    def close(self) -> None:
        for key, fd in self._dirs.items():
            if key:
                os.close(fd)
        self._dirs = {"": self.root}

    def forget(self, prefix: str) -> None:
        """Drop cached fds under `prefix` (before it is renamed away or removed)."""
        for key in [k for k in self._dirs if k == prefix or k.startswith(prefix + "/")]:
            os.close(self._dirs.pop(key))

    def dir(self, rel: str, create: bool = True) -> int:
        """The fd of directory `rel`, creating missing components (0700 while
        being filled) without following any symlink."""
        comps = parts(rel)
        key = ""
        fd = self.root
        for comp in comps:
            key = f"{key}/{comp}" if key else comp
            cached = self._dirs.get(key)
            if cached is not None:
                fd = cached
                continue
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(comp, 0o700, dir_fd=fd)
            try:
                fd = open_dir(fd, comp)
            except UnsafePathError as exc:
                raise UnsafePathError(
                    f"{self.label}/{key}", "is a symlink or not a directory"
                ) from exc
            self._dirs[key] = fd
        return fd

    def split(self, rel: str) -> tuple[int, str]:
        comps = parts(rel)
        if not comps:
            raise UnsafePathError(rel, "is the tree's root")
        return self.dir("/".join(comps[:-1])), comps[-1]

    def create_file(self, rel: str) -> int:
        """A new regular file, opened for writing; fails if anything is there."""
        parent, name = self.split(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(name, flags, 0o600, dir_fd=parent)

    def symlink(self, target: str, rel: str) -> None:
        parent, name = self.split(rel)
        os.symlink(target, name, dir_fd=parent)
        os.utime(name, ns=(1_000_000_000, 1_000_000_000), dir_fd=parent, follow_symlinks=False)

    def hardlink(self, src_rel: str, rel: str) -> None:
        """Link `rel` to the existing file `src_rel`, both inside this tree."""
        sparent, sname = self.split(src_rel)
        st = os.stat(sname, dir_fd=sparent, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(src_rel, "hard-link target is not a regular file")
        parent, name = self.split(rel)
        os.link(sname, name, src_dir_fd=sparent, dst_dir_fd=parent, follow_symlinks=False)

    def lstat(self, rel: str) -> os.stat_result | None:
        parent, name = self.split(rel)
        try:
            return os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None


def finish_file(fd: int, executable: bool) -> None:
    """As Nix leaves a file: read-only, executable or not, mtime 1."""
    os.fchmod(fd, 0o555 if executable else 0o444)
    os.utime(fd, ns=(1_000_000_000, 1_000_000_000))


def canonicalise_dirs(fd: int, keep_writable: bool = False) -> None:
    """Every directory under (and including, unless keep_writable) the directory
    fd: 0555, mtime 1. Files were finished when written; symlinks are not touched."""
    for name in os.listdir(fd):
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = open_dir(fd, name)
            try:
                canonicalise_dirs(sub)
            finally:
                os.close(sub)
    if not keep_writable:
        os.fchmod(fd, 0o555)
    os.utime(fd, ns=(1_000_000_000, 1_000_000_000))


def remove(parent: int, name: str) -> None:
    """Remove `name` under the directory fd `parent`, whatever it is, without
    following symlinks (a symlink is unlinked, never its target). Read-only
    directories are made writable through their own no-follow fds first."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=parent)
        return
    fd = open_dir(parent, name)
    try:
        os.fchmod(fd, 0o700)
        for entry in os.listdir(fd):
            remove(fd, entry)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def walk_files(fd: int, prefix: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """(relative name, lstat) of everything under a directory fd, no-follow."""
    for name in sorted(os.listdir(fd)):
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        rel = f"{prefix}/{name}" if prefix else name
        yield rel, st
        if stat.S_ISDIR(st.st_mode):
            sub = open_dir(fd, name)
            try:
                yield from walk_files(sub, rel)
            finally:
                os.close(sub)
