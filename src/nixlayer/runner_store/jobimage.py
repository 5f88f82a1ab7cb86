"""Daemon mode with a nixos/nix-style job image.

Such an image keeps its Nix, its shell (/bin/sh is a link into /nix/store) and its
profile in its own /nix/store, which the host store mounted over /nix/store hides:
`exec: "/bin/sh": stat /bin/sh: no such file or directory`. The cure that keeps
the mounts minimal and read-only: make every store path of the image valid in the
host store, so the links resolve there. nixlayer takes the image apart with the
same checked extraction as `seed` (each path's NAR hash against the image's own
database) into a private staging store, then `nix copy`s it into the host store
as root (directly, not through the daemon, where root is not trusted) and pins it
with a GC root per image, so the host's garbage collection keeps it.

The image is trusted as much as any path root imports: only an image the host
admin pins with `configure --image` is imported, never one a job names.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.nix import commands
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")

GCROOTS = "nix/var/nix/gcroots/nixlayer-images"


def _docker_save(image: str, target: Path) -> Path:
    docker = shutil.which("docker")
    if docker is None:
        raise InputError("--image", "no docker CLI here: cannot read the job image")
    out = target / "image.tar"
    try:
        proc = subprocess.run(
            [docker, "save", "-o", str(out), image],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InputError("--image", f"docker save {image} timed out") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise InputError("--image", f"docker save {image}: {last}")
    return out


def root_name(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", image)[:200]


def import_image(image: str, store_root: str, nix: Nix | None = None) -> list[str]:
    """Make the image's store paths valid in the host store at `store_root` (the
    directory containing nix/store). Returns the image's store paths."""
    from nixlayer.runner_store.seed import force_rmtree, seed, valid_paths

    nix = nix or Nix()
    work = Path(tempfile.mkdtemp(prefix="nixlayer-image-"))
    try:
        os.chmod(work, 0o700)
        archive = _docker_save(image, work)
        staging = work / "store"
        seed(staging, image_archive=archive, nix=nix)
        paths = sorted(valid_paths(nix, staging))
        if paths:
            host = commands.chroot_store(Path(store_root))
            for part in commands.chunks(paths, 500):
                nix.run(commands.copy_paths(commands.chroot_store(staging), host, part))
            _pin(Path(store_root), image, paths)
        log.info("image %s: %d store paths valid in the host store", image, len(paths))
        return paths
    finally:
        force_rmtree(work)


def _pin(store_root: Path, image: str, paths: list[str]) -> None:
    """One GC root per image path, in a directory nixlayer owns under gcroots."""
    base = store_root / GCROOTS
    base.mkdir(parents=True, exist_ok=True)
    if base.is_symlink() or not base.is_dir():
        raise InputError("--dir", f"{base} is not a plain directory")
    tmp = Path(tempfile.mkdtemp(prefix=".new-", dir=base))
    for p in paths:
        os.symlink(p, tmp / os.path.basename(p))
    dest = base / root_name(image)
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
