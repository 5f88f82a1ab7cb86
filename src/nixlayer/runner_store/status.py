"""`runner-store status`: how each runner is set up, and the store's size and health."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from nixlayer.errors import NixError
from nixlayer.nix.runner import Nix
from nixlayer.runner_store import config
from nixlayer.runner_store.seed import valid_paths


def store_health(directory: Path, nix: Nix) -> dict[str, Any]:
    store = directory / "nix/store"
    size = 0
    for root, _dirs, files in os.walk(store):
        for f in files:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(root, f)).st_size
    try:
        valid = valid_paths(nix, directory)
    except NixError as exc:
        return {
            "dir": str(directory),
            "bytes": size,
            "healthy": False,
            "problem": exc.stderr.strip(),
        }
    entries = [e for e in os.listdir(store) if not e.startswith(".")] if store.is_dir() else []
    absent = [p for p in valid if not os.path.lexists(str(directory) + p)]
    leftovers = [e for e in entries if f"/nix/store/{e}" not in valid]
    problem = None
    if not valid:
        problem = "no database or no valid paths (run `nixlayer runner-store seed`)"
    elif absent:
        problem = f"{len(absent)} registered paths are missing on disk"
    elif leftovers:
        problem = f"{len(leftovers)} unregistered entries (an interrupted seed; seed again)"
    return {
        "dir": str(directory),
        "bytes": size,
        "valid_paths": len(valid),
        "healthy": problem is None,
        "problem": problem,
    }


def status(
    path: Path | str, directory: Path | str | None, nix: Nix | None = None
) -> dict[str, Any]:
    p = Path(path)
    doc = config.load(p)
    out: dict[str, Any] = {"config": str(p), "runners": config.runner_modes(doc, p)}
    if directory is not None:
        out["store"] = store_health(Path(directory), nix or Nix())
    return out
