"""`nixlayer switch`: build the job's layer over the runner's base, plan the
switch, refuse it if a protected unit would bounce, else activate (with rollback).
`nixlayer prepare`: only point the job's lock at the runner's base."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nixlayer.errors import GuardRefusedError, InputError
from nixlayer.layer.activate import PROFILES, activate
from nixlayer.layer.base import BaseRef, resolve_base
from nixlayer.layer.guard import Violation, protected_units, violations
from nixlayer.layer.job import KINDS, configuration_name, installable, open_job
from nixlayer.nix import commands
from nixlayer.nix.nixjson import build as build_json
from nixlayer.nix.runner import Nix, ProgressCallback
from nixlayer.planner.model import SwitchPlan
from nixlayer.planner.others import plan_darwin, plan_system_manager, unit_tree_or_none
from nixlayer.planner.plan import plan_switch

ACTIONS = ("switch", "test", "boot", "dry-activate")
CURRENT = {
    "nixos": Path("/run/current-system"),
    "darwin": Path("/run/current-system"),
    "system-manager": PROFILES["system-manager"],
}


@dataclass(frozen=True)
class SwitchResult:
    kind: str
    configuration: str
    base: str
    toplevel: str
    plan: SwitchPlan
    protected: list[str]
    activated: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def detect_kind() -> str:
    if sys.platform == "darwin":
        return "darwin"
    return "nixos" if Path("/etc/NIXOS").exists() else "system-manager"


def build_layer(
    flake_dir: Path | str,
    *,
    base: str | None,
    kind: str,
    name: str | None,
    nix: Nix,
    progress: ProgressCallback | None = None,
) -> tuple[BaseRef, str, str]:
    if kind not in KINDS:
        raise InputError("--kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    base_ref = resolve_base(base)
    job = open_job(flake_dir, nix)
    config = configuration_name(job, base_ref, kind, name, nix)
    argv = commands.build(
        installable(job, kind, config),
        out_link=None,
        progress_json=bool(progress),
        extra=[*commands.override_input("base", base_ref.ref), "--no-write-lock-file"],
    )
    out = nix.run(argv, progress=progress).stdout
    return base_ref, config, build_json.out_path(out)


def plan_for(
    kind: str,
    *,
    toplevel: Path,
    current: Path,
    action: str,
    units_file: Path | None,
    runtime_dir: Path,
) -> SwitchPlan:
    if kind == "nixos":
        stc_action = "switch" if action == "boot" else action
        return plan_switch(
            toplevel,
            from_root=current,
            action=stc_action,
            units_file=units_file,
            runtime_dir=runtime_dir,
        )
    if kind == "system-manager":
        return plan_system_manager(current, toplevel)
    return plan_darwin(current, toplevel)


def refusal(found: Sequence[Violation]) -> GuardRefusedError:
    lines = "\n".join(f"  {v.line()}" for v in found)
    return GuardRefusedError(
        f"refusing to switch: {len(found)} protected unit(s) would be disturbed:\n{lines}\n"
        "Nothing was activated. Keep the job from changing these units, or pass "
        "--allow-restart UNIT to accept it."
    )


def switch(
    flake_dir: Path | str = ".",
    *,
    base: str | None = None,
    action: str = "switch",
    kind: str | None = None,
    name: str | None = None,
    protect: Sequence[str] = (),
    allow_restart: Sequence[str] = (),
    current: Path | str | None = None,
    units_file: Path | str | None = None,
    runtime_dir: Path | str = "/run",
    profile: Path | str | None = None,
    nix: Nix | None = None,
    progress: ProgressCallback | None = None,
) -> SwitchResult:
    if action not in ACTIONS:
        raise InputError("--action", f"{action!r} is not one of {', '.join(ACTIONS)}")
    nix = nix or Nix()
    kind = kind or detect_kind()
    base_ref, config, toplevel = build_layer(
        flake_dir, base=base, kind=kind, name=name, nix=nix, progress=progress
    )
    cur = Path(current) if current else CURRENT[kind]
    plan = plan_for(
        kind,
        toplevel=Path(toplevel),
        current=cur,
        action=action,
        units_file=Path(units_file) if units_file else None,
        runtime_dir=Path(runtime_dir),
    )
    protected = protected_units([cur, Path(toplevel)], protect, allow_restart)
    if action != "boot":  # boot bounces nothing now
        found = violations(
            plan, protected, unit_tree_or_none(cur), unit_tree_or_none(Path(toplevel))
        )
        if found:
            raise refusal(found)
    activated = False
    if not (action == "dry-activate" and kind != "nixos"):
        activate(
            kind,
            Path(toplevel),
            action,
            previous=cur if cur.exists() else None,
            profile=Path(profile) if profile else None,
            nix=nix,
        )
        activated = action != "dry-activate"
    return SwitchResult(
        kind=kind,
        configuration=config,
        base=base_ref.ref,
        toplevel=toplevel,
        plan=plan,
        protected=sorted(protected),
        activated=activated,
    )


def prepare(
    flake_dir: Path | str = ".", *, base: str | None = None, nix: Nix | None = None
) -> dict[str, str]:
    """Rewrite only the job lock's `base` entry, so that a plain
    `nixos-rebuild switch --flake .` (or darwin-rebuild) builds over this runner's base."""
    nix = nix or Nix()
    base_ref = resolve_base(base)
    job = open_job(flake_dir, nix)
    nix.run(commands.flake_lock_override(job.ref, "base", base_ref.ref))
    lock = job.directory / "flake.lock"
    if job.flake_dir != job.directory:
        shutil.copyfile(job.flake_dir / "flake.lock", lock)
    return {"lock_file": str(lock), "base": base_ref.ref, "origin": base_ref.origin}
