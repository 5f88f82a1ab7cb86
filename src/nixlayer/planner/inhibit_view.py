"""The switch-inhibitor verdict, as NixOS's pre-switch check `switchInhibitors` gives
it (nixos/modules/system/activation/switchable-system.nix in nixpkgs; introduced by
NixOS/nixpkgs#473282, keyed by name since #477800, fixed by #510514):

- each system may have `$toplevel/switch-inhibitors`, a JSON object name -> value
  (usually a store path);
- `switch` and `test` are refused when a name present in both systems has a different
  value; names only on one side do not count;
- `dry-activate` and `boot` skip the check, and so does a missing file on either side
  (first activation, or a system without inhibitors); NIXOS_NO_CHECK=1 skips all
  pre-switch checks;
- a file that is not a JSON object fails the check loudly (here: bad input, exit 2).

A local view for the planner until the switch helper's planner/inhibitors.py lands;
the integrator replaces this module with that one.
"""

from __future__ import annotations

import json
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.planner.model import Action, InhibitorChange, InhibitorVerdict
from nixlayer.planner.snapshot import read_json_file

INHIBITORS_FILE = "switch-inhibitors"
CURRENT_SYSTEM = Path("/run/current-system")


def read_inhibitors(toplevel: Path) -> dict[str, str] | None:
    """The inhibitors of a system, or None when it has no inhibitors file."""
    path = toplevel / INHIBITORS_FILE
    if not path.exists():
        return None
    data = read_json_file(path, str(path))
    if not isinstance(data, dict):
        raise InputError(str(path), "expected a JSON object of inhibitor name -> value")
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in data.items()
    }


def inhibitor_verdict(old_root: Path, new_root: Path, action: Action) -> InhibitorVerdict:
    if action in ("dry-activate", "boot"):
        return InhibitorVerdict(False, False, [], f"{action} skips the switch-inhibitor check")
    current = CURRENT_SYSTEM if old_root == Path("/") else old_root
    old, new = read_inhibitors(current), read_inhibitors(new_root)
    if old is None or new is None:
        side = "the running" if old is None else "the new"
        return InhibitorVerdict(False, False, [], f"{side} system has no {INHIBITORS_FILE}")
    changed = [
        InhibitorChange(name, old[name], new[name])
        for name in sorted(set(old) & set(new))
        if old[name] != new[name]
    ]
    if changed:
        names = ", ".join(c.name for c in changed)
        note = (
            f"refused: switch inhibitors changed ({names}); reboot into the new system "
            "(switch-to-configuration boot) or set NIXOS_NO_CHECK=1 to switch anyway"
        )
        return InhibitorVerdict(True, True, changed, note)
    return InhibitorVerdict(True, False, [], "no switch inhibitor changed")
