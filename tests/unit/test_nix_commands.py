from __future__ import annotations

import json
from pathlib import Path

import pytest

from nixlayer.errors import NixOutputError
from nixlayer.nix import commands
from nixlayer.nix.nixjson.version import parse as parse_version
from nixlayer.nix.progress import BuildProgress
from nixlayer.nix.version import Dialect


@pytest.mark.parametrize(
    ("text", "impl", "version", "dialect"),
    [
        ("nix (Nix) 2.8.0", "nix", (2, 8, 0), Dialect.LEGACY),
        ("nix (Nix) 2.18.9", "nix", (2, 18, 9), Dialect.LEGACY),
        ("nix (Nix) 2.19.0", "nix", (2, 19, 0), Dialect.MODERN),
        ("nix (Nix) 2.31.2\n", "nix", (2, 31, 2), Dialect.MODERN),
        ("nix (Lix, like Nix) 2.91.1", "lix", (2, 91, 1), Dialect.MODERN),
        ("nix (Determinate Nix 3.6.2) 2.29.0", "determinate", (2, 29, 0), Dialect.MODERN),
        ("nix (Nix) 2.24pre20240101_dirty", "nix", (2, 24, 0), Dialect.MODERN),
    ],
)
def test_version_and_dialect(
    text: str, impl: str, version: tuple[int, int, int], dialect: Dialect
) -> None:
    v = parse_version(text)
    assert (v.implementation, v.version, v.dialect) == (impl, version, dialect)


def test_unparsable_version() -> None:
    with pytest.raises(NixOutputError):
        parse_version("something else")


def test_lock_argv_per_dialect() -> None:
    ref = "path:/r/vm"
    assert commands.flake_lock(ref, [], Dialect.MODERN) == ["flake", "lock", ref]
    assert commands.flake_lock(ref, [], Dialect.LEGACY) == ["flake", "lock", ref]
    assert commands.flake_lock(ref, ["a-src", "nixos-flake"], Dialect.MODERN) == [
        "flake",
        "update",
        "--flake",
        ref,
        "a-src",
        "nixos-flake",
    ]
    assert commands.flake_lock(ref, ["a-src", "nixos-flake"], Dialect.LEGACY) == [
        "flake",
        "lock",
        ref,
        "--update-input",
        "a-src",
        "--update-input",
        "nixos-flake",
    ]


def test_build_argv() -> None:
    assert commands.build("path:/d#toplevel", out_link=Path("/o"), progress_json=True) == [
        "build",
        "path:/d#toplevel",
        "--json",
        "--out-link",
        "/o",
        "--log-format",
        "internal-json",
        "-v",
    ]
    assert commands.build("x", out_link=None, progress_json=False) == [
        "build",
        "x",
        "--json",
        "--no-link",
    ]


def _ev(**kw: object) -> str:
    return "@nix " + json.dumps(kw)


def test_progress_folds_internal_json() -> None:
    p = BuildProgress()
    assert not p.feed("plain text")
    p.feed(_ev(action="start", id=1, type=104, level=0, text=""))
    p.feed(
        _ev(
            action="start",
            id=2,
            type=105,
            level=3,
            text="building",
            fields=["/nix/store/" + "a" * 32 + "-fio-3.36.drv", "", 1, 1],
        )
    )
    p.feed(_ev(action="result", id=1, type=105, fields=[3, 10, 1, 0]))
    p.feed(_ev(action="result", id=2, type=101, fields=["\x1b[1mcompiling\x1b[0m"]))
    assert p.summary() == "[3/10] building fio-3.36"
    assert p.last_log[2] == "compiling"
    p.feed(_ev(action="stop", id=2))
    p.feed(_ev(action="msg", level=0, msg="\x1b[31;1merror:\x1b[0m boom"))
    assert p.errors() == ["error: boom"]
    assert p.summary() == "[3/10] building"
    assert BuildProgress().summary() == "evaluating"


def test_nix_error_first_error_line() -> None:
    from nixlayer.errors import NixError

    err = NixError(
        "nix build x", 1, "warning: dirty\nerror: attribute 'vm' missing\n\n  at x.nix:1\n"
    )
    assert err.first_error() == "attribute 'vm' missing"
    assert NixError("nix x", 1, "something odd\nlast line\n").first_error() == "last line"
    assert NixError("nix x", 7, "").first_error() == "exit status 7"
