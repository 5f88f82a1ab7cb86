"""Write checked members into a staging tree, through fds only (safefs).

Two code paths read the layer: an uncompressed layer is a byte range of the
archive, so each regular member is copied kernel-side with copy_file_range (a
plain pread/write copy where the kernel refuses: EXDEV across filesystems, ENOSYS,
EINVAL, EOPNOTSUPP); a compressed layer is streamed through tarfile. Both write
through the same Tree, in member order, so hard links (to members declared
earlier) are made as they come, before the path is reported complete and hashed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import IO

from nixlayer.errors import InputError
from nixlayer.runner_store.archive import FIELD, ImageArchive
from nixlayer.runner_store.plan import STORE, ImageView, Member
from nixlayer.runner_store.safefs import Tree, finish_file

LINKS = ".nixlayer-links"  # hard-link sources from paths DIR already has
_FALLBACK = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF}
_CHUNK = 1 << 20


class Copier:
    """copy_file_range until the kernel refuses once, then plain copies."""

    def __init__(self) -> None:
        self.kernel = hasattr(os, "copy_file_range")
        self.fallback_reason: str | None = None

    def range(self, src: int, offset: int, size: int, out: int, what: str) -> None:
        left = size
        while left > 0:
            if self.kernel:
                try:
                    n = os.copy_file_range(src, out, left, offset)
                except OSError as exc:
                    if exc.errno not in _FALLBACK:
                        raise
                    self.kernel = False
                    self.fallback_reason = f"copy_file_range: {exc.strerror}"
                    continue
            else:
                data = os.pread(src, min(left, _CHUNK), offset)
                n = len(data)
                _write_all(out, data)
            if n == 0:
                raise InputError(FIELD, f"{what}: the archive ends inside this member")
            left -= n
            offset += n

    @staticmethod
    def stream(src: IO[bytes], size: int, out: int, what: str) -> None:
        left = size
        while left > 0:
            data = src.read(min(left, _CHUNK))
            if not data:
                raise InputError(FIELD, f"{what}: the layer ends inside this member")
            _write_all(out, data)
            left -= len(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _rel(name: str) -> str:
    """A store member's place in the staging tree: <hash-name>/..."""
    return name[len(STORE) + 1 :]


class Extractor:
    def __init__(self, archive: ImageArchive, view: ImageView, stage: Tree) -> None:
        self.archive = archive
        self.view = view
        self.stage = stage
        self.copier = Copier()

    def extract_db(self, into: Tree) -> None:
        """The image's database files, into another tree (same relative names)."""
        if self.view.db_layer is None:
            return
        scan = self.view.scans[self.view.db_layer]
        self._layer(self.view.db_layer, {m.index: (m, m.name) for m in scan.db.values()}, into, {})

    def extract(self, wanted: set[str], on_done: Callable[[str], None]) -> None:
        """Every member of the `wanted` store paths; `on_done(name)` once a path is
        complete (its hard links made)."""
        for i, scan in enumerate(self.view.scans):
            here = sorted(p for p in wanted if self.view.store_paths[p] == i)
            if not here:
                continue
            todo: dict[int, tuple[Member, str]] = {}
            last: dict[int, list[str]] = {}
            for p in here:
                members = scan.paths[p]
                for m in members:
                    todo[m.index] = (m, _rel(m.name))
                last.setdefault(max(m.index for m in members), []).append(p)
            # Hard-link sources in paths DIR already has: copied aside, linked from there.
            for m, _rel_name in list(todo.values()):
                if m.kind == "hardlink":
                    owner = self.view.owner(m.linkname)
                    if owner not in wanted:
                        src = scan.declared[m.linkname]
                        todo.setdefault(src.index, (src, f"{LINKS}/{src.index}"))
            self._layer(i, todo, self.stage, last, on_done)

    def _link_source(self, m: Member, todo: dict[int, tuple[Member, str]], layer: int) -> str:
        src = self.view.scans[layer].declared[m.linkname]
        return todo[src.index][1]

    def _layer(
        self,
        layer: int,
        todo: dict[int, tuple[Member, str]],
        tree: Tree,
        last: dict[int, list[str]],
        on_done: Callable[[str], None] | None = None,
    ) -> None:
        info = self.archive.layers[layer]
        if info.compression is None:
            for index in sorted(todo):
                m, rel = todo[index]
                self._write(m, rel, tree, todo=todo, layer=layer, stream=None)
                for p in last.get(index, []):
                    if on_done:
                        on_done(p)
            return
        with self.archive.open_layer(info) as tf:
            for index, ti in enumerate(tf):
                entry = todo.get(index)
                if entry is None:
                    continue
                m, rel = entry
                if ti.size != (m.size if m.kind == "file" else ti.size) or (
                    ti.linkname != m.linkname and m.kind == "symlink"
                ):
                    raise InputError(FIELD, f"{m.name}: changed between two reads of the layer")
                self._write(
                    m,
                    rel,
                    tree,
                    todo=todo,
                    layer=layer,
                    stream=tf.extractfile(ti) if ti.isreg() else None,
                )
                for p in last.get(index, []):
                    if on_done:
                        on_done(p)

    def _write(
        self,
        m: Member,
        rel: str,
        tree: Tree,
        *,
        todo: dict[int, tuple[Member, str]],
        layer: int,
        stream: IO[bytes] | None,
    ) -> None:
        if m.kind == "dir":
            tree.dir(rel)
        elif m.kind == "symlink":
            tree.symlink(m.linkname, rel)
        elif m.kind == "hardlink":
            tree.hardlink(self._link_source(m, todo, layer), rel)
        elif m.kind == "file":
            fd = tree.create_file(rel)
            try:
                if stream is None:
                    blob = self.archive.layers[layer].blob
                    self.copier.range(blob.fd, blob.offset + m.offset, m.size, fd, m.name)
                else:
                    self.copier.stream(stream, m.size, fd, m.name)
                finish_file(fd, m.executable)
            finally:
                os.close(fd)
        else:  # plan.py refused these already
            raise InputError(FIELD, f"{m.name}: cannot extract a {m.kind}")
