"""A predicted switch: the lists and lines switch-to-configuration would print."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Action = Literal["switch", "test", "dry-activate", "boot"]


def sort_units(names: set[str] | frozenset[str]) -> list[str]:
    """Upstream's order: a stable sort keyed on the lower-cased name."""
    return sorted(sorted(names), key=str.lower)


@dataclass(frozen=True)
class SwitchPlan:
    action: str
    stop: list[str]  # as printed: STOP minus filtered targets
    start: list[str]  # as printed: START minus filtered targets
    restart: list[str]
    reload: list[str]
    skip: list[str]  # as printed before activation
    filtered: list[str]  # targets started (and maybe stopped) without being printed
    silent_skip: list[str]  # skipped after the skip line was printed (activation requests)
    stop_all: list[str]  # every unit stopped, filtered ones included
    start_all: list[str]
    swapoff: list[str]
    restart_systemd: bool
    lines: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
