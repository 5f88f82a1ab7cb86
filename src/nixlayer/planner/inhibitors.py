"""Switch inhibitors: named values that must not change under a running system.

NixOS (nixpkgs PRs 473282, 477800, 510514) writes `system.switch.inhibitors`, an attribute
set of names to strings (usually store paths, e.g. systemd's and dbus's), as JSON to
`$toplevel/switch-inhibitors`. switch-to-configuration's pre-switch check compares the
running system's file with the new one's: a name present in both with a different value
refuses `switch` and `test` (exit 1, "Pre-switch checks failed"); names present on one side
only do not count. `boot` and `dry-activate` skip the check, and so does `NIXOS_NO_CHECK=1`.
A missing file means no inhibitors; a file that is not such a JSON object is an error
(nixpkgs fails loudly rather than treating it as empty).

API:
- `read_inhibitors(toplevel) -> dict[str, str]`: a system's inhibitors ({} without the file);
  raises `InputError` (field: the file) when it is malformed.
- `inhibitor_verdict(current, new) -> InhibitorDiff`: the names whose values differ.
- `plan_inhibitors(old_root, new_root, action) -> model.InhibitorVerdict`: the verdict a
  plan carries (checked or why not, refused or not, each changed name).
- `check_applies(action, environ) -> str | None`: why the check is skipped, or None when
  switch-to-configuration would run it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.planner.model import Action, InhibitorChange, InhibitorVerdict
from nixlayer.planner.snapshot import read_json_file

INHIBITORS_FILE = "switch-inhibitors"
UNCHECKED_ACTIONS = frozenset({"boot", "dry-activate"})


@dataclass(frozen=True)
class InhibitorDiff:
    """`differing`: name -> (current value, new value), for names in both systems."""

    differing: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def inhibited(self) -> bool:
        return bool(self.differing)

    @property
    def names(self) -> list[str]:
        return sorted(self.differing)

    def describe(self) -> str:
        return "; ".join(f"{n}: {a} -> {b}" for n, (a, b) in sorted(self.differing.items()))


def read_inhibitors(toplevel: Path) -> dict[str, str]:
    path = toplevel / INHIBITORS_FILE
    if not path.exists():
        return {}
    data = read_json_file(path, str(path))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(str(path), "expected a JSON object of names to strings")
    return {str(k): v for k, v in data.items()}


def inhibitor_verdict(current: Mapping[str, str], new: Mapping[str, str]) -> InhibitorDiff:
    return InhibitorDiff(
        {
            name: (current[name], new[name])
            for name in sorted(current)
            if name in new and current[name] != new[name]
        }
    )


def check_applies(action: str, environ: Mapping[str, str]) -> str | None:
    """None when switch-to-configuration runs the inhibitor check for `action`."""
    if action in UNCHECKED_ACTIONS:
        return f"{action} skips the switch-inhibitor check"
    if environ.get("NIXOS_NO_CHECK") == "1":
        return "NIXOS_NO_CHECK=1 skips the pre-switch checks"
    return None


CURRENT_SYSTEM = Path("/run/current-system")


def plan_inhibitors(old_root: Path, new_root: Path, action: Action) -> InhibitorVerdict:
    """The verdict `plan` reports; `old_root` "/" means the running system."""
    skipped = check_applies(action, {})
    if skipped:
        return InhibitorVerdict(False, False, [], skipped)
    current = CURRENT_SYSTEM if old_root == Path("/") else old_root
    for side, root in (("the running", current), ("the new", new_root)):
        if not (root / INHIBITORS_FILE).exists():
            return InhibitorVerdict(False, False, [], f"{side} system has no {INHIBITORS_FILE}")
    diff = inhibitor_verdict(read_inhibitors(current), read_inhibitors(new_root))
    if diff.inhibited:
        changed = [InhibitorChange(n, a, b) for n, (a, b) in sorted(diff.differing.items())]
        note = (
            f"refused: switch inhibitors changed ({', '.join(diff.names)}); reboot into the new "
            "system (switch-to-configuration boot) or set NIXOS_NO_CHECK=1 to switch anyway"
        )
        return InhibitorVerdict(True, True, changed, note)
    return InhibitorVerdict(True, False, [], "no switch inhibitor changed")
