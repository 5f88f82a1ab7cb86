"""The NAR hash of a store path, as `nix hash path` computes it, and its NAR size.

Written here (no maintained library does it) so that a seed can hash each store
path while the next one is still being copied; tests check it against Nix.
Walks with directory fds and no-follow opens: a symlink is hashed as a symlink
and never entered, whatever is planted while hashing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from typing import Any

_CHUNK = 1 << 20
_NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Sink:
    def __init__(self) -> None:
        self.h: Any = hashlib.sha256()
        self.size = 0

    def raw(self, data: bytes) -> None:
        self.h.update(data)
        self.size += len(data)

    def put(self, data: bytes) -> None:
        self.raw(len(data).to_bytes(8, "little"))
        self.raw(data)
        pad = -len(data) % 8
        if pad:
            self.raw(b"\0" * pad)


def _dump(sink: _Sink, parent: int, name: bytes) -> None:
    st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    sink.put(b"(")
    if stat.S_ISLNK(st.st_mode):
        sink.put(b"type")
        sink.put(b"symlink")
        sink.put(b"target")
        sink.put(os.readlink(name, dir_fd=parent))
    elif stat.S_ISREG(st.st_mode):
        sink.put(b"type")
        sink.put(b"regular")
        if st.st_mode & stat.S_IXUSR:
            sink.put(b"executable")
            sink.put(b"")
        sink.put(b"contents")
        fd = os.open(name, _NOFOLLOW, dir_fd=parent)
        try:
            size = os.fstat(fd).st_size
            sink.raw(size.to_bytes(8, "little"))
            seen = 0
            while chunk := os.read(fd, _CHUNK):
                sink.raw(chunk)
                seen += len(chunk)
            if seen != size:
                raise ValueError(f"{name!r} changed size while being hashed")
        finally:
            os.close(fd)
        pad = -size % 8
        if pad:
            sink.raw(b"\0" * pad)
    elif stat.S_ISDIR(st.st_mode):
        sink.put(b"type")
        sink.put(b"directory")
        fd = os.open(name, _NOFOLLOW | os.O_DIRECTORY, dir_fd=parent)
        try:
            for entry in sorted(os.fsencode(e) for e in os.listdir(fd)):
                sink.put(b"entry")
                sink.put(b"(")
                sink.put(b"name")
                sink.put(entry)
                sink.put(b"node")
                _dump(sink, fd, entry)
                sink.put(b")")
        finally:
            os.close(fd)
    else:
        raise ValueError(f"{name!r}: not a file, directory or symlink")
    sink.put(b")")


def nar_hash_at(parent: int, name: str) -> tuple[str, int]:
    """(sha256 SRI, NAR size) of entry `name` under the directory fd `parent`."""
    sink = _Sink()
    sink.put(b"nix-archive-1")
    _dump(sink, parent, os.fsencode(name))
    return "sha256-" + base64.b64encode(sink.h.digest()).decode(), sink.size


def nar_hash(path: str | os.PathLike[str]) -> str:
    """sha256 of the NAR serialisation of `path` (not followed if a symlink), SRI."""
    p = os.fspath(path)
    parent = os.open(os.path.dirname(p) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return nar_hash_at(parent, os.path.basename(p))[0]
    finally:
        os.close(parent)
