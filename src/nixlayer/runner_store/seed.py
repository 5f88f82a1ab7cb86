"""`runner-store seed`: take /nix/store and its database out of a pinned image into
DIR, incrementally, resumably, and checked by Nix itself.

Only store paths missing from DIR are extracted (member contents of other paths are
skipped by seeking), into a hidden staging directory inside DIR's store. Each one's
NAR hash is checked against the image's database (hashed on a second core while
the next path is copied); only then is it renamed into place and registered as
valid by Nix (`nix-store --load-db`). A killed seed therefore
leaves at worst unregistered entries, which the next seed removes first.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError, NixlayerError
from nixlayer.fsutil import state_dir, target_lock
from nixlayer.nix import commands
from nixlayer.nix.nixjson import pathinfo
from nixlayer.nix.runner import Nix
from nixlayer.runner_store.archive import ImageArchive, ImageView, docker_save_to
from nixlayer.runner_store.nar import nar_hash

log = logging.getLogger("nixlayer")
# The store root travels inside a store URI (local?root=DIR) and a docker volume spec.
_PLAIN_DIR = re.compile(r"^/[A-Za-z0-9._/+@-]*$")


@dataclass(frozen=True)
class SeedResult:
    dir: str
    image_paths: int
    copied: list[str]
    removed_partial: list[str]
    verified: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_store_dir(d: Path | str) -> Path:
    """DIR must be able to hold a Nix store: absolute, plain, a writable directory on
    a filesystem with symlinks, not inside /nix/store."""
    p = Path(d)
    if not p.is_absolute():
        raise InputError("--dir", f"{d} is not an absolute path")
    if not _PLAIN_DIR.match(str(p)):
        raise InputError("--dir", f"{d}: use a plain path (letters, digits, . _ / + @ -)")
    if str(p.resolve()).startswith("/nix/store"):
        raise InputError("--dir", f"{d} is inside /nix/store")
    if p.exists() and not p.is_dir():
        raise InputError("--dir", f"{d} exists and is not a directory")
    probe_parent = p if p.exists() else next(a for a in p.parents if a.exists())
    if not os.access(probe_parent, os.W_OK):
        raise InputError("--dir", f"{probe_parent} is not writable")
    try:
        with tempfile.TemporaryDirectory(dir=probe_parent) as tmp:
            os.symlink("target", os.path.join(tmp, "link"))
    except OSError as exc:
        raise InputError(
            "--dir", f"{d} cannot hold a Nix store (no symlinks there: {exc.strerror})"
        ) from exc
    return p


def force_rmtree(path: Path) -> None:
    """Store paths are read-only; make them writable to delete them."""

    def onerror(func: Any, p: str, _exc: Any) -> None:
        os.chmod(os.path.dirname(p), stat.S_IRWXU)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, stat.S_IRWXU)
        func(p)

    for root, dirs, _ in os.walk(path):
        for name in dirs:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chmod(full, stat.S_IRWXU)
    if path.is_dir() and not path.is_symlink():
        os.chmod(path, stat.S_IRWXU)
        shutil.rmtree(path, onerror=onerror)
    elif path.exists() or path.is_symlink():
        path.unlink()


def valid_paths(nix: Nix, root: Path) -> set[str]:
    if not (root / "nix/var/nix/db/db.sqlite").is_file():
        return set()
    return set(nix.run(commands.path_info_all(commands.chroot_store(root))).stdout.split())


def seed(
    directory: Path | str,
    *,
    image: str | None = None,
    image_archive: Path | str | None = None,
    full_verify: bool = False,
    nix: Nix | None = None,
) -> SeedResult:
    if bool(image) == bool(image_archive):
        raise InputError("--image", "give exactly one of --image and --image-archive")
    d = check_store_dir(directory)
    if image_archive is not None and not Path(image_archive).exists():
        raise InputError("--image-archive", f"{image_archive}: no such file")
    nix = nix or Nix()
    d.mkdir(parents=True, exist_ok=True)
    with target_lock(d, "seed"):
        work = Path(tempfile.mkdtemp(prefix="seed-", dir=state_dir(d)))
        try:
            archive_path = (
                Path(image_archive) if image_archive else docker_save_to(str(image), work)
            )
            return _seed(d, ImageArchive(archive_path), work / "root", full_verify, nix)
        finally:
            force_rmtree(work)


def _seed(d: Path, archive: ImageArchive, stage: Path, full_verify: bool, nix: Nix) -> SeedResult:
    view = archive.view()
    if view.db_layer is None:
        raise InputError(
            "--image-archive", f"{archive.path}: the image has no /nix/var/nix/db/db.sqlite"
        )
    archive.extract(view, set(), stage)
    listed = nix.run(
        commands.path_info_json(commands.chroot_store(stage), nix.version(), all_paths=True)
    )
    image_info = {
        path: info
        for path, info in pathinfo.parse(listed.stdout).valid.items()
        if info.name in view.store_paths
    }
    image_valid = set(image_info)
    have = valid_paths(nix, d)
    removed = _remove_leftovers(d, have)
    missing = sorted(image_valid - have)
    log.info(
        "image has %d valid paths; %s already holds %d; copying %d",
        len(image_valid),
        d,
        len(image_valid & have),
        len(missing),
    )
    if missing:
        _install(
            d,
            archive,
            view,
            stage=stage,
            missing=missing,
            nar_hashes={p: image_info[p].nar_hash for p in missing},
            nix=nix,
        )
    verified = _verify(d, image_valid, missing, full_verify, nix)
    return SeedResult(
        dir=str(d),
        image_paths=len(image_valid),
        copied=missing,
        removed_partial=removed,
        verified=verified,
    )


PARTIAL = ".nixlayer-partial"


def _install(
    d: Path,
    archive: ImageArchive,
    view: ImageView,
    *,
    stage: Path,
    missing: list[str],
    nar_hashes: dict[str, str],
    nix: Nix,
) -> None:
    """Extract, check, rename into place, register: in that order. Each path is
    hashed on a second thread while the next one is being copied."""
    partial = d / "nix/store" / PARTIAL
    hashed: dict[str, Future[str]] = {}
    with ThreadPoolExecutor(max_workers=1) as hasher:

        def on_done(name: str) -> None:
            hashed[name] = hasher.submit(nar_hash, partial / "nix/store" / name)

        archive.extract(view, {os.path.basename(p) for p in missing}, partial, on_path_done=on_done)
        got = {name: f.result() for name, f in hashed.items()}
    for path in missing:
        if got.get(os.path.basename(path)) != nar_hashes[path]:
            raise NixlayerError(
                f"{path}: extracted content does not match the image's database "
                f"({got.get(os.path.basename(path))} != {nar_hashes[path]}); nothing was registered"
            )
    image_store = commands.chroot_store(stage)
    # In chunks, so that a killed seed keeps what it has registered so far.
    for part in commands.chunks(missing, 200):
        for path in part:
            _canonicalise(Path(str(partial) + path))
            os.rename(str(partial) + path, str(d) + path)
        registration = nix.run(commands.dump_db(image_store, part), tool="nix-store").stdout
        nix.run(commands.load_db(commands.chroot_store(d)), tool="nix-store", stdin=registration)
    force_rmtree(partial)


def _canonicalise(root: Path) -> None:
    """As Nix leaves store paths: read-only, executable bits kept, mtime 1."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                os.utime(p, (1, 1), follow_symlinks=False)
                continue
            mode = os.lstat(p).st_mode
            os.chmod(p, 0o555 if mode & 0o111 else 0o444)
            os.utime(p, (1, 1))
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                os.utime(p, (1, 1), follow_symlinks=False)
        if not os.path.islink(dirpath):
            os.chmod(dirpath, 0o555)
            os.utime(dirpath, (1, 1))


