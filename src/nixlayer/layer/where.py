"""Where switch and restore find the running system and keep their records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nixlayer.layer.kinds import KINDS, Kind
from nixlayer.layer.state import DEFAULT_STATE_DIR
from nixlayer.layer.transient import StepRunner, systemd_running


@dataclass(frozen=True)
class Where:
    """The running system and where activation records go (defaults: the real ones)."""

    current: Path | None = None
    units_file: Path | None = None
    runtime_dir: Path = Path("/run")
    profile: Path | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    transient: bool | None = None  # None: when systemd runs here

    def current_for(self, kind: Kind) -> Path:
        return self.current or KINDS[kind].current

    def profile_for(self, kind: Kind) -> Path:
        return self.profile or KINDS[kind].profile

    def runner(self, kind: Kind) -> StepRunner:
        transient = self.transient
        if transient is None:
            transient = KINDS[kind].systemd and systemd_running()
        # Absolute: systemd opens the unit's log by this path.
        return StepRunner(transient=transient, log_dir=self.state_dir.absolute() / "activations")
