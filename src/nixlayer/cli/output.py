"""Human and machine output. Machine output goes to stdout; everything else to stderr.

Under `--json` stdout carries exactly one envelope: handlers hand their data to
`emit_json`, and `cli/main.py` writes the envelope once the handler returned or
raised (`finish_json`), with the exit code the command really ends with.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console


class ProgressState(Protocol):
    """What a long operation reports: anything that can say where it is in one line
    (nix's `BuildProgress`, a fleet's or a seed's counters)."""

    def summary(self) -> str: ...


# A capability's progress callback takes a ProgressState or a plain line of text.
Progress = Callable[[Any], None]


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
    """What the one `--json` envelope needs: the command, its data, warnings seen."""

    enabled = False
    command = ""
    warnings: list[str]
    emitted = False
    result: Any = None
    message: str | None = None
    stdout: IO[str] | None = None

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


class _Quiet:
    quiet = False


_quiet = _Quiet()


def setup_logging(verbose: int, quiet: bool) -> None:
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    root = logging.getLogger("nixlayer")
    root.handlers[:] = [handler, _WarningCollector()]
    root.propagate = False
    _quiet.quiet = quiet
    # Default: the nix commands we run (pasteable) and warnings; -q: warnings only.
    root.setLevel(logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO))


def start_json(command: str, enabled: bool, stdout: IO[str] | None = None) -> None:
    _json.enabled = enabled
    _json.command = command
    _json.warnings = []
    _json.emitted = False
    _json.result = None
    _json.message = None
    _json.stdout = stdout


def json_enabled() -> bool:
    return _json.enabled


def emit_json(data: Any, *, exit_code: int = 0, message: str | None = None) -> None:
    """The command's data: the envelope's `result` under `--json`, else printed bare.

    A command that produced data but still fails (a fleet with a broken VM) returns
    its non-zero exit code and passes a one-line `message` here for the envelope.
    """
    if not _json.enabled:
        _write(data)
        return
    _json.result = data
    _json.message = message


def finish_json(exit_code: int, error: dict[str, Any] | None = None) -> None:
    """Write the one envelope (once): the data `emit_json` got and how the command ended."""
    if not _json.enabled or _json.emitted:
        return
    if error is None and exit_code != 0:
        error = {"kind": "failure", "message": _json.message or f"exit status {exit_code}"}
    _json.emitted = True
    _write(
        {
            "version": 1,
            "command": _json.command,
            "ok": exit_code == 0,
            "exit_code": exit_code,
            "result": _json.result,
            "error": error,
            "warnings": list(_json.warnings),
        }
    )


def _write(data: Any) -> None:
    out = _json.stdout or sys.stdout
    # ensure_ascii keeps the output valid UTF-8 whatever a path holds (lone surrogates
    # from non-UTF-8 file names come out as \udcXX escapes, not as an encoding error).
    out.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True) + "\n")
    out.flush()


def info(text: str) -> None:
    live = _live_state.console
    if live is not None:
        live.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    else:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")


def set_live_console(console: Console | None) -> None:
    """Route log lines through `console` while it shows a live status (None: stop)."""
    _live_state.console = console


def one_line(text: str) -> str:
    """Newlines become spaces; other control characters (CR, ESC, ...) are shown
    escaped, so a hostile value can neither split the line nor drive the terminal."""
    text = " ".join(text.split("\n")).rstrip()
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def error(text: str) -> None:
    """One line on stderr: newlines inside `text` would make it several."""
    flat = one_line(text)
    sys.stderr.write(f"nixlayer: error: {flat}\n")
    sys.stderr.flush()


def progress_enabled(args: Any) -> bool:
    """A progress display is for a person: not under --json or -q, only on a terminal."""
    return not getattr(args, "json", False) and not getattr(args, "quiet", False)


@contextmanager
def progress(enabled: bool, title: str = "working") -> Iterator[Progress | None]:
    """The one live status line for every long operation (build, fleet, seed, switch).

    Yields a callback taking a `ProgressState` (anything with `summary()`) or a line of
    text, or None when nothing is shown (not a terminal, --json, -q): capabilities then
    skip the work of tracking progress at all.
    """
    if not enabled or _quiet.quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(f"{title}: starting") as status:

        def update(state: Any) -> None:
            line = state if isinstance(state, str) else state.summary()
            status.update(f"{title}: {line}")

        _live_state.console = console
        try:
            yield update
        finally:
            _live_state.console = None


def with_progress(fn: Callable[..., Any], update: Progress | None, /, **kwargs: Any) -> Any:
    """Call a capability's long operation, handing it the display's callback when it
    takes one (`progress=`), so every long operation reports through one display."""
    import inspect

    if update is not None and "progress" in inspect.signature(fn).parameters:
        kwargs["progress"] = update
    return fn(**kwargs)


@contextmanager
def build_progress(enabled: bool) -> Iterator[Progress | None]:
    """Nix builds' progress (the same display as every other long operation)."""
    with progress(enabled, "nix") as update:
        yield update
