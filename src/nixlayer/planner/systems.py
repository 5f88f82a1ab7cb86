"""The two systems a plan compares: a directory (a system root or a toplevel) or a
flake reference, which is built first (so one command serves a merge-request job)."""

from __future__ import annotations

import os
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.nix import commands
from nixlayer.nix.flakeref import normalize_ref
from nixlayer.nix.nixjson import build as build_json
from nixlayer.nix.runner import Nix, ProgressCallback
from nixlayer.planner.model import Kind

STORE_DIR = "/nix/store/"
FLAKE_SCHEMES = ("path:", "git+", "github:", "gitlab:", "sourcehut:", "tarball+", "file+", "flake:")
ATTR_PREFIX = {
    "nixos": "nixosConfigurations.{}.config.system.build.toplevel",
    "nix-darwin": "darwinConfigurations.{}.system",
    "system-manager": "systemConfigs.{}",
}


def is_flake_ref(arg: str) -> bool:
    return "#" in arg or arg.startswith(FLAKE_SCHEMES)


def installable(arg: str, kind: Kind) -> str:
    """`REF#name` -> the system's toplevel attribute, as nixos-rebuild and darwin-rebuild
    expand it; a fragment with a dot is taken as the full attribute path."""
    ref, _, attr = arg.partition("#")
    ref, _ = normalize_ref(ref or ".")
    if not attr:
        raise InputError(arg, "a flake reference needs #NAME (e.g. .#runner)")
    if "." not in attr and not attr.startswith('"'):
        attr = ATTR_PREFIX[kind].format(attr)
    return f"{ref}#{attr}"


def build_system(arg: str, kind: Kind, nix: Nix, progress: ProgressCallback | None = None) -> Path:
    argv = commands.build(installable(arg, kind), out_link=None, progress_json=bool(progress))
    out = nix.run(argv, progress=progress).stdout
    return Path(build_json.out_path(out))


def resolve_system(
    arg: str, flag: str, kind: Kind, nix: Nix, progress: ProgressCallback | None = None
) -> Path:
    """A directory as given, or the toplevel a flake reference builds."""
    if "\0" in arg:
        raise InputError(flag, "contains a NUL character")
    path = Path(arg)
    if path.is_dir() and "#" not in arg:
        return path
    if is_flake_ref(arg):
        return build_system(arg, kind, nix, progress)
    raise InputError(flag, f"{arg} is neither a directory nor a flake reference (REF#NAME)")


def detect_kind(root: Path) -> Kind:
    if (root / "etc/systemd/system").is_dir():
        return "nixos"
    if (root / "services/services.json").is_file() or (root / "services").is_dir():
        return "system-manager"
    if (root / "Library/LaunchDaemons").is_dir() or (root / "Library/LaunchAgents").is_dir():
        return "nix-darwin"
    raise InputError(
        "--to", f"{root} has no etc/systemd/system, services/ or Library/Launch* (pass --kind)"
    )


def store_path(root: Path) -> str | None:
    """The store path a system root is, or None (a plain directory, or /)."""
    real = os.path.realpath("/run/current-system" if root == Path("/") else root)
    return real if real.startswith(STORE_DIR) else None
