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
    root.handlers[:] = [handler]
    root.propagate = False
    # Default: the nix commands we run (pasteable) and warnings; -q: warnings only.
    root.setLevel(logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO))


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def info(text: str) -> None:
    live = _live_state.console
    if live is not None:
        live.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    else:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")


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
