"""What an image's layers hold, checked before anything is created.

Every layer's headers are scanned (contents skipped) into member records. Then
the layers are stacked at the granularity Nix cares about — whole store paths and
the database — honouring whiteouts and opaque whiteouts, and every store path the
stacked image shows is checked: only directories, regular files, symlinks and
hard links; no duplicate member; nothing under a member that is not a directory;
hard links only to a regular file declared earlier in the same layer inside a
store path of the image. Any violation refuses the whole archive.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field

from nixlayer.errors import InputError
from nixlayer.runner_store.archive import FIELD, ImageArchive, Layer, norm_member

STORE = "nix/store"
DB_DIR = "nix/var/nix/db"
DB_FILES = (f"{DB_DIR}/db.sqlite", f"{DB_DIR}/schema")
_OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class Member:
    index: int  # position in its layer
    name: str  # normalised, relative to /
    kind: str  # dir, file, symlink, hardlink
    size: int
    executable: bool
    linkname: str  # symlink: the target as given (never followed); hardlink: a member name
    offset: int  # where the contents start in the uncompressed layer


@dataclass
class LayerScan:
    paths: dict[str, list[Member]] = field(default_factory=dict)  # store name -> members
    whiteouts: set[str] = field(default_factory=set)
    clears_store: bool = False
    clears_db: bool = False
    db: dict[str, Member] = field(default_factory=dict)
    declared: dict[str, Member] = field(default_factory=dict)  # every member, by name
    bytes: int = 0


@dataclass
class ImageView:
    """The stacked image: which layer each store path comes from, where the db is."""

    scans: list[LayerScan]
    store_paths: dict[str, int] = field(default_factory=dict)
    db_layer: int | None = None

    def members(self, name: str) -> list[Member]:
        return self.scans[self.store_paths[name]].paths[name]

    def owner(self, member_name: str) -> str | None:
        comps = member_name.split("/")
        return comps[2] if comps[:2] == ["nix", "store"] and len(comps) >= 3 else None


def _refuse(message: str) -> InputError:
    return InputError(FIELD, message)


def _kind(m: tarfile.TarInfo) -> str:
    if m.issparse():
        return "special"
    if m.isreg():
        return "file"
    if m.islnk():
        return "hardlink"
    if m.issym():
        return "symlink"
    if m.isdir():
        return "dir"
    return "special"


def _inside(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _whiteout(scan: LayerScan, name: str) -> None:
    parent, _, base = name.rpartition("/")
    if base == _OPAQUE:
        target = parent
    else:
        hidden = base[4:]
        if hidden in ("", ".", ".."):
            raise _refuse(f"whiteout {name!r} names {hidden!r}")
        target = f"{parent}/{hidden}" if parent else hidden
        if parent == STORE:
            scan.whiteouts.add(hidden)
            return
    if _inside(STORE, target) or (base == _OPAQUE and target == STORE):
        scan.clears_store = True
    if _inside(DB_DIR, target) or any(_inside(f, target) for f in DB_FILES):
        scan.clears_db = True
    if target.startswith(STORE + "/"):
        raise _refuse(f"whiteout {name!r} inside a store path")


def scan_layer(archive: ImageArchive, layer: Layer) -> LayerScan:
    scan = LayerScan()
    with archive.open_layer(layer) as tf:
        for index, m in enumerate(tf):
            name = norm_member(m.name)
            base = name.rpartition("/")[2]
            if base.startswith(".wh."):
                _whiteout(scan, name)
                continue
            kind = _kind(m)
            linkname = norm_member(m.linkname) if kind == "hardlink" else m.linkname
            rec = Member(
                index,
                name,
                kind,
                m.size if kind == "file" else 0,
                bool(m.mode & 0o111),
                linkname,
                m.offset_data,
            )
            # Checked before tarfile skips the contents (it would seek 4 TB of nothing).
            if layer.compression is None and m.offset_data + m.size > layer.blob.size:
                raise _refuse(f"{name}: declares {m.size} bytes past the layer's end")
            if layer.compression is not None and m.size > archive.limits.for_size(layer.blob.size):
                raise _refuse(f"{name}: declares {m.size} bytes, past the decompression limit")
            comps = name.split("/")
            in_store = comps[:2] == ["nix", "store"] and len(comps) >= 3
            if in_store and not comps[2].startswith("."):
                if name in scan.declared:
                    raise _refuse(f"{name} appears twice in one layer")
                if kind == "special":
                    raise _refuse(f"{name}: device, fifo or sparse member in a store path")
                scan.paths.setdefault(comps[2], []).append(rec)
                scan.bytes += rec.size
            elif name in DB_FILES:
                if kind != "file" or name in scan.db:
                    raise _refuse(f"{name}: the database must be one regular file")
                scan.db[name] = rec
            scan.declared[name] = rec
    return scan


def _check_path(view: ImageView, layer: int, name: str) -> None:
    scan = view.scans[layer]
    members = scan.paths[name]
    kinds = {m.name: m.kind for m in members}
    top = f"{STORE}/{name}"
    for m in members:
        comps = m.name.split("/")
        for k in range(3, len(comps)):
            anc = "/".join(comps[:k])
            if kinds.get(anc, "dir") != "dir":
                raise _refuse(f"{m.name} lies under {anc}, which is a {kinds[anc]}")
        if m.kind == "hardlink":
            target = scan.declared.get(m.linkname)
            owner = view.owner(m.linkname)
            if target is None or target.index > m.index:
                raise _refuse(f"{m.name}: hard link to {m.linkname!r}, not declared before it")
            if target.kind != "file":
                raise _refuse(f"{m.name}: hard link to {m.linkname!r}, a {target.kind}")
            if owner is None or owner.startswith(".") or view.store_paths.get(owner) != layer:
                raise _refuse(f"{m.name}: hard link to {m.linkname!r}, outside this image's paths")
    if top not in kinds and not members:
        raise _refuse(f"{top}: no members")


def stack(archive: ImageArchive) -> ImageView:
    """Scan every layer and stack them; check every store path the image shows."""
    view = ImageView(scans=[scan_layer(archive, layer) for layer in archive.layers])
    for i, scan in enumerate(view.scans):
        if scan.clears_store:
            view.store_paths.clear()
        for w in scan.whiteouts:
            view.store_paths.pop(w, None)
        if scan.clears_db:
            view.db_layer = None
        for p in scan.paths:
            view.store_paths[p] = i
        if DB_FILES[0] in scan.db:
            view.db_layer = i
    for name, layer in view.store_paths.items():
        _check_path(view, layer, name)
    return view
