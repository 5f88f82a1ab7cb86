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


def _layer_bytes(
    root: Path, members: list[str], gz: bool = False, whiteouts: tuple[str, ...] = ()
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for rel in members:
            tf.add(root / rel, arcname=rel)
        for w in whiteouts:
            info = tarfile.TarInfo(f"nix/store/.wh.{w}")
            tf.addfile(info, io.BytesIO(b""))
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if gz else data


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


def docker_save(target: Path, layers: list[bytes]) -> Path:
    names = []
    with tarfile.open(target, "w") as tf:
        for i, data in enumerate(layers):
            name = f"layer{i}/layer.tar"
            names.append(name)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        manifest = json.dumps(
            [{"Config": "config.json", "RepoTags": ["nixos/nix:test"], "Layers": names}]
        ).encode()
        for name, data in (("config.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return target


def oci_layout(target: Path, layers: list[bytes], as_tar: bool = False) -> Path:
    """An OCI image layout directory (or a tar of one); the last layer gzipped."""
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return f"sha256:{digest}"

    descs = []
    for i, data in enumerate(layers):
        gz = i == len(layers) - 1
        blob = gzip.compress(data, mtime=0) if gz else data
        descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else ""),
                "digest": put(blob),
                "size": len(blob),
            }
        )
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": put(config),
                "size": len(config),
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
                    "digest": mdigest,
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
