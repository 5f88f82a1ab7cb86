"""Crafted hostile archives for `runner-store seed`, and the world they must not touch.

Each case builds an archive from a real image (paths built by Nix, some hard-linked
by `nix-store --optimise`, one store path that is itself a symlink to the sentinel)
with crafted members, or a lying manifest, or something planted in DIR first.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nixlayer.nix.nixjson import pathinfo
from tests.helpers import run_nix
from tests.runner_store.images import Crafted, crafted_layer, docker_save, image_config, oci_layout

CLIMB = "../" * 24

IMAGE_NIX = """
{ sentinel }:
let
  sh = args: [ "-c" ("PATH=/usr/bin:/bin\\n" + args) ];
  a = derivation {
    name = "adv-a"; system = "x86_64-linux"; builder = "/bin/sh";
    args = sh ''
      mkdir -p $out/bin $out/share/sub
      echo same-content > $out/share/data
      printf '#!/bin/sh\\necho a\\n' > $out/bin/run
      chmod 755 $out/bin/run
      echo deep > $out/share/sub/deep
    '';
  };
  b = derivation {
    name = "adv-b"; system = "x86_64-linux"; builder = "/bin/sh";
    args = sh ''
      mkdir -p $out/share
      echo same-content > $out/share/copy
      ln -s ${a}/bin/run $out/run-a
      echo ${a} > $out/ref
    '';
  };
