"""Which VMs of a fleet may share one package set (`fleet build --share-pkgs`).

A NixOS system's `pkgs` is nixpkgs instantiated for its system with its overlays
and config. VMs that would instantiate it identically can take the first one's
instead (fleet_nix.py), so it is built once per group, not once per VM. Overlays
are functions: the evaluator cannot compare them. So the group is decided here,
from what render wrote down (the manifest) and what lock pinned (flake.lock):
VMs share when they agree on all of

- system and configuration name;
- the library: its ref and its locked pins (narHash, and those of its inputs:
  nixpkgs);
- the source overrides (package, attributes, and the locked source), which
  default.nix turns into an overlay;
- the library modules default.nix imports (profiles, test suites, the shares
  module), the only other place an overlay or `nixpkgs.config` can come from,
  and the gate options it sets for them (a spec's own catalog may gate another
  way; what a module's overlay does may depend on its gate).

What this cannot see: a library module that sets `nixpkgs.overlays` or
`nixpkgs.config` differently per VM from a per-VM value (host name, user,
shares). The evaluator's own check (same number of overlays, no
`nixpkgs.config`, no `nixpkgs.pkgs` of its own; fleet_nix.py) refuses the cases
it can see; the rest is why sharing is opt-in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING

from nixlayer.errors import NixlayerError
from nixlayer.nix.nixjson import flakelock

if TYPE_CHECKING:
    from nixlayer.closure.results import RenderResult


def pkgs_leaders(planned: Mapping[str, RenderResult]) -> dict[str, str]:
    """VM -> the VM whose package set it takes: the first of its group, in fleet
    order. The first of each group, and VMs that cannot be grouped (no lock yet, a
    manifest from before it named its modules), are not keys."""
    firsts: dict[str, str] = {}
    out: dict[str, str] = {}
    for name, r in planned.items():
        key = group_key(r)
        if key is None:
            continue
        first = firsts.setdefault(key, name)
        if first != name:
            out[name] = first
    return out


def group_key(r: RenderResult) -> str | None:
    """What must be equal for two VMs to share a package set (None: never shares)."""
    m = r.manifest
    if m is None or m.modules is None:
        return None
    try:
        lock = flakelock.read(r.config_dir / "flake.lock")
    except NixlayerError:
        return None
    if lock is None:
        return None
    facts = [
        m.system,
        m.configuration,
        m.library,
        m.library_input,
        list(m.modules),
        [asdict(o) for o in m.overrides],
        lock.shared(lock.root_inputs()),  # every pin: the library's, the overrides'
    ]
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
