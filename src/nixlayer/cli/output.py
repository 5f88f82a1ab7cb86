"""Human and machine output. Machine output goes to stdout; everything else to stderr."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from nixlayer.nix.progress import BuildProgress
    from nixlayer.nix.runner import ProgressCallback


# While a live status line is shown, other stderr output goes through its console
# so the two do not overwrite each other.
class _LiveConsole:
    console: Console | None = None


_live_state = _LiveConsole()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def emit(self, record: logging.LogRecord) -> None:
        live = _live_state.console
        if live is not None:
            live.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        else:
            super().emit(record)


class _JsonState:
    """What the one `--json` envelope needs: the command, warnings seen, whether it was printed."""

    enabled = False
    command = ""
    warnings: list[str]
    emitted = False

    def __init__(self) -> None:
        self.warnings = []


_json = _JsonState()


class _WarningCollector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if _json.enabled and record.levelno >= logging.WARNING:
            _json.warnings.append(record.getMessage())


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"nixlayer: warning: {msg}"
        return msg


def setup_logging(verbose: int, quiet: bool) -> None:
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    root = logging.getLogger("nixlayer")
    root.handlers[:] = [handler, _WarningCollector()]
    root.propagate = False
    # Default: the nix commands we run (pasteable) and warnings; -q: warnings only.
    root.setLevel(logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO))


def start_json(command: str, enabled: bool) -> None:
    _json.enabled = enabled
    _json.command = command
    _json.warnings = []
    _json.emitted = False


def json_enabled() -> bool:
    return _json.enabled


def emit_json(data: Any, *, exit_code: int = 0, message: str | None = None) -> None:
    """Print the envelope with the command's `data` (under `--json`; else the bare data).

    A command that produced data but still fails (a fleet with a broken VM) passes its
    non-zero `exit_code` and a one-line `message`.
    """
    if not _json.enabled:
        _write(data)
        return
    error = None if exit_code == 0 else {"kind": "failure", "message": message or "failed"}
    _write_envelope(data, exit_code, error)


def emit_failure(exit_code: int, error: dict[str, Any], *, result: Any = None) -> None:
    """The envelope for a command that raised before printing its result (`result`: what
    the failure itself carries, e.g. the units a guard refused)."""
    if _json.enabled and not _json.emitted:
        _write_envelope(result, exit_code, error)


def _write_envelope(data: Any, exit_code: int, error: dict[str, Any] | None) -> None:
    _json.emitted = True
    _write(
        {
            "version": 1,
            "command": _json.command,
            "ok": exit_code == 0,
            "exit_code": exit_code,
            "result": data,
            "error": error,
            "warnings": list(_json.warnings),
        }
    )


def _write(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def info(text: str) -> None:
    live = _live_state.console
    if live is not None:
        live.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    else:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")


def set_live_console(console: Console | None) -> None:
    """Route log lines through `console` while it shows a live status (None: stop)."""
    _live_state.console = console


def error(text: str) -> None:
    sys.stderr.write(f"nixlayer: error: {text}\n")


@contextmanager
def build_progress(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A live one-line status on a terminal; nothing (and no rich import) elsewhere."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("nix: evaluating") as status:

        def update(state: BuildProgress) -> None:
            status.update(f"nix: {state.summary()}")

        _live_state.console = console
        try:
            yield update
        finally:
            _live_state.console = None
