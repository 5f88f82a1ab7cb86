"""Activate a built system; read the outcome as switch-to-configuration means it; roll back
to the exact generation recorded before, only when that is what the outcome calls for.

NixOS: `<toplevel>/bin/switch-to-configuration ACTION`, with the system profile set first
for switch and boot (as nixos-rebuild does). system-manager: its `bin/register-profile` and
`bin/activate`. nix-darwin: `<system>/activate`. Steps run through a `StepRunner`
(a transient systemd unit where systemd runs, see transient.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nixlayer.layer.failures import ActivationError, PreSwitchCheckError
from nixlayer.layer.kinds import Kind
from nixlayer.layer.outcome import Outcome, StepResult, check_reason, classify, failed_units
from nixlayer.layer.state import Generation, Pending, generation
from nixlayer.layer.transient import StepRunner
from nixlayer.nix import commands
from nixlayer.nix.runner import Nix
from nixlayer.planner.model import Action

log = logging.getLogger("nixlayer")


def activation_steps(
    kind: Kind, toplevel: Path, action: Action, *, register: bool = True
) -> list[list[str]]:
    """The commands that activate `toplevel` for `action` (pure)."""
    if kind == "nixos":
        return [[str(toplevel / "bin/switch-to-configuration"), action]]
    if kind == "system-manager":
        steps = []
        if register and action in ("switch", "boot"):
            steps.append([str(toplevel / "bin/register-profile")])
        if action in ("switch", "test"):
            steps.append([str(toplevel / "bin/activate")])
        return steps
    return [[str(toplevel / "activate")]] if action in ("switch", "test") else []


def sets_profile(kind: Kind, action: Action) -> bool:
    """nixlayer sets the profile itself (system-manager's register-profile does its own)."""
    return kind in ("nixos", "darwin") and action in ("switch", "boot")


def changes_profile(kind: Kind, action: Action) -> bool:
    return action in ("switch", "boot")


def is_running(current: Path, toplevel: Path) -> bool:
    return os.path.realpath(current) == os.path.realpath(toplevel)


@dataclass
class ActivationResult:
    outcome: Outcome
    activated: bool
    failed_units: list[str] = field(default_factory=list)
    reboot_needed: bool = False
    transient_units: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "activated": self.activated,
            "failed_units": self.failed_units,
            "reboot_needed": self.reboot_needed,
            "transient_units": self.transient_units,
        }


