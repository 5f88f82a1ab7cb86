"""What an activation's exit code and output mean.

switch-to-configuration (nixos/doc and its source; see docs/switch-to-configuration.md §10):
0 done; 1 with "Pre-switch check(s) … failed" = a pre-switch check refused, nothing was done;
1 otherwise (boot loader), 2 (activation script), 3 (Perl: daemon-reload) = failed;
4 = switched, but some units failed (the new system is running: rolling back would bounce
everything again); 100 = the init interface changed, a reboot is needed (the boot entry is
installed, nothing was activated). system-manager and nix-darwin: 0 or failed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from nixlayer.layer.kinds import Kind

_FAILED_UNITS = re.compile(r"^warning: the following units failed: (.*)$")
_FAILED_JOB = re.compile(r"^Failed to (?:start|stop|restart|reload) (\S+?)(?::.*)?$")
_CHECK = re.compile(r"^Pre-switch check '([^']+)' failed$")


class Outcome(Enum):
    OK = "ok"
    UNITS_FAILED = "units-failed"  # exit 4: keep the new system, report
    CHECK_FAILED = "check-failed"  # a pre-switch check refused: nothing done
    REBOOT_NEEDED = "reboot-needed"  # exit 100
    FAILED = "failed"  # roll back
    UNKNOWN = "unknown"  # the step never ran or its end was not seen (systemd-run failed)


@dataclass(frozen=True)
class StepResult:
    argv: tuple[str, ...]
    code: int
    output: tuple[str, ...]
    ran: bool = True  # False when the transient unit was never started


def classify(kind: Kind, result: StepResult) -> Outcome:
    if not result.ran:
        return Outcome.UNKNOWN
    if result.code == 0:
        return Outcome.OK
    if kind != "nixos":
        return Outcome.FAILED
    if result.code == 4:
        return Outcome.UNITS_FAILED
    if result.code == 100:
        return Outcome.REBOOT_NEEDED
    if result.code == 1 and any(line.startswith("Pre-switch check") for line in result.output):
        return Outcome.CHECK_FAILED
    return Outcome.FAILED


def failed_units(output: Sequence[str]) -> list[str]:
    """The units switch-to-configuration reported as failed (its summary line, else the
    `Failed to <job> <unit>` lines)."""
    found: list[str] = []
    for line in output:
        summary = _FAILED_UNITS.match(line.strip())
        if summary:
            found += [u.strip() for u in summary.group(1).split(",") if u.strip()]
    if not found:
        for line in output:
            job = _FAILED_JOB.match(line.strip())
            if job:
                found.append(job.group(1))
    return sorted(set(found))


def check_reason(output: Sequence[str]) -> str:
    """Why the pre-switch checks refused: the named checks and what they printed."""
    names = [m.group(1) for m in (_CHECK.match(ln.strip()) for ln in output) if m]
    detail = [
        ln.strip()
        for ln in output
        if ln.strip() and not ln.startswith("Pre-switch check") and "NIXOS_NO_CHECK" not in ln
    ]
    head = (
        f"pre-switch check {', '.join(repr(n) for n in names)} failed"
        if names
        else ("the pre-switch checks failed")
    )
    return f"{head}: {' / '.join(detail[-6:])}" if detail else head
