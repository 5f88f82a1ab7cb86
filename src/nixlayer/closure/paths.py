"""Where per-VM config directories live."""

from __future__ import annotations

import os
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.safeload import check_target_dir


def config_root(root: Path | str | None = None) -> Path:
    """`root`, else $NIXLAYER_ROOT, else $WORKERS_DIR/$WORKER_INDEX/nix (seed 004's layout)."""
    if root is not None and str(root):
        return check_target_dir(str(root), "root")
    env = os.environ.get("NIXLAYER_ROOT")
    if env:
        return check_target_dir(env, "root")
    workers, index = os.environ.get("WORKERS_DIR"), os.environ.get("WORKER_INDEX")
    if workers and index:
        return check_target_dir(
            Path(os.path.expanduser(workers)).absolute() / index / "nix", "root"
        )
    raise InputError(
        "root",
        "no config root: pass --root DIR, or set NIXLAYER_ROOT (or WORKERS_DIR and WORKER_INDEX)",
    )


def config_dir_for(root: Path, vm_name: str) -> Path:
    """`<root>/<vm_name>`, refusing any name that resolves outside root."""
    base = root.resolve()
    target = (base / vm_name).resolve()
    if target.parent != base:
        raise InputError("vm_name", f"{vm_name!r} resolves outside the config root {base}")
    return target
