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
from typing import Any

from nixlayer.closure.results import LockResult
from nixlayer.errors import InputError
from nixlayer.fsutil import target_lock
from nixlayer.nix import commands
from nixlayer.nix.runner import Nix
from nixlayer.safeload import parse_json, read_text

log = logging.getLogger("nixlayer")

_SRC_INPUT = re.compile(r"^[ \t]*\"?([A-Za-z_][A-Za-z0-9_'-]*-src)\"?[ \t]*=[ \t]*\{", re.M)


def lock_config(
    config_dir: Path | str, *, update_library: bool = False, nix: Nix | None = None
) -> LockResult:
    cdir = check_config_dir(config_dir)
    # Unreadable input is refused before anything (the lock file) is written.
    read_text(cdir / "flake.nix", "config_dir")
    _read_lock(cdir / "flake.lock")
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
    old = _root_inputs(lock_file)
    # A fresh lock pins everything at its current state; only existing pins move.
    update = [name for name in declared if name in old]
    library_inputs = [n for n, v in old.items() if isinstance(v, str) and n not in declared]
    warnings: list[str] = []
    if update_library:
        update += library_inputs
    else:
        warnings += _stale_path_pins(lock_file, library_inputs, nix)
    for w in warnings:
        log.warning("%s", w)
    nix.run(commands.flake_lock(ref, update, nix.version().dialect))
    return LockResult(
        config_dir=cdir, lock_file=lock_file, updated_inputs=tuple(update), warnings=tuple(warnings)
    )


def _read_lock(lock_file: Path) -> dict[str, Any]:
    if not lock_file.is_file():
        return {}
    data = parse_json(read_text(lock_file, "flake.lock"), "flake.lock", str(lock_file))
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict) or not all(isinstance(n, dict) for n in nodes.values()):
        raise InputError("flake.lock", f"{lock_file}: not a flake lock file (nodes)")
    root_name = data.get("root")
    root = nodes.get(root_name) if isinstance(root_name, str) else None
    if not isinstance(root, dict):
        raise InputError("flake.lock", f"{lock_file}: not a flake lock file (nodes, root)")
    if not isinstance(root.get("inputs", {}), dict):
        raise InputError("flake.lock", f"{lock_file}: the root node's inputs are not an object")
    checked: dict[str, Any] = data
    return checked


def _root_inputs(lock_file: Path) -> dict[str, Any]:
    data = _read_lock(lock_file)
    if not data:
        return {}
    root = data["nodes"][data["root"]]
    inputs: dict[str, Any] = root.get("inputs", {})
    return inputs


def _stale_path_pins(lock_file: Path, names: list[str], nix: Nix) -> list[str]:
    """Warnings for `path:` pins whose directory no longer has the pinned content."""
    data = _read_lock(lock_file)
    out = []
    for name in names:
        node_name = _root_inputs(lock_file)[name]
        locked = data["nodes"].get(node_name, {}).get("locked")
        if not isinstance(locked, dict) or locked.get("type") != "path":
            continue
        if not isinstance(locked.get("path"), str) or not locked.get("narHash"):
            continue
        path = Path(locked["path"])
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