def _remove_leftovers(d: Path, valid: set[str]) -> list[str]:
    """Store entries the database does not know: what a killed copy left behind."""
    store = d / "nix/store"
    if not store.is_dir():
        return []
    removed = []
    for entry in sorted(os.listdir(store)):
        if entry == PARTIAL:
            force_rmtree(store / entry)
            continue
        if entry.startswith(".") or f"/nix/store/{entry}" in valid:
            continue
        log.warning("removing %s: not registered (left by an interrupted seed)", store / entry)
        force_rmtree(store / entry)
        removed.append(entry)
    return removed


def _verify(d: Path, image_valid: set[str], copied: list[str], full: bool, nix: Nix) -> int:
    """DIR's database and store agree: every valid path exists and the image's paths
    are all valid. Each copied path's NAR hash was checked before it was registered;
    `full` re-hashes every path with Nix."""
    now = valid_paths(nix, d)
    absent = sorted(p for p in now if not os.path.lexists(str(d) + p))
    if absent:
        raise NixlayerError(
            f"{d}: {len(absent)} registered paths are missing on disk, e.g. {absent[0]}"
        )
    lost = sorted(image_valid - now)
    if lost:
        raise NixlayerError(
            f"{d}: {len(lost)} image paths are not valid after seeding, e.g. {lost[0]}"
        )
    store = commands.chroot_store(d)
    if full:
        nix.run(commands.verify_all(store))
        return len(now)
    return 0
