"""Container image archives: `docker save` tarballs and OCI layouts (a directory or
a tar of one). Only what a Nix store needs: which layer holds each store path and
the database, with whiteouts honoured, read by streaming through the layers."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from nixlayer.errors import InputError

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
        with self._outer() as tf:
            manifest = self._read(tf, "manifest.json")
            if manifest is not None:  # docker save
                data: Any = json.loads(manifest)
                return [str(x) for x in data[0]["Layers"]]
            index = self._read(tf, "index.json")
            if index is None:
                raise InputError(
                    "--image-archive",
                    f"{self.path}: neither a docker-save archive nor an OCI layout",
                )
            desc = json.loads(index)["manifests"][0]
            blob = self._read(tf, "blobs/" + desc["digest"].replace(":", "/"))
            if blob is None:
                raise InputError("--image-archive", f"{self.path}: manifest blob missing")
            return [
                "blobs/" + layer["digest"].replace(":", "/") for layer in json.loads(blob)["layers"]
            ]

    @contextmanager
    def _layer(self, name: str) -> Iterator[tarfile.TarFile]:
        with self._outer() as outer:
            fileobj: IO[bytes] | None = (
                open(self.path / name, "rb")  # noqa: SIM115 - closed below
                if outer is None
                else outer.extractfile(name)
            )
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

    def extract(self, view: ImageView, names: set[str], dest: Path) -> None:
        """Extract the database and the store paths `names` under dest (a root)."""
        wanted: dict[int, set[str]] = {}
        for n in names:
            wanted.setdefault(view.store_paths[n], set()).add(n)
        layers = self.layers()
        for i, layer_name in enumerate(layers):
            take = wanted.get(i, set())
            want_db = view.db_layer == i
            if not take and not want_db:
                continue
            with self._layer(layer_name) as tf:
                for m in tf:
                    norm = _norm(m.name)
                    parts = norm.split("/")
                    keep = (
                        parts[:2] == ["nix", "store"] and len(parts) >= 3 and parts[2] in take
                    ) or (want_db and norm in DB_FILES)
                    if not keep or m.isdev():
                        continue
                    m.name = norm
                    tf.extract(m, dest, set_attrs=False, filter="tar")


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
