"""Where per-VM config directories live."""

from __future__ import annotations

import os
import re
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.fsutil import state_dir
from nixlayer.safeload import check_target_dir

# NixOS's networking.hostName type: an RFC 1123 label, 63 characters at most (it
# also allows `_`, but never first or last). A VM's name is its host name and its
# config dir's name.
VM_NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$")
# A host name set at boot (systemd.hostname=): systemd takes letters, digits and
# hyphens only (valid_ldh_char), and ignores any other name.
BOOT_NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")


def config_root(root: Path | str | None = None) -> Path:
    """`root`, else $NIXLAYER_ROOT, else $WORKERS_DIR/$WORKER_INDEX/nix (seed 004's layout)."""
    if root is not None and str(root):
        found = Path(os.path.expanduser(str(root))).absolute()
    elif os.environ.get("NIXLAYER_ROOT"):
        found = Path(os.path.expanduser(os.environ["NIXLAYER_ROOT"])).absolute()
    elif os.environ.get("WORKERS_DIR") and os.environ.get("WORKER_INDEX"):
        workers, index = os.environ["WORKERS_DIR"], os.environ["WORKER_INDEX"]
        found = Path(os.path.expanduser(workers)).absolute() / index / "nix"
    else:
        raise InputError(
            "root",
            "no config root: pass --root DIR, or set NIXLAYER_ROOT "
            "(or WORKERS_DIR and WORKER_INDEX)",
        )
    if "\x00" in str(found):
        raise InputError("root", "contains a NUL character")
    if found.exists() and not found.is_dir():
        raise InputError("root", f"{found} is not a directory")
    return check_target_dir(found, "root")


def prepare_root(root: Path) -> None:
    """Create the root and nixlayer's state dir in it, or say in one line why not
    (a file in the way, /proc, no permission). Called only once input is valid."""
    try:
        state_dir(root).mkdir(parents=True, exist_ok=True)
        probe = state_dir(root) / "locks"
        probe.mkdir(exist_ok=True)
    except OSError as exc:
        raise InputError("root", f"cannot use {root}: {exc.strerror}") from None


def config_dir_for(root: Path, vm_name: str) -> Path:
    """`<root>/<vm_name>`, refusing any name that resolves outside root, and a
    symlink: nixlayer did not make it, and the VM would write through it into
    another VM's directory (and, with its host name set at boot, take that one's)."""
    base = root.resolve()
    if (base / vm_name).is_symlink():
        raise InputError("vm_name", f"{base / vm_name} is a symlink; nixlayer does not follow it")
    target = (base / vm_name).resolve()
    if target.parent != base:
        raise InputError("vm_name", f"{vm_name!r} resolves outside the config root {base}")
    if target.exists() and not target.is_dir():
        raise InputError("vm_name", f"{target} exists and is not a directory")
    return target
