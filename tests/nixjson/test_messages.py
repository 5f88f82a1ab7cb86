"""Nix's errors and warnings, relayed whole, as each real version prints them."""

from __future__ import annotations

import pytest

from nixlayer.errors import NixError, nix_messages
from nixlayer.nix.runner import NixResult, fold_stderr
from tests.nixjson.data import WORK, every_version, newer_than_2_8, read


def first_error(stderr: str) -> str:
    return NixError("nix x", 1, stderr).first_error()


@every_version
@pytest.mark.parametrize(
    ("capture", "message"),
    [
        # A throwing module: newer Nix prints a bare `error:`, a trace, then the cause.
        ("build-throw.txt", "mmtests is broken in lib-b"),
        ("eval-file-throw.txt", "the job's inputs are broken"),
        ("eval-file-syntax.txt", "syntax error, unexpected '}', expecting ';'"),
        ("build-missing-attr.txt", "does not provide attribute 'packages.x86_64-linux.nope'"),
        ("build-fail.txt", "-failing.drv"),
    ],
)
def test_first_error_is_the_cause(version: str, capture: str, message: str) -> None:
    found = first_error(read(version, f"stderr/{capture}"))
    assert message in found
    assert "\n" not in found and not found.startswith("…")


@every_version
def test_a_failed_build_says_why(version: str) -> None:
    assert "exit code 3" in first_error(read(version, "stderr/build-fail.txt"))


@every_version
def test_first_error_through_internal_json(version: str) -> None:
    """With progress, stderr is rebuilt from `@nix` messages: the cause survives."""
    text = fold_stderr(read(version, "stderr/build-throw.internal-json.txt").splitlines(True))
    assert first_error(text) == "mmtests is broken in lib-b"
    assert "@nix" not in text


@every_version
def test_lock_update_warning_keeps_its_input_lines(version: str) -> None:
    stderr = read(version, "stderr/lock-update.txt")
    (warning,) = NixResult("nix flake lock", "", stderr).warnings
    lines = warning.splitlines()
    assert lines[0].startswith("updating lock file") and "/vms/vm/flake.lock" in lines[0]
    assert lines[1] == "• Updated input 'fio-src':"
    assert lines[2].strip().startswith(f"'path:{WORK}/fio-src?")
    assert lines[3].strip().startswith(f"→ 'path:{WORK}/fio-src?")


@every_version
def test_lock_creation_warning(version: str) -> None:
    """Quoted per version ('…', '"…"', "…"); newer Nix lists the inputs it added."""
    (warning,) = NixResult("nix flake lock", "", read(version, "stderr/lock-create.txt")).warnings
    first, *rest = warning.splitlines()
    assert first.startswith("creating lock file") and f"{WORK}/vms/vm/flake.lock" in first
    added = [ln for ln in rest if ln.startswith("• Added input")]
    if newer_than_2_8(version):
        assert "• Added input 'fio-src':" in added and "    follows 'nixos-flake/nixpkgs'" in rest
    else:
        assert rest == []


def test_messages_end_at_other_output() -> None:
    stderr = (
        "warning: Git tree is dirty\n"
        "this derivation will be built:\n"
        "  /nix/store/x.drv\n"
        "error: builder failed\n"
        "       last log lines:\n"
        "       > boom\n"
    )
    assert nix_messages(stderr) == [
        ("warning", "Git tree is dirty"),
        ("error", "builder failed\n       last log lines:\n       > boom"),
    ]


def test_first_error_without_any_error_line() -> None:
    assert NixError("nix x", 1, "something odd\nlast line\n").first_error() == "last line"
    assert NixError("nix x", 7, "").first_error() == "exit status 7"
    # A bare `error:` with a trace but no cause: the first line that is not a frame.
    bare = "error:\n       … while evaluating x\n         at a.nix:1:1:\n       oops\n"
    assert NixError("nix x", 1, bare).first_error() == "oops"
