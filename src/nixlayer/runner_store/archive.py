"""Container image archives: `docker save` tarballs and OCI layouts (a directory or
a tar of one). Only what a Nix store needs: which layer holds each store path and
the database, with whiteouts honoured, read by streaming through the layers."""

from __future__ import annotations

import os
import re
import shutil
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from nixlayer.errors import InputError
from nixlayer.safeload import decode, parse_json, show

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
DB_FILES = ("nix/var/nix/db/db.sqlite", "nix/var/nix/db/schema")


@dataclass
class ImageView:
    """What the image's /nix looks like once its layers are stacked."""

    store_paths: dict[str, int] = field(default_factory=dict)  # name -> layer index
    db_layer: int | None = None


def _norm(name: str) -> str:
    return str(PurePosixPath("/" + name)).lstrip("/")


@dataclass(frozen=True)
class ImageArchive:
    path: Path

    @contextmanager
    def _outer(self) -> Iterator[tarfile.TarFile | None]:
        if self.path.is_dir():
            yield None
            return
        try:
            with tarfile.open(self.path, "r:*") as tf:
                yield tf
        except (tarfile.TarError, OSError) as exc:
            raise InputError(
                "--image-archive", f"{self.path}: not a readable tar archive or OCI layout"
            ) from exc

    def _read(self, tf: tarfile.TarFile | None, name: str) -> bytes | None:
        if tf is None:
            p = self.path / name
            return p.read_bytes() if p.is_file() else None
        try:
            member = tf.getmember(name)
        except KeyError:
            return None
        f = tf.extractfile(member)
        return f.read() if f else None

    def layers(self) -> list[str]:
        """Layer blob names, bottom first."""
        try:
            return self._layers()
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise InputError(
                "--image-archive",
                f"{self.path}: not an image manifest ({type(exc).__name__}: {exc})",
            ) from None

    def _json(self, data: bytes, name: str) -> Any:
        where = f"{self.path}: {name}"
        return parse_json(decode(data, "--image-archive", where), "--image-archive", where)

    def _blob(self, digest: Any) -> str:
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            raise InputError("--image-archive", f"{self.path}: bad blob digest {show(digest)}")
        return "blobs/" + digest.replace(":", "/")

    def _layers(self) -> list[str]:
        with self._outer() as tf:
            manifest = self._read(tf, "manifest.json")
            if manifest is not None:  # docker save
                data: Any = self._json(manifest, "manifest.json")
                layers = data[0]["Layers"]
                if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
                    raise InputError(
                        "--image-archive", f"{self.path}: Layers is not a list of names"
                    )
                return layers
            index = self._read(tf, "index.json")
            if index is None:
                raise InputError(
                    "--image-archive",
                    f"{self.path}: neither a docker-save archive nor an OCI layout",
                )
            desc = self._json(index, "index.json")["manifests"][0]
            blob = self._read(tf, self._blob(desc["digest"]))
            if blob is None:
                raise InputError("--image-archive", f"{self.path}: manifest blob missing")
            layers = self._json(blob, "the manifest blob")["layers"]
            return [self._blob(layer["digest"]) for layer in layers]

    @contextmanager
    def _layer(self, name: str) -> Iterator[tarfile.TarFile]:
        with self._outer() as outer:
            try:
                fileobj: IO[bytes] | None = (
                    open(self.path / name, "rb")  # noqa: SIM115 - closed below
                    if outer is None
                    else outer.extractfile(name)
                )
            except KeyError:  # no such member
                fileobj = None
            if fileobj is None:
                raise InputError("--image-archive", f"{self.path}: layer {name} missing")
            try:
                # Random access: member contents are skipped by seeking, not read.
                with tarfile.open(fileobj=fileobj, mode="r:*") as layer:
                    yield layer
            finally:
                fileobj.close()

    def view(self) -> ImageView:
        """Scan every layer's entries (not their contents) and stack them."""
        layers = self.layers()
        per_layer: list[tuple[set[str], set[str], bool]] = []
        for name in layers:
            present: set[str] = set()
            whiteouts: set[str] = set()
            has_db = False
            with self._layer(name) as tf:
                for m in tf:
                    parts = _norm(m.name).split("/")
                    if parts[:2] == ["nix", "store"] and len(parts) >= 3:
                        leaf = parts[2]
                        if leaf.startswith(".wh."):
                            whiteouts.add(leaf[4:])
                        elif not leaf.startswith("."):
                            present.add(leaf)
                    if _norm(m.name) == DB_FILES[0]:
                        has_db = True
            per_layer.append((present, whiteouts, has_db))
        view = ImageView()
        for i, (present, whiteouts, has_db) in enumerate(per_layer):
            for w in whiteouts:
                view.store_paths.pop(w, None)
            for p in present:
                view.store_paths[p] = i
            if has_db:
                view.db_layer = i
        return view

    def _layer_offset(self, name: str) -> int | None:
        """Where an uncompressed layer's bytes start in the archive file, if they are
        stored as one plain range (None: compressed, or not addressable)."""
        with self._outer() as tf:
            if tf is None:
                blob = self.path / name
                start = 0
                with open(blob, "rb") as fh:
                    head = fh.read(6)
            else:
                if tf.fileobj is None or tf.fileobj.__class__.__name__ != "BufferedReader":
                    return None  # a compressed outer archive
                member = tf.getmember(name)
                start = member.offset_data
                with open(self.path, "rb") as fh:
                    fh.seek(start)
                    head = fh.read(6)
        if (
            head[:2] == b"\x1f\x8b"
            or head[:3] == b"BZh"
            or head[:6] == b"\xfd7zXZ\x00"
            or head[:4] == b"\x28\xb5\x2f\xfd"
        ):
            return None
        return start

    def _copy_range_extract(
        self,
        layer_name: str,
        base: int,
        keep: Callable[[str], bool],
        dest: Path,
        on_path_done: Callable[[str], None],
    ) -> None:
        """Extract members by copying their byte ranges kernel-side (as cp does).
        `on_path_done(name)` is called once a store path's members are all out."""
        root = os.path.realpath(dest)
        src_file = self.path / layer_name if self.path.is_dir() else self.path
        hardlinks: list[tuple[str, str]] = []
        current: str | None = None
        done: set[str] = set()
        again: set[str] = set()
        with self._layer(layer_name) as tf, open(src_file, "rb") as src:
            for m in tf:
                norm = _norm(m.name)
                if not keep(norm) or ".." in norm.split("/"):
                    continue
                parts = norm.split("/")
                owner = parts[2] if parts[:2] == ["nix", "store"] and len(parts) >= 3 else None
                if owner != current:
                    if current is not None:
                        done.add(current)
                        on_path_done(current)
                    current = owner
                    if owner in done:
                        again.add(owner)  # not contiguous in this layer: report it once more
                target = os.path.join(root, norm)
                parent = os.path.dirname(target)
                os.makedirs(parent, exist_ok=True)
                if (
                    not os.path.realpath(parent).startswith(root + os.sep)
                    and os.path.realpath(parent) != root
                ):
                    raise InputError("--image-archive", f"{m.name}: leads outside the store")
                if m.isdir():
                    os.makedirs(target, exist_ok=True)
                elif m.issym():
                    if os.path.lexists(target):
                        os.unlink(target)
                    os.symlink(m.linkname, target)
                elif m.islnk():
                    hardlinks.append((_norm(m.linkname), target))
                elif m.isreg():
                    with open(target, "wb") as out:
                        left, offset = m.size, base + m.offset_data
                        while left > 0:
                            n = os.copy_file_range(src.fileno(), out.fileno(), left, offset)
                            if n == 0:
                                raise InputError(
                                    "--image-archive", f"{self.path}: truncated at {m.name}"
                                )
                            left -= n
                            offset += n
                    os.chmod(target, 0o755 if m.mode & 0o111 else 0o644)
        for link_target, target in hardlinks:
            os.link(os.path.join(root, link_target), target)
        last = {current} if current is not None else set()
        for name in sorted(last | again):
            on_path_done(name)

    def extract(
        self,
        view: ImageView,
        names: set[str],
        dest: Path,
        on_path_done: Callable[[str], None] | None = None,
    ) -> None:
        """Extract the database and the store paths `names` under dest (a root),
        calling `on_path_done(name)` as each store path is complete (a path may be
        reported again if a later layer or member touches it: use the last call)."""
        report = on_path_done or (lambda _name: None)
        wanted: dict[int, set[str]] = {}
        for n in names:
            wanted.setdefault(view.store_paths[n], set()).add(n)
        layers = self.layers()
        for i, layer_name in enumerate(layers):
            take = wanted.get(i, set())
            want_db = view.db_layer == i
            if not take and not want_db:
                continue

            def keep(norm: str, take: set[str] = take, want_db: bool = want_db) -> bool:
                parts = norm.split("/")
                in_take = parts[:2] == ["nix", "store"] and len(parts) >= 3 and parts[2] in take
                return in_take or (want_db and norm in DB_FILES)

            base = self._layer_offset(layer_name) if hasattr(os, "copy_file_range") else None
            if base is not None:
                self._copy_range_extract(layer_name, base, keep, dest, report)
                continue
            with self._layer(layer_name) as tf:
                for m in tf:
                    norm = _norm(m.name)
                    if not keep(norm) or m.isdev():
                        continue
                    m.name = norm
                    tf.extract(m, dest, set_attrs=False, filter="tar")
            for name in sorted(take):
                report(name)


def docker_save_to(image: str, target: Path) -> Path:
    """`docker save IMAGE` into target (needs a running engine)."""
    import subprocess

    if shutil.which("docker") is None:
        raise InputError(
            "--image", "no docker CLI here: pass --image-archive FILE (docker save or OCI)"
        )
    out = target / "image.tar"
    proc = subprocess.run(
        ["docker", "save", "-o", str(out), image], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise InputError(
            "--image", f"docker save {image} failed: {proc.stderr.strip().splitlines()[-1:]}"
        )
    return out
