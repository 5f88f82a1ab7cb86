"""Activate a built system, and roll back to the previous one when that fails.

NixOS: `<toplevel>/bin/switch-to-configuration ACTION`, with the system profile
set first for switch and boot (as nixos-rebuild does). system-manager: its
`bin/register-profile` and `bin/activate`. nix-darwin: `<system>/activate`.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import NixlayerError
from nixlayer.nix import commands
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")

PROFILES = {
    "nixos": Path("/nix/var/nix/profiles/system"),
    "darwin": Path("/nix/var/nix/profiles/system"),
    "system-manager": Path("/nix/var/nix/profiles/system-manager-profiles/system-manager"),
}


class ActivationError(NixlayerError):
    exit_code = 1


def activation_steps(kind: str, toplevel: Path, action: str) -> list[list[str]]:
    """The commands that activate `toplevel` for `action` (pure)."""
    if kind == "nixos":
        return [[str(toplevel / "bin/switch-to-configuration"), action]]
    if kind == "system-manager":
        steps = []
        if action in ("switch", "boot"):
            steps.append([str(toplevel / "bin/register-profile")])
        if action in ("switch", "test"):
            steps.append([str(toplevel / "bin/activate")])
        return steps
    if kind == "darwin":
        return [[str(toplevel / "activate")]] if action in ("switch", "test") else []
    raise ValueError(kind)


def sets_profile(kind: str, action: str) -> bool:
    # system-manager's register-profile manages its own profile.
    return kind in ("nixos", "darwin") and action in ("switch", "boot")


def run_logged(argv: Sequence[str]) -> int:
    """Run an activation script, passing its output on line by line."""
    log.info("$ %s", shlex.join(argv))
    env = {
        **os.environ,
        "NIXOS_INSTALL_BOOTLOADER": os.environ.get("NIXOS_INSTALL_BOOTLOADER", "0"),
    }
    with subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.info("  %s", line.rstrip("\n"))
        return proc.wait()


@dataclass(frozen=True)
class ActivationResult:
    activated: bool
    rolled_back_to: str | None


def activate(
    kind: str,
    toplevel: Path,
    action: str,
    *,
    previous: Path | None,
    profile: Path | None = None,
    nix: Nix | None = None,
) -> ActivationResult:
    nix = nix or Nix()
    profile = profile or PROFILES[kind]
    if sets_profile(kind, action):
        nix.run(commands.profile_set(profile, str(toplevel)), tool="nix-env")
    for step in activation_steps(kind, toplevel, action):
        code = run_logged(step)
        if code != 0:
            rolled = _roll_back(kind, action, previous, profile, nix)
            where = f"; rolled back to {rolled}" if rolled else "; nothing to roll back to"
            raise ActivationError(
                f"activation failed: {shlex.join(step)} exited with {code}{where}"
            )
    return ActivationResult(activated=True, rolled_back_to=None)


def _roll_back(
    kind: str, action: str, previous: Path | None, profile: Path, nix: Nix
) -> str | None:
    if sets_profile(kind, action):
        nix.run(commands.profile_rollback(profile), tool="nix-env")
    if previous is None or not previous.exists():
        return None
    target = os.path.realpath(previous)
    log.warning("activation failed; rolling back to %s", target)
    for step in activation_steps(kind, Path(target), action if action != "boot" else "boot"):
        if run_logged(step) != 0:
            log.error("rolling back failed too: %s", shlex.join(step))
            break
    return target