@dataclass
class Activation:
    """One activation of `toplevel` over the running system `current`."""

    kind: Kind
    toplevel: Path
    action: Action
    current: Path
    profile: Path
    runner: StepRunner
    nix: Nix
    record: Callable[[Pending | None], None] = lambda _pending: None

    def run(self) -> ActivationResult:
        previous = os.path.realpath(self.current) if self.current.exists() else None
        before = generation(self.profile) if changes_profile(self.kind, self.action) else None
        pending = Pending(str(self.toplevel), self.action, before)
        self.record(pending)

        def started(unit: str) -> None:
            # Recorded before it starts: a later run waits for it rather than race it.
            nonlocal pending
            pending = replace(pending, units=(*pending.units, unit))
            self.record(pending)

        self.runner.on_start = started
        # Only when it differs: `nix-env --set` would add a generation even for the path
        # the profile already points at (after restore put it back on an older one).
        if sets_profile(self.kind, self.action) and not is_running(self.profile, self.toplevel):
            self.nix.run(commands.profile_set(self.profile, str(self.toplevel)), tool="nix-env")
        steps = activation_steps(self.kind, self.toplevel, self.action)
        for i, step in enumerate(steps):
            outcome, result = self._step(step, last=i == len(steps) - 1)
            if outcome is Outcome.OK:
                continue
            return self._finish(outcome, result, before, previous)
        self.record(None)
        return self._result(Outcome.OK)

    def _result(self, outcome: Outcome, **extra: Any) -> ActivationResult:
        activated = self.action in ("switch", "test") and outcome in (
            Outcome.OK,
            Outcome.UNITS_FAILED,
        )
        return ActivationResult(
            outcome, activated, transient_units=list(self.runner.units), **extra
        )

    def _step(self, step: list[str], *, last: bool) -> tuple[Outcome, StepResult]:
        result = self.runner.run(step)
        outcome = classify(self.kind, result)
        for attempt in (1, 2):
            if outcome is not Outcome.UNKNOWN:
                break
            # systemd-run failed, or lost the unit: the switch may have happened anyway.
            if (
                last
                and self.action in ("switch", "test")
                and is_running(self.current, self.toplevel)
            ):
                log.warning(
                    "could not follow %s (exit %d), but the running system is %s: switched",
                    step[0],
                    result.code,
                    self.toplevel,
                )
                return Outcome.OK, result
            if attempt == 2:
                return Outcome.FAILED, result
            log.warning("could not run %s (exit %d); trying once more", step[0], result.code)
            result = self.runner.run(step)
            outcome = classify(self.kind, result)
        return outcome, result

    def _finish(
        self, outcome: Outcome, result: StepResult, before: Generation | None, previous: str | None
    ) -> ActivationResult:
        if outcome is Outcome.UNITS_FAILED:
            self.record(None)
            units = failed_units(result.output)
            log.warning(
                "switched to %s, but some units failed: %s (nothing rolled back: the new "
                "system is running, and rolling back would restart everything again)",
                self.toplevel,
                ", ".join(units) or "see the output above",
            )
            return self._result(outcome, failed_units=units)
        if outcome is Outcome.REBOOT_NEEDED:
            self.record(None)
            log.warning("%s changes the init interface: reboot to use it", self.toplevel)
            return self._result(outcome, reboot_needed=True)
        if outcome is Outcome.CHECK_FAILED:
            back = self._restore_profile(before)
            self.record(None)
            reason = check_reason(result.output)
            raise PreSwitchCheckError(
                f"refusing to switch: switch-to-configuration's {reason}. Nothing was "
                f"activated{back}.",
                {"outcome": outcome.value, "reason": reason, "activated": False},
            )
        back = self._restore_profile(before)
        rolled = self._reactivate(previous)
        self.record(None)
        where = f"; rolled back to {rolled}" if rolled else "; nothing to roll back to"
        raise ActivationError(
            f"activation failed: {result.argv[0]} exited with {result.code}{back}{where}",
            {
                "outcome": outcome.value,
                "exit_code": result.code,
                "rolled_back_to": rolled,
                "profile_generation": before.number if before else None,
                "transient_units": list(self.runner.units),
            },
        )

    def _restore_profile(self, before: Generation | None) -> str:
        if before is None:
            return ""
        return restore_profile(before, self.nix)

    def _reactivate(self, previous: str | None) -> str | None:
        if previous is None or previous == os.path.realpath(self.toplevel):
            return None
        log.warning("activation failed; rolling back to %s", previous)
        for step in activation_steps(self.kind, Path(previous), self.action, register=False):
            if self.runner.run(step).code != 0:
                log.error("rolling back failed too: %s", step[0])
                break
        return previous


def restore_profile(before: Generation, nix: Nix) -> str:
    """Point the profile at exactly the generation recorded before (never `--rollback`,
    which goes one too far when the new system already was the current generation)."""
    profile = Path(before.profile)
    now = generation(profile)
    if now.number == before.number and now.target == before.target:
        return ""
    if before.number is not None:
        nix.run(commands.profile_switch_generation(profile, before.number), tool="nix-env")
        if generation(profile).target == before.target:
            return f"; the profile is back at generation {before.number}"
    if before.target is not None:
        nix.run(commands.profile_set(profile, before.target), tool="nix-env")
        return f"; the profile points at {before.target} again"
    log.warning("%s did not exist before; it now points at the new system", profile)
    return ""
