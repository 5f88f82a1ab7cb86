"""The NAR hash of a directory tree, as `nix hash path` computes it.

Written here (no maintained library does it) so that a seed can hash each store
path while the next one is still being copied; tests check it against Nix.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from typing import Any

_CHUNK = 1 << 20


def _put(h: Any, data: bytes) -> None:
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)
    pad = -len(data) % 8
    if pad:
        h.update(b"\0" * pad)


def _dump(h: Any, path: bytes) -> None:
    st = os.lstat(path)
    _put(h, b"(")
    if stat.S_ISLNK(st.st_mode):
        _put(h, b"type")
        _put(h, b"symlink")
        _put(h, b"target")
        _put(h, os.readlink(path))
    elif stat.S_ISREG(st.st_mode):
        _put(h, b"type")
        _put(h, b"regular")
        if st.st_mode & stat.S_IXUSR:
            _put(h, b"executable")
            _put(h, b"")
        _put(h, b"contents")
        h.update(st.st_size.to_bytes(8, "little"))
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        pad = -st.st_size % 8
        if pad:
            h.update(b"\0" * pad)
    elif stat.S_ISDIR(st.st_mode):
        _put(h, b"type")
        _put(h, b"directory")
        for name in sorted(os.listdir(path)):
            _put(h, b"entry")
            _put(h, b"(")
            _put(h, b"name")
            _put(h, name)
            _put(h, b"node")
            _dump(h, os.path.join(path, name))
            _put(h, b")")
    else:
        raise ValueError(f"{path!r}: not a file, directory or symlink")
    _put(h, b")")


def nar_hash(path: str | os.PathLike[str]) -> str:
    """sha256 of the NAR serialisation, in SRI form (sha256-<base64>)."""
    h = hashlib.sha256()
    _put(h, b"nix-archive-1")
    _dump(h, os.fsencode(path))
    return "sha256-" + base64.b64encode(h.digest()).decode()
