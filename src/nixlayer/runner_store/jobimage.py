"""Daemon mode with a nixos/nix-style job image.

Such an image keeps its Nix, its shell (/bin/sh is a link into /nix/store) and its
profile in its own /nix/store, which the host store mounted over /nix/store hides:
`exec: "/bin/sh": stat /bin/sh: no such file or directory`. The cure that keeps
the mounts minimal and read-only: make every store path of the image valid in the
host store, so the links resolve there. The image's own Nix lists its valid paths
and exports the ones the host lacks (a container with no network and no mounts);
the host's Nix imports that stream into the host store as root (directly, not
through the daemon, where root is not trusted), checking every NAR as it is
registered; a GC root per image keeps the paths from the host's garbage collection.

The image is trusted as much as any path root imports: only an image the host
admin names with `configure --image` is imported, never one a job names.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from nixlayer.errors import InputError, NixlayerError
from nixlayer.nix import commands
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")

GCROOTS = "nix/var/nix/gcroots/nixlayer-images"
_STORE_PATH = re.compile(r"^/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+$")
_TIMEOUT = 1800


def _docker() -> str:
    docker = shutil.which("docker")
    if docker is None:
        raise InputError("--image", "no docker CLI here: cannot read the job image")
    return docker


def _in_image(image: str, *argv: str) -> list[str]:
    return [_docker(), "run", "--rm", "--network", "none", "--entrypoint", "", image, *argv]


def image_paths(image: str) -> list[str]:
    """The image's valid store paths, as its own Nix reports them."""
    argv = _in_image(
        image, "nix", "--extra-experimental-features", "nix-command", "path-info", "--all"
    )
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as exc:
        raise NixlayerError(f"listing the store paths of {image} timed out") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise InputError("--image", f"{image}: cannot list its store paths with its nix: {last}")
    paths = proc.stdout.split()
    bad = [p for p in paths if not _STORE_PATH.match(p)]
    if bad or not paths:
        raise InputError("--image", f"{image}: its nix listed no usable store paths ({bad[:1]})")
    return sorted(paths)


def _invalid_on_host(nix: Nix, store: str, paths: list[str]) -> list[str]:
    missing: list[str] = []
    for part in commands.chunks(paths, 500):
        missing += nix.run(commands.print_invalid(store, part), tool="nix-store").stdout.split()
    return missing


def import_image(image: str, store_root: str, nix: Nix | None = None) -> list[str]:
    """Make the image's store paths valid in the host store at `store_root` (the
    directory containing nix/store). Returns the image's store paths."""
    nix = nix or Nix()
    paths = image_paths(image)
    store = commands.chroot_store(Path(store_root))
    missing = _invalid_on_host(nix, store, paths)
    if missing:
        log.info("%s: importing %d of its %d store paths", image, len(missing), len(paths))
        export_argv = _in_image(image, "nix-store", "--export", *missing)
        import_argv = nix.argv(commands.import_paths(store), tool="nix-store")
        log.info("$ %s | %s", shlex.join(export_argv[:9]) + " ...", shlex.join(import_argv))
        export = subprocess.Popen(
            export_argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert export.stdout is not None
        try:
            imp = subprocess.run(
                import_argv,
                stdin=export.stdout,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
            )
            export.stdout.close()
            export_err = export.communicate(timeout=60)[1]
        finally:
            if export.poll() is None:
                export.kill()
                export.wait()
        if export.returncode != 0 or imp.returncode != 0:
            raise NixlayerError(
                f"importing the store paths of {image} failed: "
                f"{(export_err or b'').decode(errors='replace').strip()} {imp.stderr.strip()}"
            )
        still = _invalid_on_host(nix, store, paths)
        if still:
            raise NixlayerError(f"{image}: {len(still)} paths still invalid, e.g. {still[0]}")
    _pin(Path(store_root), image, paths)
    return paths


def root_name(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", image)[:200]


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
