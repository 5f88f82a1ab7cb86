"""Step 2: lock the per-VM flake, re-pinning what must move.

`nix flake lock` only adds missing pins; it never moves one. So every run
re-pins each source override input (the checkout a developer iterates on; the
manifest says which inputs those are), and the library only when asked. A
`path:` library edited on disk after it was pinned is silently reused from the
old copy (Nix issue 7860): we warn.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nixlayer.closure.manifest import Manifest, read_manifest
from nixlayer.closure.paths import prepare_root
from nixlayer.closure.results import LockResult
from nixlayer.errors import InputError
from nixlayer.fsutil import target_lock
from nixlayer.nix import commands
from nixlayer.nix.nixjson import flakelock
from nixlayer.nix.nixjson.flakelock import FlakeLock
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")


def lock_config(
    config_dir: Path | str, *, update_library: bool = False, nix: Nix | None = None
) -> LockResult:
    cdir = check_config_dir(config_dir)
    # Unusable input is refused before anything (the root's lock file) is written.
    read_manifest(cdir)
    read_lock(cdir / "flake.lock")
    prepare_root(cdir.parent)
    with target_lock(cdir.parent, cdir.name):
        return lock_unlocked(cdir, update_library=update_library, nix=nix)


def check_config_dir(config_dir: Path | str) -> Path:
    cdir = Path(config_dir).absolute()
    if not (cdir / "flake.nix").is_file():
        raise InputError("config_dir", f"{cdir} has no flake.nix (run `nixlayer render` first)")
    return cdir


def read_lock(lock_file: Path) -> FlakeLock:
    """The lock file (parsed once, by the typed boundary), or an empty one when there is
    none yet. A damaged file is bad input (one line), not a traceback."""
    return flakelock.read(lock_file) or flakelock.empty()


def lock_unlocked(
    cdir: Path,
    *,
    update_library: bool,
    nix: Nix | None,
    hashes: dict[Path, str] | None = None,
) -> LockResult:
    """Lock `cdir` (the caller holds its lock). `hashes`: NAR hashes of pinned `path:`
    directories already taken (path -> hash), kept across the VMs of a fleet so that
    each library directory is hashed once."""
    nix = nix or Nix()
    manifest = read_manifest(cdir)
    lock_file = cdir / "flake.lock"
    old = read_lock(lock_file)
    overrides = manifest.override_inputs
    # A fresh lock pins everything at its current state; only existing pins move.
    update = [name for name in overrides if name in old.root_inputs()]
    library_inputs = library_input_names(old, manifest)
    warnings: list[str] = []
    if update_library:
        update += library_inputs
    else:
        warnings += _stale_path_pins(old, library_inputs, nix, {} if hashes is None else hashes)
    for w in warnings:
        log.warning("%s", w)
    nix.run(commands.flake_lock(f"path:{cdir}", update, nix.version().dialect))
    new = read_lock(lock_file)
    moved = tuple(
        n for n in new.root_inputs() if n in old.root_inputs() and new.locked(n) != old.locked(n)
    )
    added = tuple(n for n in new.root_inputs() if n not in old.root_inputs())
    return LockResult(
        config_dir=cdir,
        lock_file=lock_file,
        moved=moved,
        added=added,
        requested=tuple(update),
        warnings=tuple(warnings),
    )


def library_input_names(lock: FlakeLock, manifest: Manifest) -> list[str]:
    """Root inputs with a pin of their own that are not source overrides: the
    library (and any input the template adds)."""
    return [
        n
        for n, v in lock.root_inputs().items()
        if isinstance(v, str) and n not in manifest.override_inputs
    ]


def _stale_path_pins(
    lock: FlakeLock, names: list[str], nix: Nix, hashes: dict[Path, str]
) -> list[str]:
    """Warnings for `path:` pins whose directory no longer has the pinned content."""
    out = []
    for name in names:
        locked = lock.locked(name) or {}
        if locked.get("type") != "path" or not locked.get("narHash"):
            continue
        path = Path(str(locked.get("path")))
        if not path.is_dir():
            out.append(f"input {name!r} is pinned to {path}, which no longer exists")
            continue
        current = hashes.get(path)
        if current is None:
            current = hashes[path] = nix.run(commands.hash_path(path)).stdout.strip()
        if current != locked["narHash"]:
            out.append(
                f"input {name!r} ({path}) changed on disk since it was pinned; Nix keeps "
                f"building the pinned copy ({locked['narHash']}). Re-pin it with "
                "`nixlayer lock --update-library` (or `update_library: true`)."
            )
    return out
