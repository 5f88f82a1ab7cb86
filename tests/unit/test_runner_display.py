"""The logged command pastes into a shell as it ran: the environment nixlayer adds is
shown as assignments (the value alone quoted), and only that: a caller's environment
(the nix-daemon's, which may hold access tokens in NIX_CONFIG) never reaches the log
or an error message."""

from __future__ import annotations

import logging
import subprocess

import pytest

from nixlayer.errors import NixError
from nixlayer.nix.runner import Nix, display


def test_an_assignment_stays_one_and_pastes() -> None:
    line = display(
        ["sh", "-c", 'printf "%s|" "$NIX_CONFIG" "$X"'],
        {"NIX_CONFIG": "a = b\nc = d", "X": "$(id)"},
    )
    out = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True).stdout
    assert out == "a = b\nc = d|$(id)|"


def test_only_what_nixlayer_added_is_shown(caplog: pytest.LogCaptureFixture) -> None:
    nix = Nix(binary="sh", env={"NIX_CONFIG": "access-tokens = github.com=ghp_SECRET"})
    nix = nix.with_env({"GC_INITIAL_HEAP_SIZE": "9"})
    # Both reach the process; only the added one is shown.
    check = 'case "$NIX_CONFIG" in *ghp_*) test "$GC_INITIAL_HEAP_SIZE" = 9;; *) exit 1;; esac'
    with caplog.at_level(logging.DEBUG, logger="nixlayer"):
        nix.run(["-c", check])
        with pytest.raises(NixError) as info:
            nix.run(["-c", "exit 3"])
    assert "$ GC_INITIAL_HEAP_SIZE=9 sh -c" in caplog.text
    assert "SECRET" not in caplog.text and "NIX_CONFIG=" not in caplog.text
    assert info.value.command == "GC_INITIAL_HEAP_SIZE=9 sh -c 'exit 3'"
