"""A fleet's locks on real Nix: one `nix flake lock` per distinct flake.nix and
library pin, the others given that lock (exactly the one Nix would make), a
library re-pinned for every VM of the fleet, a VM's own older pin kept."""

from __future__ import annotations

import json
import shutil
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from nixlayer.closure.fleet import fleet_build
from nixlayer.closure.fleetspec import FleetEntry
from nixlayer.closure.spec import VMSpec
from nixlayer.nix.runner import Nix
from tests.helpers import StandIn, run_nix, ssh_key

pytestmark = pytest.mark.nix


def _nix(tmp_path: Path) -> tuple[Nix, Path]:
    """A `nix` that logs its arguments (one line a call), then runs the real one."""
    log = tmp_path / "argv"
    shim = tmp_path / "nix-shim"
    shim.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$(echo "$*" | tr "\\n" " ")" >> {log}\n'
        f'exec {shutil.which("nix")} "$@"\n'
    )
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    log.write_text("")
    return Nix(binary=str(shim)), log


def _entry(name: str, library: Path, key: str, **extra: Any) -> FleetEntry:
    spec = VMSpec.model_validate(
        {
            "vm_name": name,
            "library": str(library),
            "profiles": ["devel"],
            "test_suites": ["ltp"],
            "ssh_keys": [ssh_key(key)],
            **extra,
        }
    )
    return FleetEntry(name=name, spec=spec)


def _locks(log: Path) -> list[str]:
    """The `nix flake lock`/`update` calls, by the directory they locked."""
    out = []
    for line in log.read_text().splitlines():
        if line.startswith(("flake lock ", "flake update ")):
            out.append(next(a for a in line.split() if a.startswith("path:")))
    return out


def _pin(root: Path, name: str) -> dict[str, Any]:
    lock = json.loads((root / name / "flake.lock").read_text())
    pin: dict[str, Any] = lock["nodes"]["nixos-flake"]["locked"]
    return pin


def test_one_lock_per_distinct_flake_nix(own_stand_in: StandIn, tmp_path: Path) -> None:
    nix, log = _nix(tmp_path)
    root = tmp_path / "vms"
    lib, key = own_stand_in.library, uuid.uuid4().hex
    src = tmp_path / "hello-src"
    src.mkdir()
    (src / "README").write_text("hello\n")
    entries = [_entry(n, lib, key) for n in ("a", "b", "c")]
    # Another flake.nix (one more input): a lock of its own.
    entries.append(_entry("d", lib, key, overrides=[{"pkg": "hello", "src": str(src)}]))
    outcomes = fleet_build(entries, root=root, nix=nix, jobs=2)
    assert [o.status for o in outcomes] == ["built"] * 4, [o.error for o in outcomes]
    assert sorted(_locks(log)) == [f"path:{root / 'a'}", f"path:{root / 'd'}"]
    text = {n: (root / n / "flake.lock").read_text() for n in "abcd"}
    assert text["a"] == text["b"] == text["c"] != text["d"]
    assert _pin(root, "a") == _pin(root, "d")
    # What the others were given is exactly what Nix makes: locking changes nothing.
    for n in "bc":
        run_nix("flake", "lock", f"path:{root / n}")
        assert (root / n / "flake.lock").read_text() == text[n]


def test_update_library_repins_it_for_every_vm(own_stand_in: StandIn, tmp_path: Path) -> None:
    nix, log = _nix(tmp_path)
    root = tmp_path / "vms"
    lib, key = own_stand_in.library, uuid.uuid4().hex
    names = ("a", "b", "c")
    outcomes = fleet_build([_entry(n, lib, key) for n in names], root=root, nix=nix)
    assert [o.status for o in outcomes] == ["built"] * 3
    old = _pin(root, "a")
    devel = lib / "modules/profiles/devel.nix"
    devel.write_text(devel.read_text() + "# edited\n")
    log.write_text("")
    # Only the last VM asks; the library moves once, for all that share it.
    entries = [_entry(n, lib, key, update_library=(n == "c")) for n in names]
    outcomes = fleet_build(entries, root=root, nix=nix)
    assert [o.status for o in outcomes] == ["built"] * 3
    current = run_nix("hash", "path", "--type", "sha256", str(lib)).strip()
    assert old["narHash"] != current
    assert [_pin(root, n)["narHash"] for n in names] == [current] * 3
    assert _locks(log) == [f"path:{root / 'a'}"]


def test_a_vms_own_older_pin_is_kept(own_stand_in: StandIn, tmp_path: Path) -> None:
    nix, log = _nix(tmp_path)
    root = tmp_path / "vms"
    lib, key = own_stand_in.library, uuid.uuid4().hex
    assert fleet_build([_entry("old", lib, key)], root=root, nix=nix)[0].status == "built"
    old = _pin(root, "old")
    devel = lib / "modules/profiles/devel.nix"
    devel.write_text(devel.read_text() + "# edited\n")
    log.write_text("")
    entries = [_entry("new", lib, key), _entry("old", lib, key)]
    outcomes = fleet_build(entries, root=root, nix=nix)
    assert [o.status for o in outcomes] == ["built"] * 2
    assert _pin(root, "old") == old  # not moved without --update-library
    assert _pin(root, "new")["narHash"] != old["narHash"]
    assert _locks(log) == [f"path:{root / 'new'}", f"path:{root / 'old'}"]
