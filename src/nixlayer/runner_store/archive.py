"""Container image archives: `docker save` tarballs and OCI layouts (a directory or
a tar of one), read as untrusted input.

The archive is opened once; every layer is a byte range of an open file (a member
of the outer tar, or an OCI blob opened no-follow). Names in manifests are checked
(no absolute names, no `..`; OCI digests must be `sha256:<64 hex>`) before anything
is read through them, and JSON blobs are checked against their digests. A
compressed outer archive is first decompressed, bounded, into the seed's work dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from nixlayer.errors import InputError
from nixlayer.runner_store.layerio import (
    Bounded,
    Limits,
    RangeFile,
    compression_of,
    decompressor,
)
from nixlayer.runner_store.safefs import UnsafePathError, open_dir
from nixlayer.safeload import decode, parse_json

FIELD = "--image-archive"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_JSON_MAX = 16 << 20


def norm_member(name: str) -> str:
    """A layer or archive member name, made relative; refuses absolute names and `..`."""
    if name.startswith("/"):
        raise InputError(FIELD, f"member {name!r} has an absolute name")
    comps = [c for c in name.split("/") if c not in ("", ".")]
    if ".." in comps:
        raise InputError(FIELD, f"member {name!r} climbs with ..")
    return "/".join(comps)


@dataclass(frozen=True)
class Blob:
    fd: int
    offset: int
    size: int
    name: str

    def read_all(self, limit: int = _JSON_MAX) -> bytes:
        if self.size > limit:
            raise InputError(FIELD, f"{self.name}: {self.size} bytes, more than a manifest can be")
        data = os.pread(self.fd, self.size, self.offset)
        if len(data) != self.size:
            raise InputError(FIELD, f"{self.name}: truncated")
        return data

    def stream(self) -> RangeFile:
        return RangeFile(self.fd, self.offset, self.size)


@dataclass(frozen=True)
class Layer:
    blob: Blob
    compression: str | None  # None (plain tar), "gzip", "bzip2", "xz"
    diff_id: str | None  # the config's digest of the uncompressed layer
    digest: str | None  # the OCI descriptor's digest of the blob


@dataclass
class ImageMeta:
    config_digest: str
    repo_tags: list[str] = field(default_factory=list)


class ImageArchive:
    """An opened archive. Use as a context manager; `layers` and `meta` are read
    on open."""

    def __init__(self, path: Path, work: Path, limits: Limits | None = None) -> None:
        self.path = path
        self.limits = limits or Limits()
        self._fds: list[int] = []
        self._members: dict[str, tarfile.TarInfo] = {}
        self._oci_dir: int | None = None
        self._file: int | None = None
        try:
            self._open(work)
            self.layers, self.meta = self._parse()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ImageArchive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def _json(self, data: bytes, what: str) -> Any:
        # The one guarded reader: duplicate keys, NUL, over-deep nesting are refused too.
        where = f"{self.path}: {what}"
        return parse_json(decode(data, FIELD, where), FIELD, where)

    def _keep(self, fd: int) -> int:
        self._fds.append(fd)
        return fd

    # -- opening ---------------------------------------------------------------

    def _open(self, work: Path) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise InputError(FIELD, f"{self.path}: {exc.strerror}") from exc
        if stat.S_ISDIR(st.st_mode):
            self._oci_dir = self._keep(
                os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            )
            return
        if not stat.S_ISREG(st.st_mode):
            raise InputError(FIELD, f"{self.path} is not a file or an OCI layout directory")
        fd = self._keep(os.open(self.path, os.O_RDONLY | os.O_CLOEXEC))
        kind = compression_of(os.pread(fd, 8, 0))
        if kind is not None:
            fd = self._keep(self._decompress_outer(fd, st.st_size, kind, work))
        self._file = fd
        self._index_outer(fd)

    def _decompress_outer(self, fd: int, size: int, kind: str, work: Path) -> int:
        """`docker save | gzip`: unpack once (bounded), then read it like a plain tar."""
        out_path = work / "archive.tar"
        out = os.open(out_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with Bounded(
            decompressor(kind, RangeFile(fd, 0, size)), self.limits, size, "archive"
        ) as src:
            while chunk := src.read(1 << 20):
                os.write(out, chunk)
        return out

    def _index_outer(self, fd: int) -> None:
        try:
            with tarfile.open(fileobj=RangeFile(fd, 0, os.fstat(fd).st_size), mode="r:") as tf:
                for m in tf:
                    name = norm_member(m.name)
                    if name in self._members:
                        raise InputError(FIELD, f"{self.path}: member {name!r} appears twice")
                    self._members[name] = m
        except tarfile.TarError as exc:
            raise InputError(
                FIELD, f"{self.path}: not a readable tar archive or OCI layout ({exc})"
            ) from exc

    def blob(self, name: str) -> Blob | None:
        """A file of the archive by its (checked) relative name, or None."""
        rel = norm_member(name)
        if self._oci_dir is not None:
            comps = rel.split("/")
            fd = self._oci_dir
            opened: list[int] = []
            try:
                for comp in comps[:-1]:
                    fd = open_dir(fd, comp)
                    opened.append(fd)
                leaf = os.open(comps[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                return None
            except UnsafePathError as exc:
                raise InputError(FIELD, f"{self.path}/{rel}: a symlink on the way") from exc
            except OSError as exc:
                raise InputError(FIELD, f"{self.path}/{rel}: {exc.strerror}") from exc
            finally:
                for o in opened:
                    os.close(o)
            self._keep(leaf)
            st = os.fstat(leaf)
            if not stat.S_ISREG(st.st_mode):
                raise InputError(FIELD, f"{self.path}/{rel} is not a regular file")
            return Blob(leaf, 0, st.st_size, rel)
        m = self._members.get(rel)
        if m is None:
            return None
        if not m.isreg():
            raise InputError(FIELD, f"{self.path}: {rel} is a link or special member, not a file")
        assert self._file is not None
        return Blob(self._file, m.offset_data, m.size, rel)

    def _need(self, name: str) -> Blob:
        b = self.blob(name)
        if b is None:
            raise InputError(FIELD, f"{self.path}: {name} is missing")
        return b

    def _by_digest(self, digest: Any, what: str, check: bool) -> Blob:
        if not isinstance(digest, str) or not DIGEST.match(digest):
            raise InputError(FIELD, f"{self.path}: {what} digest {digest!r} is not sha256:<64 hex>")
        b = self._need("blobs/sha256/" + digest[7:])
        if check and hashlib.sha256(b.read_all()).hexdigest() != digest[7:]:
            raise InputError(FIELD, f"{self.path}: {what} does not match its digest {digest}")
        return b

    # -- manifests -------------------------------------------------------------

    def _parse(self) -> tuple[list[Layer], ImageMeta]:
        manifest = self.blob("manifest.json")
        if manifest is not None:
            return self._docker_save(manifest)
        index = self.blob("index.json")
        if index is None:
            raise InputError(FIELD, f"{self.path}: neither a docker-save archive nor an OCI layout")
        return self._oci(index)

    def _docker_save(self, manifest: Blob) -> tuple[list[Layer], ImageMeta]:
        data = self._json(manifest.read_all(), "manifest.json")
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
            raise InputError(FIELD, f"{self.path}: manifest.json must describe exactly one image")
        entry = data[0]
        names = entry.get("Layers")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError(FIELD, f"{self.path}: manifest.json has no Layers list")
        config = self._need(str(entry.get("Config", "")))
        raw = config.read_all()
        diff_ids = self._diff_ids(raw, len(names))
        tags = entry.get("RepoTags") or []
        meta = ImageMeta(
            config_digest="sha256:" + hashlib.sha256(raw).hexdigest(),
            repo_tags=[t for t in tags if isinstance(t, str)],
        )
        layers = []
        for i, name in enumerate(names):
            blob = self._need(name)
            layers.append(Layer(blob, self._compression(blob), diff_ids[i], None))
        return layers, meta

    def _oci(self, index: Blob) -> tuple[list[Layer], ImageMeta]:
        data = self._json(index.read_all(), "index.json")
        desc = self._pick(data, "index.json")
        tags = []
        ref = (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        if isinstance(ref, str):
            tags.append(ref)
        manifest = self._json(
            self._by_digest(desc.get("digest"), "manifest", True).read_all(), "manifest"
        )
        if isinstance(manifest, dict) and "manifests" in manifest:  # a nested index
            desc = self._pick(manifest, "nested index")
            manifest = self._json(
                self._by_digest(desc.get("digest"), "manifest", True).read_all(), "manifest"
            )
        if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
            raise InputError(FIELD, f"{self.path}: the manifest has no layers list")
        cdesc = manifest.get("config") or {}
        config = self._by_digest(cdesc.get("digest"), "config", True)
        descs = manifest["layers"]
        diff_ids = self._diff_ids(config.read_all(), len(descs))
        layers = []
        for i, d in enumerate(descs):
            if not isinstance(d, dict):
                raise InputError(FIELD, f"{self.path}: layer {i} is not a descriptor")
            blob = self._by_digest(d.get("digest"), f"layer {i}", False)
            layers.append(Layer(blob, self._compression(blob), diff_ids[i], d["digest"]))
        return layers, ImageMeta(config_digest=cdesc["digest"], repo_tags=tags)

    def _pick(self, index: Any, what: str) -> dict[str, Any]:
        ms = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(ms, list) or not ms or not all(isinstance(m, dict) for m in ms):
            raise InputError(FIELD, f"{self.path}: {what} lists no manifests")
        if len(ms) == 1:
            return ms[0]  # type: ignore[no-any-return]
        linux = [
            m
            for m in ms
            if (m.get("platform") or {}).get("os") == "linux"
            and (m.get("platform") or {}).get("architecture") == "amd64"
        ]
        if len(linux) != 1:
            raise InputError(FIELD, f"{self.path}: {what} lists {len(ms)} images; save just one")
        return linux[0]  # type: ignore[no-any-return]

    def _diff_ids(self, raw: bytes, n: int) -> list[str | None]:
        conf = self._json(raw, "the image config")
        ids = ((conf.get("rootfs") or {}) if isinstance(conf, dict) else {}).get("diff_ids")
        if not isinstance(ids, list) or len(ids) != n:
            return [None] * n
        return [i if isinstance(i, str) and DIGEST.match(i) else None for i in ids]

    @staticmethod
    def _compression(blob: Blob) -> str | None:
        head = os.pread(blob.fd, 8, blob.offset) if blob.size else b""
        kind = compression_of(head)
        if kind == "zstd":
            raise InputError(
                FIELD, f"{blob.name}: zstd layers are not supported; save the image uncompressed"
            )
        return kind

    # -- layers ----------------------------------------------------------------

    @contextlib.contextmanager
    def open_layer(self, layer: Layer) -> Iterator[tarfile.TarFile]:
        """The layer as a tarfile: seekable over the plain range, or a bounded
        stream through the decompressor."""
        src: io.RawIOBase
        if layer.compression is None:
            src = layer.blob.stream()
            mode = "r:"
        else:
            src = Bounded(
                decompressor(layer.compression, layer.blob.stream()),
                self.limits,
                layer.blob.size,
                layer.blob.name,
            )
            mode = "r|"
        try:
            with tarfile.open(fileobj=cast(IO[bytes], src), mode=mode) as tf:  # type: ignore[call-overload]
                yield tf
        except tarfile.TarError as exc:
            raise InputError(FIELD, f"{self.path}: layer {layer.blob.name}: {exc}") from exc
        finally:
            src.close()

    def verify_digests(self) -> None:
        """Every layer against the config's diff_ids (and its OCI blob digest):
        reads every layer in full, so only for --full-verify."""
        for layer in self.layers:
            if layer.digest is not None:
                h = hashlib.sha256()
                with layer.blob.stream() as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                if "sha256:" + h.hexdigest() != layer.digest:
                    raise InputError(FIELD, f"{layer.blob.name} does not match its digest")
            if layer.diff_id is None:
                raise InputError(FIELD, f"{layer.blob.name}: the image config has no diff_id")
            h = hashlib.sha256()
            src: io.RawIOBase | Bounded = layer.blob.stream()
            if layer.compression is not None:
                src = Bounded(
                    decompressor(layer.compression, layer.blob.stream()),
                    self.limits,
                    layer.blob.size,
                    layer.blob.name,
                )
            with src:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
            if "sha256:" + h.hexdigest() != layer.diff_id:
                raise InputError(
                    FIELD, f"{layer.blob.name} does not match the config's diff_id {layer.diff_id}"
                )
