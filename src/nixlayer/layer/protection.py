"""Which units a job's switch must not disturb: rules from the defaults, the systems,
`--protect`, our own unit, less `--allow-restart`; unit names read as systemctl reads them."""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from nixlayer.errors import InputError
from nixlayer.planner.fstab import escape_path

log = logging.getLogger("nixlayer")

PUBLISHED = "etc/nixlayer/protected-units.json"
UNIT_TYPES = (
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
)
GLOB_CHARS = frozenset("*?[")
Family = Literal["systemd", "launchd"]


@cache
def default_units(family: Family) -> tuple[str, ...]:
    """The defaults, from the one list nixlib's modules read too (protected-units.json)."""
    # Beside the package's modules (no importlib.resources: ~7 ms of start-up on every switch).
    data = json.loads((Path(__file__).parent.parent / "data/protected-units.json").read_text())
    return tuple(str(u) for u in data[family])


def normalize_unit(name: str, family: Family = "systemd") -> str:
    """A unit name as `systemctl` mangles it: no type suffix means `.service`; an absolute
    path names its `.mount` (or `.device` under /dev); globs are kept as they are.
    launchd labels are left alone."""
    name = name.strip()
    if family == "launchd" or GLOB_CHARS & set(name):
        return name
    if name.startswith("/dev/"):
        return f"{escape_path(name)}.device"
    if name.startswith("/"):
        return f"{escape_path(name)}.mount"
    stem, dot, suffix = name.rpartition(".")
    if dot and stem and suffix in UNIT_TYPES:
        return name
    return f"{name}.service"


@dataclass(frozen=True)
class Rule:
    pattern: str  # normalized: a name, a glob, or a template (foo@.service)
    origin: str  # "default", "--protect", "published by the running system", ...

    def matches(self, unit: str) -> bool:
        if GLOB_CHARS & set(self.pattern):
            return fnmatch.fnmatchcase(unit, self.pattern)
        if unit == self.pattern:
            return True
        prefix, at, suffix = self.pattern.partition("@")
        # A template (foo@.service) covers its instances (foo@x.service).
        return (
            bool(at)
            and suffix.startswith(".")
            and unit.startswith(f"{prefix}@")
            and (unit.endswith(suffix))
        )

    def describe(self) -> str:
        return f"{self.pattern} ({self.origin})"


@dataclass(frozen=True)
class Protection:
    rules: tuple[Rule, ...]
    allowed: tuple[Rule, ...]

    def rule_for(self, unit: str) -> Rule | None:
        """The rule protecting `unit`, or None (unprotected, or allowed)."""
        if any(a.matches(unit) for a in self.allowed):
            return None
        return next((r for r in self.rules if r.matches(unit)), None)

    def patterns(self) -> list[str]:
        return sorted({r.pattern for r in self.rules})


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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    units = data.get("units", []) if isinstance(data, dict) else []
    return [str(u) for u in units if isinstance(u, str)]


def build_protection(
    *,
    family: Family,
    systems: Iterable[tuple[str, Path]],
    protect: Iterable[str],
    allow_restart: Iterable[str],
    known_units: Iterable[str],
) -> Protection:
    """The rules, with every name normalized. A --protect name matching no unit of either
    system is a warning (it may appear later); an --allow-restart one is an error (exit 2),
    since a typo there would silently keep the refusal it was meant to lift."""
    known = frozenset(known_units)
    rules = [Rule(normalize_unit(u, family), "default") for u in default_units(family)]
    for label, root in systems:
        rules += [Rule(normalize_unit(u, family), f"published by {label}") for u in published(root)]
    rules += [Rule(normalize_unit(u, family), "--protect") for u in protect]
    rules += [Rule(u, "the unit running this command") for u in own_units()]
    for rule in rules:
        if rule.origin == "--protect" and not any(rule.matches(u) for u in known):
            log.warning("--protect %s matches no unit in either system", rule.pattern)
    allowed = tuple(Rule(normalize_unit(u, family), "--allow-restart") for u in allow_restart)
    for rule in allowed:
        if not any(rule.matches(u) for u in known):
            raise InputError(
                "--allow-restart", f"{rule.pattern!r} matches no unit in either system"
            )
    for unit in sorted(known):
        protecting = next((r for r in rules if r.matches(unit)), None)
        if protecting and any(a.matches(unit) for a in allowed):
            log.warning(
                "allowing %s to be stopped or restarted (--allow-restart; protected by %s)",
                unit,
                protecting.describe(),
            )
    return Protection(rules=tuple(rules), allowed=allowed)
