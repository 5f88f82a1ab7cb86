"""`plan_switch`: the planner's Python API."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from nixlayer.planner.engine import Planner
from nixlayer.planner.inhibitors import plan_inhibitors
from nixlayer.planner.inputs import load_inputs, parse_action
from nixlayer.planner.model import SwitchPlan
from nixlayer.planner.snapshot import ActiveUnit
from nixlayer.planner.users import UserInputs, plan_user


def plan_switch(
    to_root: Path | str,
    *,
    from_root: Path | str = "/",
    action: str = "switch",
    units_file: Path | str | None = None,
    snapshot: dict[str, ActiveUnit] | None = None,
    runtime_dir: Path | str = "/run",
    users: Sequence[UserInputs] = (),
) -> SwitchPlan:
    """What `<to_root>/bin/switch-to-configuration <action>` would do on `from_root`.

    Needs no root and touches no systemd state (given `units_file` or `snapshot`).
    `users` are the logged-in users whose user units are planned (switch and test).
    """
    checked = parse_action(action)
    to_path, from_path = Path(to_root), Path(from_root)
    user_plans = tuple(
        plan_user(u, old_root=from_path, new_root=to_path, action=checked)
        for u in users
        if checked in ("switch", "test")
    )
    inputs = load_inputs(
        to_root=to_path,
        from_root=from_path,
        action=checked,
        units_file=Path(units_file) if units_file is not None else None,
        snapshot=snapshot,
        runtime_dir=Path(runtime_dir),
        users=user_plans,
    )
    plan = Planner(inputs).run()
    return dataclasses.replace(plan, inhibitors=plan_inhibitors(from_path, to_path, checked))
