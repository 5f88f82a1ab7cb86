"""Step 2: lock the per-VM flake, re-pinning what must move.

`nix flake lock` only adds missing pins; it never moves one. So every run
re-pins each `<pkg>-src` override input (the checkout a developer iterates on),
and the library only when asked. A `path:` library edited on disk after it was
pinned is silently reused from the old copy (Nix issue 7860): we warn.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from nixlayer.closure.results import LockResult
from nixlayer.errors import InputError
from nixlayer.fsutil import target_lock
from nixlayer.nix import commands
from nixlayer.nix.nixjson import flakelock
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")

_SRC_INPUT = re.compile(r"^[ \t]*\"?([A-Za-z_][A-Za-z0-9_'-]*-src)\"?[ \t]*=[ \t]*\{", re.M)


def lock_config(
    config_dir: Path | str, *, update_library: bool = False, nix: Nix | None = None
) -> LockResult:
    cdir = check_config_dir(config_dir)
    with target_lock(cdir.parent, cdir.name):
        return lock_unlocked(cdir, update_library=update_library, nix=nix)


def check_config_dir(config_dir: Path | str) -> Path:
    cdir = Path(config_dir).absolute()
    if not (cdir / "flake.nix").is_file():
        raise InputError("config_dir", f"{cdir} has no flake.nix (run `nixlayer render` first)")
    return cdir


def lock_unlocked(cdir: Path, *, update_library: bool, nix: Nix | None) -> LockResult:
    nix = nix or Nix()
    lock_file = cdir / "flake.lock"
    ref = f"path:{cdir}"
    declared = _SRC_INPUT.findall((cdir / "flake.nix").read_text())
    current = flakelock.read(lock_file)
    old = current.root_inputs() if current else {}
    # A fresh lock pins everything at its current state; only existing pins move.
    update = [name for name in declared if name in old]
    library_inputs = [n for n, v in old.items() if isinstance(v, str) and n not in declared]
    warnings: list[str] = []
    if update_library:
        update += library_inputs
    elif current is not None:
        warnings += _stale_path_pins(current, library_inputs, nix)
    for w in warnings:
        log.warning("%s", w)
    # Nix's own account of what moved (`• Updated input …`) is logged whole by the runner.
    nix.run(commands.flake_lock(ref, update, nix.version().dialect))
    return LockResult(
        config_dir=cdir, lock_file=lock_file, updated_inputs=tuple(update), warnings=tuple(warnings)
    )


def _stale_path_pins(lock: flakelock.FlakeLock, names: list[str], nix: Nix) -> list[str]:
    """Warnings for `path:` pins whose directory no longer has the pinned content."""
    out = []
    for name in names:
        locked = lock.locked(name)
        if locked.get("type") != "path" or not locked.get("narHash"):
            continue
        path = Path(str(locked.get("path", "")))
        if not path.is_dir():
            out.append(f"input {name!r} is pinned to {path}, which no longer exists")
            continue
        current = nix.run(commands.hash_path(path)).stdout.strip()
        if current != locked["narHash"]:
            out.append(
                f"input {name!r} ({path}) changed on disk since it was pinned; Nix keeps "
                f"building the pinned copy ({locked['narHash']}). Re-pin it with "
                "`nixlayer lock --update-library` (or `update_lock: true`)."
            )
    return out
