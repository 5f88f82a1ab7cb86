"""The one progress display (cli/output.py): every long operation, hidden by -q and --json."""

from __future__ import annotations

import argparse
import io
from typing import Any

import pytest

from nixlayer.cli import output
from nixlayer.nix.progress import BuildProgress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_shown_on_a_terminal_for_text_and_states(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", _Tty())
    output.setup_logging(0, quiet=False)
    state = BuildProgress(done=1, expected=3)
    with output.progress(True, "fleet") as update:
        assert update is not None
        update("2/5 built, building a, b")
        update(state)  # anything with summary(): nix's builds, a fleet's, a seed's
        assert output._live_state.console is not None  # logs go through the live line
    assert output._live_state.console is None


@pytest.mark.parametrize(
    ("argv", "shown"),
    [([], True), (["-q"], False), (["--json"], False), (["--quiet", "--json"], False)],
)
def test_quiet_and_json_hide_it(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], shown: bool
) -> None:
    monkeypatch.setattr("sys.stderr", _Tty())
    p = argparse.ArgumentParser()
    p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    output.setup_logging(0, quiet=args.quiet)
    with output.progress(output.progress_enabled(args), "seed") as update:
        assert (update is not None) is shown


def test_not_a_terminal_shows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    output.setup_logging(0, quiet=False)
    with output.progress(True, "switch") as update:
        assert update is None


def test_with_progress_hands_the_callback_to_capabilities_that_take_one() -> None:
    seen: list[Any] = []

    def takes(*, x: int, progress: Any = None) -> int:
        seen.append(progress)
        return x

    def does_not(*, x: int) -> int:
        return x

    def update(state: Any) -> None:
        pass

    assert output.with_progress(takes, update, x=1) == 1 and seen == [update]
    assert output.with_progress(does_not, update, x=2) == 2
    assert output.with_progress(takes, None, x=3) == 3 and seen[-1] is None
