"""The guard: refuse a switch that would bounce what keeps the job connected."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.planner.model import SwitchPlan, sort_units
from nixlayer.planner.unitfile import UnitTree

log = logging.getLogger("nixlayer")

# Mirrors nixlib/lib.nix defaultProtectedUnits (a test keeps the two equal).
DEFAULT_PROTECTED = (
    "sshd.service",
    "sshd.socket",
    "gitlab-runner.service",
    "nix-daemon.service",
    "nix-daemon.socket",
    "systemd-logind.service",
    "dbus.service",
    "dbus.socket",
    "dbus-broker.service",
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "systemd-resolved.service",
    "NetworkManager.service",
    "network-setup.service",
    "firewall.service",
    "nftables.service",
    "wpa_supplicant.service",
)
PUBLISHED = "etc/nixlayer/protected-units.json"


@dataclass(frozen=True)
class Violation:
    unit: str
    change: str  # "stop", "restart", "reload" or "skip"
    cause: str

    def line(self) -> str:
        verbs = {
            "stop": "would be stopped",
            "restart": "would be restarted",
            "reload": "would be reloaded (launchd unloads and loads it again)",
            "skip": "was changed, and switch-to-configuration would not restart it "
            "(restartIfChanged = false), so the change would silently not apply",
        }
        return f"{self.unit} {verbs[self.change]}: {self.cause}"


def own_units(cgroup_file: Path | None = None) -> list[str]:
    """The service or scope this command runs in (the runner agent, an SSH session)."""
    path = cgroup_file or Path(os.environ.get("NIXLAYER_CGROUP_FILE", "/proc/self/cgroup"))
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        for part in line.rsplit(":", 1)[-1].split("/"):
            if part.endswith((".service", ".scope")):
                out.append(part)
    return out


def published(root: Path) -> list[str]:
    try:
        data = json.loads((root / PUBLISHED).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    units = data.get("units", []) if isinstance(data, dict) else []
    return [str(u) for u in units]


def protected_units(
    roots: Iterable[Path], extra: Iterable[str], allowed: Iterable[str]
) -> frozenset[str]:
    """Defaults, what the old and the new system publish, --protect and our own
    unit, less what --allow-restart names (explicit and logged)."""
    units = set(DEFAULT_PROTECTED) | set(extra) | set(own_units())
    for root in roots:
        units |= set(published(root))
    for unit in sorted(set(allowed) & units):
        log.warning("allowing %s to be stopped or restarted (--allow-restart)", unit)
    return frozenset(units - set(allowed))


def violations(
    plan: SwitchPlan, protected: frozenset[str], old: UnitTree | None, new: UnitTree | None
) -> list[Violation]:
    found: dict[str, Violation] = {}
    for change, units in (
        ("skip", [*plan.skip, *plan.silent_skip]),
        ("reload", plan.reload if plan.kind == "nix-darwin" else []),
        ("restart", plan.restart),
        ("stop", plan.stop_all),
    ):
        for unit in units:
            if unit in protected:
                found[unit] = Violation(unit, change, explain(unit, old, new))
    return [found[u] for u in sort_units(frozenset(found))]


def explain(unit: str, old: UnitTree | None, new: UnitTree | None) -> str:
    """What changed in a unit between the two systems, in a few words."""
    if old is None or new is None:
        return "its definition changed"
    if not new.exists(unit):
        return "it is not in the new configuration"
    if new.masked(unit):
        return "the new configuration masks it"
    if not old.exists(unit):
        return "it is new or generated"
    try:
        a, b = old.parse(unit, unit), new.parse(unit, unit)
    except InputError:
        return "its unit file changed"
    changed = sorted(
        f"[{section}] {key}"
        for section in set(a) | set(b)
        for key in set(a.get(section, {})) | set(b.get(section, {}))
        if a.get(section, {}).get(key) != b.get(section, {}).get(key)
    )
    if not changed:
        return "it goes with a unit that changes (its socket or service)"
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return f"{shown} changed"
