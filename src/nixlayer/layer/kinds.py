"""The kinds of system a job layers over, and everything that differs per kind, in one table.

The actions are the planner's `Action` (one list for `plan` and `switch`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from nixlayer.errors import InputError
from nixlayer.planner.model import Action

Kind = Literal["nixos", "darwin", "system-manager"]
KIND_NAMES: tuple[Kind, ...] = get_args(Kind)
ACTIONS: tuple[Action, ...] = get_args(Action)


@dataclass(frozen=True)
class KindSpec:
    outputs: str  # the flake output attribute set the rebuild tool reads
    attr_tail: str  # the attribute path under one configuration
    profile: Path  # the system profile
    current: Path  # the running system (what a finished activation points at)
    systemd: bool  # unit names follow systemd's rules (and activation can be transient)


SM_PROFILE = Path("/nix/var/nix/profiles/system-manager-profiles/system-manager")

KINDS: dict[Kind, KindSpec] = {
    "nixos": KindSpec(
        "nixosConfigurations",
        ".config.system.build.toplevel",
        Path("/nix/var/nix/profiles/system"),
        Path("/run/current-system"),
        systemd=True,
    ),
    "darwin": KindSpec(
        "darwinConfigurations",
        ".system",
        Path("/nix/var/nix/profiles/system"),
        Path("/run/current-system"),
        systemd=False,
    ),
    "system-manager": KindSpec("systemConfigs", "", SM_PROFILE, SM_PROFILE, systemd=True),
}


def parse_kind(value: str, field: str = "--kind") -> Kind:
    for kind in KIND_NAMES:
        if value == kind:
            return kind
    raise InputError(field, f"{value!r} is not one of {', '.join(KIND_NAMES)}")


def parse_action(value: str, field: str = "--action") -> Action:
    for action in ACTIONS:
        if value == action:
            return action
    raise InputError(field, f"{value!r} is not one of {', '.join(ACTIONS)}")


def detect_kind() -> Kind:
    if sys.platform == "darwin":
        return "darwin"
    return "nixos" if Path("/etc/NIXOS").exists() else "system-manager"
