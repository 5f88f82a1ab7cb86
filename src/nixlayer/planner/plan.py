"""`plan_switch`: the planner's Python API."""

from __future__ import annotations

from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.planner.engine import Planner
from nixlayer.planner.inputs import load_inputs
from nixlayer.planner.model import SwitchPlan
from nixlayer.planner.snapshot import ActiveUnit
from nixlayer.planner.unitfile import UnitFileError


def plan_switch(
    to_root: Path | str,
    *,
    from_root: Path | str = "/",
    action: str = "switch",
    units_file: Path | str | None = None,
    snapshot: dict[str, ActiveUnit] | None = None,
    runtime_dir: Path | str = "/run",
) -> SwitchPlan:
    """What `<to_root>/bin/switch-to-configuration <action>` would do on `from_root`.

    Needs no root and touches no systemd state (given `units_file` or `snapshot`).
    """
    inputs = load_inputs(
        to_root=Path(to_root),
        from_root=Path(from_root),
        action=action,
        units_file=Path(units_file) if units_file is not None else None,
        snapshot=snapshot,
        runtime_dir=Path(runtime_dir),
    )
    try:
        return Planner(inputs).run()
    except UnitFileError as exc:
        raise InputError("unit file", str(exc)) from exc
