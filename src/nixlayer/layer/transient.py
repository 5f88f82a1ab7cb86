"""Run an activation step so that it outlives nixlayer: in a transient systemd unit.

A cancelled CI job, a dropped SSH connection or a killed shell must not stop
switch-to-configuration halfway (nixpkgs #39118). Like nixos-rebuild-ng, the step runs
under `systemd-run --service-type=exec --collect`, as a service of pid 1. Unlike
nixos-rebuild-ng it does not use `--pipe`: a piped unit writes into the caller's pipe, and
once the caller is gone every write fails (switch-to-configuration-ng aborts on a failed
write to stderr). The unit writes to a log file that nixlayer follows instead, and
`--wait` hands back its exit status.
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nixlayer.errors import InputError, NixlayerError
from nixlayer.layer.outcome import StepResult

log = logging.getLogger("nixlayer")

# Passed through to the unit from our environment (as nixos-rebuild-ng does).
PASSED_ENV = ("LOCALE_ARCHIVE", "NIXOS_INSTALL_BOOTLOADER", "NIXOS_NO_CHECK")
UNIT_PREFIX = "nixlayer-activate"


def systemd_run_binary() -> str:
    return os.environ.get("NIXLAYER_SYSTEMD_RUN", "systemd-run")


def systemctl_binary() -> str:
    return os.environ.get("NIXLAYER_SYSTEMCTL", "systemctl")


def systemd_running() -> bool:
    """sd_booted(): systemd is pid 1 here."""
    return Path("/run/systemd/system").is_dir()


def transient_argv(
    systemd_run: str, unit: str, log_file: Path, command: Sequence[str]
) -> list[str]:
    """The systemd-run command line for one step (pure)."""
    env = [arg for name in PASSED_ENV for arg in ("-E", name)]
    return [
        systemd_run,
        *env,
        "--collect",
        "--no-ask-password",
        "--quiet",
        "--wait",
        "--service-type=exec",
        f"--unit={unit}",
        f"--property=StandardOutput=append:{log_file}",
        f"--property=StandardError=append:{log_file}",
        *command,
    ]


@dataclass
class StepRunner:
    """Runs steps directly or in transient units (`transient`), logging their output."""

    transient: bool
    log_dir: Path
    units: list[str] = field(default_factory=list)  # every unit started, in order
    on_start: Callable[[str], None] | None = None  # told each unit's name before it starts

    def run(self, argv: Sequence[str]) -> StepResult:
        if not self.transient:
            return _run_direct(argv)
        return self._run_transient(argv)

    def _run_transient(self, argv: Sequence[str]) -> StepResult:
        unit = f"{UNIT_PREFIX}-{secrets.token_hex(4)}.service"
        log_file = _new_log(self.log_dir, unit)
        full = transient_argv(systemd_run_binary(), unit, log_file, argv)
        self.units.append(unit)
        if self.on_start:
            self.on_start(unit)
        log.info("$ %s", shlex.join(full))
        try:
            proc = subprocess.Popen(
                full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except FileNotFoundError:
            raise InputError(
                "--transient",
                f"{full[0]} not found: pass --no-transient to activate without systemd-run",
            ) from None
        own: list[bytes] = []
        reader = threading.Thread(target=lambda: own.extend(proc.stdout or ()), daemon=True)
        reader.start()
        lines = _follow(log_file, proc)
        reader.join()
        code = proc.wait()
        for raw in own:  # systemd-run's own messages (it could not start the unit, ...)
            log.info("  systemd-run: %s", raw.decode(errors="replace").rstrip())
        # A unit that ran wrote at least one line; systemd-run failing to start it did not.
        ran = bool(lines) or code == 0
        return StepResult(tuple(argv), code, tuple(lines), ran=ran)


def _new_log(log_dir: Path, unit: str) -> Path:
    log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = log_dir / f"{unit}.log"
    # Created by us, never through a planted symlink: the unit appends to exactly this file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    return path


def _follow(path: Path, proc: subprocess.Popen[bytes]) -> list[str]:
    """Log the unit's lines as they come, until systemd-run returns."""
    lines: list[str] = []
    pending = b""
    with open(path, "rb") as fh:
        while True:
            done = proc.poll() is not None
            chunk = fh.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    text = raw.decode(errors="replace")
                    lines.append(text)
                    log.info("  %s", text)
            elif done:
                break
            else:
                time.sleep(0.05)
    if pending:
        text = pending.decode(errors="replace")
        lines.append(text)
        log.info("  %s", text)
    return lines


def _run_direct(argv: Sequence[str]) -> StepResult:
    """A child of nixlayer (no systemd, or --no-transient): it dies with us."""
    log.info("$ %s", shlex.join(argv))
    env = {
        **os.environ,
        "NIXOS_INSTALL_BOOTLOADER": os.environ.get("NIXOS_INSTALL_BOOTLOADER", "0"),
    }
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
    except OSError as exc:
        raise NixlayerError(f"cannot run {argv[0]}: {exc.strerror}") from exc
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            log.info("  %s", lines[-1])
        code = proc.wait()
    return StepResult(tuple(argv), code, tuple(lines))


def wait_for_unit(unit: str, timeout: float = 900.0) -> None:
    """Wait while a unit from an interrupted run is still active (if systemctl is here)."""
    systemctl = systemctl_binary()
    if shutil.which(systemctl) is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [systemctl, "is-active", "--quiet", unit], capture_output=True, check=False
        )
        if proc.returncode != 0:
            return
        log.info("waiting for %s (an interrupted activation) to finish", unit)
        time.sleep(1.0)
    raise NixlayerError(f"{unit} is still running after {timeout:.0f} s; try again later")