in [ a b ]
"""


@dataclass(frozen=True)
class Image:
    root: Path  # the image's / (nix/store, nix/var/nix/db)
    a: str  # base names
    b: str
    sym: str  # a store path that is a symlink to the sentinel
    hashes: dict[str, str]  # full store path -> the true narHash (SRI)
    sentinel: Path


def build_image(work: Path, sentinel: Path) -> Image:
    expr = work / "adv.nix"
    expr.write_text(IMAGE_NIX)
    out = json.loads(
        run_nix("build", "--no-link", "--json", "-f", str(expr), "--arg", "sentinel", "null")
    )
    # By name: newer Nix does not keep the list's order in its output.
    built = sorted((o["outputs"]["out"] for o in out), key=lambda p: p.endswith("-adv-b"))
    a, b = built
    root = work / "adv-root"
    store = f"local?root={root}"
    run_nix("copy", "--no-check-sigs", "--to", store, a, b)
    link = work / "links" / "adv-sym"
    link.parent.mkdir()
    link.symlink_to(sentinel)
    import subprocess

    sym = subprocess.run(
        ["nix-store", "--store", store, "--add", str(link)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    # An optimised store: a/share/data and b/share/copy become one inode.
    subprocess.run(
        ["nix-store", "--store", store, "--optimise"], capture_output=True, check=True, timeout=60
    )
    assert os.stat(f"{root}{a}/share/data").st_nlink > 1
    infos = pathinfo.parse(run_nix("path-info", "--json", "--all", "--store", store)).valid
    return Image(
        root=root,
        a=os.path.basename(a),
        b=os.path.basename(b),
        sym=os.path.basename(sym),
        hashes={p: i.nar_hash for p, i in infos.items()},
        sentinel=sentinel,
    )


def make_sentinel(path: Path) -> None:
    """A small tree of everything a broken extractor could damage."""
    path.mkdir()
    (path / "secret").write_text("host secret\n")
    (path / "secret").chmod(0o600)
    (path / "tool").write_text("#!/bin/sh\n")
    (path / "tool").chmod(0o755)
    (path / "sub").mkdir(mode=0o700)
    (path / "sub/inner").write_text("inner\n")
    os.link(path / "secret", path / "secret-hardlink")
    (path / "to-secret").symlink_to(path / "secret")
    (path / "dangling").symlink_to("/nonexistent/target")
    (path / "setgid-dir").mkdir()
    (path / "setgid-dir").chmod(0o2750)
    for i, p in enumerate(sorted(path.rglob("*"))):
        os.utime(p, ns=(1_000_000_000 * (i + 7), 1_000_000_000 * (i + 7)), follow_symlinks=False)
    os.utime(path, ns=(5_000_000_000, 5_000_000_000))


def snapshot(path: Path) -> dict[str, tuple[object, ...]]:
    """Everything about a tree except atimes: types, modes, owners, link counts,
    mtimes, sizes, contents, symlink targets."""
    out: dict[str, tuple[object, ...]] = {}
    for p in [path, *sorted(path.rglob("*"))]:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            content: object = os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            content = sorted(os.listdir(p))
        out[str(p.relative_to(path))] = (
            st.st_mode,
            st.st_uid,
            st.st_gid,
            st.st_nlink,
            st.st_mtime_ns,
            st.st_size,
            content,
        )
    return out


@dataclass
class Scenario:
    """What to seed from and what to expect. `archive(tmp, gz)` writes it."""

    archive: Callable[[Path, bool], Path]
    expect_ok: bool = False
    extra_args: tuple[str, ...] = ()
    prepare: Callable[[Path], None] | None = None  # runs on DIR before seeding
    paths: tuple[str, ...] = ("plain", "gz")  # layer code paths this case applies to
    notes: list[str] = field(default_factory=list)


def docker(layers: Callable[[], list[bytes]], **kw: object) -> Callable[[Path, bool], Path]:
    def write(tmp: Path, gz: bool) -> Path:
        return docker_save(tmp / "image.tar", layers(), gz=gz, **kw)  # type: ignore[arg-type]

    return write


def oci(layers: Callable[[], list[bytes]], **kw: object) -> Callable[[Path, bool], Path]:
    def write(tmp: Path, gz: bool) -> Path:
        target = tmp / "oci"
        target.mkdir()
        return oci_layout(target, layers(), gz=gz, **kw)  # type: ignore[arg-type]

    return write


def either(layers: Callable[[], list[bytes]]) -> Callable[[Path, bool], Path]:
    """docker-save for the plain path, OCI (gzip blobs) for the gzip path."""

    def write(tmp: Path, gz: bool) -> Path:
        return (oci(layers) if gz else docker(layers))(tmp, gz)

    return write


def cases(img: Image) -> dict[str, Scenario]:
    s = img.sentinel
    a, root = f"nix/store/{img.a}", img.root
    secret = str(s / "secret")

    def with_(*after: Crafted, **kw: object) -> Callable[[Path, bool], Path]:
        return either(lambda: [crafted_layer(root, after=after, **kw)])  # type: ignore[arg-type]

    def plant(d: Path) -> None:
        store = d / "nix/store"
        store.mkdir(parents=True)
        (store / img.a).symlink_to(s)  # where a missing image path goes
        (store / ".nixlayer-partial").symlink_to(s)  # nixlayer's old staging name
        (store / ("z" * 32 + "-junk")).symlink_to(s)  # unregistered junk
        (d / ".nixlayer").mkdir()
        (d / ".nixlayer/seed-planted").symlink_to(s)  # looks like a leaked work dir

    def opaque() -> list[bytes]:
        lower = crafted_layer(root, db=False)
        upper = crafted_layer(
            root, skip=(img.a, img.b, img.sym), after=(Crafted("nix/store/.wh..wh..opq"),)
        )
        return [lower, upper]

    def bomb(tmp: Path, gz: bool) -> Path:
        import zlib

        # A member of 1 GiB of zeros inside image path a, then the real layer: ~1 MB gzipped.
        head = tarfile.TarInfo(f"{a}/bomb")
        head.size = 1 << 30
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        chunks = [comp.compress(head.tobuf(format=tarfile.GNU_FORMAT))]
        zero = bytes(1 << 20)
        chunks += [comp.compress(zero) for _ in range(1024)]
        chunks += [comp.compress(crafted_layer(root)), comp.flush()]
        blob = b"".join(chunks)
        assert len(blob) < (8 << 20)
        return _docker_raw(tmp / "image.tar", [blob])

    def bomb_many(tmp: Path, gz: bool) -> Path:
        import zlib

        # 128 members of 8 MiB of zeros: each under the declared-size check, 1 GiB in all.
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        chunks = []
        zero = bytes(8 << 20)
        for i in range(128):
            head = tarfile.TarInfo(f"{a}/bomb-{i}")
            head.size = len(zero)
            chunks += [comp.compress(head.tobuf(format=tarfile.GNU_FORMAT)), comp.compress(zero)]
        chunks += [comp.compress(crafted_layer(root)), comp.flush()]
        return _docker_raw(tmp / "image.tar", [b"".join(chunks)])

    def planted_lock(d: Path) -> None:
        (d / "nix/store").mkdir(parents=True)
        (d / f"nix/store/{img.a}.lock").symlink_to(s / "secret")

    return {
        # point 4: a symlink member, then a regular member of the same name
        "symlink-then-regular": Scenario(
            with_(
                Crafted(f"{a}/evil", tarfile.SYMTYPE, linkname=secret),
                Crafted(f"{a}/evil", data=b"pwned"),
            )
        ),
        "symlink-dir-then-member-under-it": Scenario(
            with_(
                Crafted(f"{a}/evil", tarfile.SYMTYPE, linkname=str(s)),
                Crafted(f"{a}/evil/new", data=b"x"),
            )
        ),
        "symlink-then-directory-of-same-name": Scenario(
            with_(
                Crafted(f"{a}/d", tarfile.SYMTYPE, linkname=str(s)),
                Crafted(f"{a}/d", tarfile.DIRTYPE, mode=0o777),
                Crafted(f"{a}/d/f", data=b"x"),
            )
        ),
        "relative-symlink-climbing-then-member": Scenario(
            with_(
                Crafted(f"{a}/up", tarfile.SYMTYPE, linkname=CLIMB + str(s)[1:]),
                Crafted(f"{a}/up/secret", data=b"x"),
            )
        ),
        # point 5: a store path that is itself a symlink out of DIR (legitimate: Nix made it)
        "store-path-is-a-symlink": Scenario(either(lambda: [crafted_layer(root)]), expect_ok=True),
        "store-path-symlink-with-members-under-it": Scenario(
            with_(Crafted(f"nix/store/{img.sym}/owned", data=b"x"))
        ),
        # point 6: hard links that climb out, or to what the image does not declare
        "hardlink-dotdot": Scenario(
            with_(Crafted(f"{a}/h", tarfile.LNKTYPE, linkname=CLIMB + secret[1:]))
        ),
        "hardlink-absolute": Scenario(with_(Crafted(f"{a}/h", tarfile.LNKTYPE, linkname=secret))),
        "hardlink-dotdot-inside-name": Scenario(
            with_(Crafted(f"{a}/h", tarfile.LNKTYPE, linkname=f"{a}/../../../{CLIMB}{secret[1:]}"))
        ),
        "hardlink-to-path-not-in-image": Scenario(
            with_(
                Crafted(f"{a}/h", tarfile.LNKTYPE, linkname="nix/store/" + "z" * 32 + "-absent/f")
            )
        ),
        "hardlink-to-member-outside-store": Scenario(
            with_(
                Crafted("etc/passwd", data=b"root:x:0:0\n"),
                Crafted(f"{a}/h", tarfile.LNKTYPE, linkname="etc/passwd"),
            )
        ),
        "hardlink-to-symlink-member": Scenario(
            with_(
                Crafted(f"{a}/s", tarfile.SYMTYPE, linkname=secret),
                Crafted(f"{a}/h", tarfile.LNKTYPE, linkname=f"{a}/s"),
            )
        ),
        "hardlink-before-its-target": Scenario(
            either(
                lambda: [
                    crafted_layer(
                        root,
                        before=(Crafted(f"{a}/h", tarfile.LNKTYPE, linkname=f"{a}/share/data"),),
                    )
                ]
            )
        ),
        # point 7: symlinks planted in DIR (any copy-mode job can) before seeding
        "symlinks-planted-in-dir": Scenario(
            either(lambda: [crafted_layer(root)]), expect_ok=True, prepare=plant
        ),
        "lock-file-planted-as-symlink": Scenario(
            either(lambda: [crafted_layer(root)]),
            prepare=planted_lock,
        ),
        # point 8: digests and manifests that point outside the layout
        "oci-manifest-digest-traversal": Scenario(
            oci(lambda: [crafted_layer(root)], manifest_digest="sha256:../../../../" + secret[1:])
        ),
        "oci-layer-digest-traversal": Scenario(
            oci(lambda: [crafted_layer(root)], layer_digests=["sha256:../../x"])
        ),
        "oci-blob-is-a-symlink": Scenario(
            _oci_symlinked_blob(lambda: [crafted_layer(root)], secret)
        ),
        "docker-manifest-layer-climbs-out": Scenario(
            docker(lambda: [crafted_layer(root)], names=[CLIMB + secret[1:]])
        ),
        "docker-manifest-layer-absolute": Scenario(
            docker(lambda: [crafted_layer(root)], names=[secret])
        ),
        "wrong-diff-ids": Scenario(
            docker(lambda: [crafted_layer(root)], config=image_config([b"not the layer"])),
            extra_args=("--full-verify",),
        ),
        # special files and modes
        "char-device": Scenario(with_(Crafted(f"{a}/null", tarfile.CHRTYPE))),
        "block-device": Scenario(with_(Crafted(f"{a}/disk", tarfile.BLKTYPE))),
        "fifo": Scenario(with_(Crafted(f"{a}/fifo", tarfile.FIFOTYPE))),
        "setuid-setgid-sticky": Scenario(
            either(lambda: [crafted_layer(root, mode_or=0o7000)]), expect_ok=True
        ),
        "world-writable": Scenario(
            either(lambda: [crafted_layer(root, mode_or=0o066)]), expect_ok=True
        ),
        # duplicates
        "duplicate-member-different-content": Scenario(
            with_(Crafted(f"{a}/share/data", data=b"other\n"))
        ),
        "duplicate-member-same-content": Scenario(
            with_(Crafted(f"{a}/share/data", data=b"same-content\n"))
        ),
        "directory-then-file-of-same-name": Scenario(with_(Crafted(f"{a}/share", data=b"x"))),
        # sizes and bombs
        "gzip-bomb": Scenario(bomb, paths=("gz",)),
        "gzip-bomb-many-members": Scenario(bomb_many, paths=("gz",)),
        "huge-declared-size": Scenario(with_(Crafted(f"{a}/huge", data=b"x", size=1 << 42))),
        # names
        "absolute-member-name": Scenario(with_(Crafted(f"/{a}/abs", data=b"x"))),
        "dotdot-member-name": Scenario(with_(Crafted(f"{a}/{CLIMB}{secret[1:]}", data=b"pwned"))),
        "whiteout-of-dotdot": Scenario(with_(Crafted("nix/store/.wh.."), Crafted(f"{a}/.wh.."))),
        "whiteout-inside-a-store-path": Scenario(with_(Crafted(f"{a}/share/.wh.data"))),
        "opaque-whiteout-hides-every-path": Scenario(either(opaque)),
        "members-outside-nix-store": Scenario(
            with_(
                Crafted("etc/passwd", data=b"root::0:0\n"),
                Crafted("nix/var/nix/profiles/default", tarfile.SYMTYPE, linkname=str(s)),
                Crafted("nix/var/nix/gcroots/x/y", data=b"x"),
                Crafted("nix/store/.nixlayer-partial", tarfile.SYMTYPE, linkname=str(s)),
            ),
            expect_ok=True,
        ),
        # the database
        "db-is-a-symlink": Scenario(
            either(
                lambda: [
                    crafted_layer(
                        root,
                        db=False,
                        after=(
                            Crafted("nix/var/nix/db/db.sqlite", tarfile.SYMTYPE, linkname=secret),
                            Crafted("nix/var/nix/db/schema", data=b"10"),
                        ),
                    )
                ]
            )
        ),
        "db-claims-a-path-the-layers-lack": Scenario(
            either(lambda: [crafted_layer(root, skip=(img.a,))])
        ),
        "nar-hash-mismatch": Scenario(
            either(lambda: [crafted_layer(root, replace={f"{a}/share/sub/deep": b"tampered\n"})])
        ),
    }


def _docker_raw(target: Path, blobs: list[bytes]) -> Path:
    """A docker-save archive around already-compressed layer blobs."""
    import io

    with tarfile.open(target, "w") as tf:
        names = []
        for i, blob in enumerate(blobs):
            info = tarfile.TarInfo(f"l{i}/layer.tar")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
            names.append(info.name)
        conf = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        for name, data in (
            ("c.json", conf),
            ("manifest.json", json.dumps([{"Config": "c.json", "Layers": names}]).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return target


def _oci_symlinked_blob(
    layers: Callable[[], list[bytes]], secret: str
) -> Callable[[Path, bool], Path]:
    def write(tmp: Path, gz: bool) -> Path:
        target = tmp / "oci"
        target.mkdir()
        oci_layout(target, layers(), gz=gz)
        index = json.loads((target / "index.json").read_text())
        manifest = json.loads(
            (target / "blobs" / index["manifests"][0]["digest"].replace(":", "/")).read_text()
        )
        blob = target / "blobs" / manifest["layers"][0]["digest"].replace(":", "/")
        blob.unlink()
        blob.symlink_to(secret)
        return target

    return write
