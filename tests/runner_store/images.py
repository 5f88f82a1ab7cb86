"""Container images of a real Nix store, built by the tests: fixture derivations are
copied into an image root with `nix copy`, then packed as a docker-save archive or
an OCI layout, in one or two layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import run_nix

DERIVATIONS = """
{ n, size, tag }:
builtins.genList (i: derivation {
  name = "fixture-${toString i}";
  system = "x86_64-linux";
  builder = "/bin/sh";
  digit = toString (i - (i / 10) * 10);
  args = [ "-c" ''
    PATH=/usr/bin:/bin
    mkdir -p $out/share
    head -c ${toString size} /dev/zero | tr '\\0' "$digit" > $out/share/data
    echo ${tag}-${toString i} > $out/id
  '' ];
}) n
"""


def build_paths(work: Path, n: int, size: int, tag: str) -> list[str]:
    expr = work / f"fixtures-{tag}.nix"
    expr.write_text(DERIVATIONS)
    out = run_nix(
        "build",
        "--no-link",
        "--json",
        "-f",
        str(expr),
        "--argstr",
        "tag",
        tag,
        "--arg",
        "n",
        str(n),
        "--arg",
        "size",
        str(size),
    )
    return [o["outputs"]["out"] for o in json.loads(out)]


def image_root(work: Path, name: str, paths: list[str]) -> Path:
    root = work / name
    run_nix("copy", "--no-check-sigs", "--to", f"local?root={root}", *paths)
    return root


@dataclass(frozen=True)
class Crafted:
    """A tar member written as given: any name, type, mode, link target or declared size."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644
    size: int | None = None  # declared size, when it should lie

    def add_to(self, tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(self.name)
        info.type, info.mode, info.linkname = self.kind, self.mode, self.linkname
        info.mtime = 1
        if self.kind == tarfile.REGTYPE:
            info.size = len(self.data)
            tf.addfile(info, io.BytesIO(self.data))
        else:
            tf.addfile(info)


def _layer_bytes(
    root: Path,
    members: list[str],
    *,
    gz: bool = False,
    whiteouts: tuple[str, ...] = (),
    before: tuple[Crafted, ...] = (),
    after: tuple[Crafted, ...] = (),
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for c in before:
            c.add_to(tf)
        for rel in members:
            tf.add(root / rel, arcname=rel)
        for w in whiteouts:
            info = tarfile.TarInfo(f"nix/store/.wh.{w}")
            tf.addfile(info, io.BytesIO(b""))
        for c in after:
            c.add_to(tf)
    data = buf.getvalue()
    for c in (*before, *after):
        if c.size is not None:
            data = _lie_about_size(data, c.name, c.size)
    return gzip.compress(data, mtime=0) if gz else data


def _lie_about_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite one header's size field (GNU base-256 for huge values) and its checksum."""
    out = bytearray(data)
    pos = 0
    while pos + 512 <= len(out):
        header = out[pos : pos + 512]
        if header[:100].rstrip(b"\0") == name.encode():
            field = bytearray(12)
            field[0] = 0x80
            field[4:] = size.to_bytes(8, "big")
            out[pos + 124 : pos + 136] = field
            out[pos + 148 : pos + 156] = b" " * 8
            chk = sum(out[pos : pos + 512])
            out[pos + 148 : pos + 156] = f"{chk:06o}\0 ".encode()
            return bytes(out)
        real = tarfile.TarInfo.frombuf(bytes(header), "utf-8", "surrogateescape")
        pos += 512 + -(-real.size // 512) * 512
    raise AssertionError(f"{name} not in the layer")


def crafted_layer(
    root: Path,
    *,
    before: tuple[Crafted, ...] = (),
    after: tuple[Crafted, ...] = (),
    skip: tuple[str, ...] = (),
    db: bool = True,
    mode_or: int = 0,
    replace: dict[str, bytes] | None = None,
) -> bytes:
    """The whole image root as one layer, with crafted members before/after it,
    extra mode bits on every member, or some members' contents replaced."""
    store = sorted(s for s in os.listdir(root / "nix/store") if not s.startswith("."))
    members = [f"nix/store/{s}" for s in store if s not in skip]
    members += _db_members() if db else []
    if not mode_or and not replace:
        return _layer_bytes(root, members, before=before, after=after)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for c in before:
            c.add_to(tf)
        for rel in members:
            top = root / rel
            inner = [] if top.is_symlink() or not top.is_dir() else sorted(top.rglob("*"))
            for path in [top, *inner]:
                info = tf.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                if not info.issym():
                    info.mode |= mode_or
                new = (replace or {}).get(info.name)
                if new is not None and info.isreg():
                    info.size = len(new)
                    tf.addfile(info, io.BytesIO(new))
                elif info.isreg():
                    with open(path, "rb") as fh:
                        tf.addfile(info, fh)
                else:
                    tf.addfile(info)
        for c in after:
            c.add_to(tf)
    return buf.getvalue()


def _db_members() -> list[str]:
    return ["nix/var/nix/db/db.sqlite", "nix/var/nix/db/schema"]


def layers_for(root: Path, split: int | None = None, whiteout: str | None = None) -> list[bytes]:
    """One layer, or two: the first `split` store paths (plus a decoy) in the lower
    layer, the rest, the database and a whiteout of the decoy in the upper one."""
    store = sorted(os.listdir(root / "nix/store"))
    store = [s for s in store if not s.startswith(".")]
    if split is None:
        return [_layer_bytes(root, [f"nix/store/{s}" for s in store] + _db_members())]
    lower = [f"nix/store/{s}" for s in store[:split]]
    upper = [f"nix/store/{s}" for s in store[split:]] + _db_members()
    decoys: tuple[str, ...] = ()
    if whiteout:
        decoy = root / "nix/store" / whiteout
        decoy.mkdir(exist_ok=True)
        (decoy / "stale").write_text("removed by the upper layer")
        lower.append(f"nix/store/{whiteout}")
        decoys = (whiteout,)
    return [_layer_bytes(root, lower), _layer_bytes(root, upper, whiteouts=decoys)]


def docker_save(
    target: Path,
    layers: list[bytes],
    *,
    gz: bool = False,
    names: list[str] | None = None,
    config: dict[str, object] | None = None,
) -> Path:
    """A `docker save` archive. `gz` compresses each layer; `names` lies in the
    manifest's Layers list; `config` replaces the image config."""
    listed = []
    with tarfile.open(target, "w") as tf:
        for i, plain in enumerate(layers):
            data = gzip.compress(plain, mtime=0) if gz else plain
            name = f"layer{i}/layer.tar"
            listed.append(name)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        conf = json.dumps(config or image_config(layers)).encode()
        conf_name = hashlib.sha256(conf).hexdigest() + ".json"
        manifest = json.dumps(
            [{"Config": conf_name, "RepoTags": ["nixos/nix:test"], "Layers": names or listed}]
        ).encode()
        for name, data in ((conf_name, conf), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return target


def image_config(layers: list[bytes]) -> dict[str, object]:
    """An image config whose diff_ids are the uncompressed layers' digests."""
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
    return {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def oci_layout(
    target: Path,
    layers: list[bytes],
    as_tar: bool = False,
    *,
    gz: bool | None = None,
    manifest_digest: str | None = None,
    layer_digests: list[str] | None = None,
    config: dict[str, object] | None = None,
) -> Path:
    """An OCI image layout directory (or a tar of one). Layers gzipped when `gz`
    (default: only the last one); digests and the config can be made to lie."""
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return f"sha256:{digest}"

    descs = []
    for i, data in enumerate(layers):
        packed = (i == len(layers) - 1) if gz is None else gz
        blob = gzip.compress(data, mtime=0) if packed else data
        digest = put(blob)
        descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if packed else ""),
                "digest": layer_digests[i] if layer_digests else digest,
                "size": len(blob),
            }
        )
    conf = json.dumps(config or image_config(layers)).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": put(conf),
                "size": len(conf),
            },
            "layers": descs,
        }
    ).encode()
    mdigest = put(manifest)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest or mdigest,
                    "size": len(manifest),
                }
            ],
        }
    ).encode()
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index}
    files.update({f"blobs/sha256/{d}": b for d, b in blobs.items()})
    if as_tar:
        with tarfile.open(target, "w") as tf:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    else:
        for name, data in files.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(data)
    return target
