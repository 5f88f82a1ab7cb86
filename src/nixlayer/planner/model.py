"""A predicted switch: the lists and lines switch-to-configuration would print,
with a reason for every decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

# What `switch-to-configuration` is asked to do (`check` only runs the pre-switch checks).
Action = Literal["switch", "test", "dry-activate", "boot"]
ACTIONS: tuple[Action, ...] = get_args(Action)
# Which activation the plan models.
Kind = Literal["nixos", "system-manager", "nix-darwin"]
KINDS: tuple[Kind, ...] = get_args(Kind)
# What happens to one unit. `filtered`: an active target started again without being
# printed; `silent-skip`: skipped after the skip line was printed; `new`: not on any
# list, started by systemd as a dependency of a target that is started again;
# `conflict`: stopped by systemd because a unit that is started has Conflicts= on it;
# `post-activation`: user units taken over from home-manager after nixos-activation.
Change = Literal[
    "stop",
    "start",
    "restart",
    "reload",
    "skip",
    "filtered",
    "silent-skip",
    "new",
    "conflict",
    "swapoff",
    "post-activation",
]

# The upstream revision whose behaviour the plan reproduces (see README, "Predict a switch").
MODELS = (
    "nixpkgs pkgs/by-name/sw/switch-to-configuration-ng/src/main.rs at "
    "0145c6da2896513d94440e7fb41c11487aa3de16: per-user unit switching (NixOS/nixpkgs#507588) "
    "with the hardened migration pass (#517768); the open timer fix (#525813) is not modelled"
)


def sort_units(names: set[str] | frozenset[str]) -> list[str]:
    """Upstream's order: a stable sort keyed on the lower-cased name."""
    return sorted(sorted(names), key=str.lower)


@dataclass(frozen=True)
class Decision:
    unit: str
    change: Change
    reason: str


@dataclass(frozen=True)
class UserPlan:
    """What the per-user child of switch-to-configuration does for one logged-in user."""

    user: str
    stop: list[str]
    start: list[str]
    restart: list[str]
    reload: list[str]
    skip: list[str]
    filtered: list[str]
    new_units: list[str]
    decisions: list[Decision]
    lines: list[str]


@dataclass(frozen=True)
class InhibitorChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class InhibitorVerdict:
    """NixOS switch inhibitors (`system.switch.inhibitors`): the pre-switch check refuses
    `switch` and `test` when an inhibitor present in both systems changed."""

    checked: bool  # False for dry-activate and boot, or when a side has no inhibitors file
    inhibited: bool
    changed: list[InhibitorChange]
    note: str


@dataclass(frozen=True)
class SwitchPlan:
    action: Action
    stop: list[str]  # as printed: STOP minus filtered targets
    start: list[str]  # as printed: START minus filtered targets
    restart: list[str]
    reload: list[str]
    skip: list[str]  # as printed before activation
    filtered: list[str]  # targets started (and maybe stopped) without being printed
    silent_skip: list[str]  # skipped after the skip line was printed (activation requests)
    stop_all: list[str]  # every unit stopped: filtered ones and Conflicts= victims included
    start_all: list[str]
    swapoff: list[str]
    restart_systemd: bool
    lines: list[str]
    kind: Kind = "nixos"
    decisions: list[Decision] = field(default_factory=list)
    new_units: list[str] = field(default_factory=list)
    conflict_stops: list[str] = field(default_factory=list)
    users: list[UserPlan] = field(default_factory=list)
    inhibitors: InhibitorVerdict | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def reasons(self, unit: str) -> list[Decision]:
        return [d for d in self.decisions if d.unit == unit]
