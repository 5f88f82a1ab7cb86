"""render, lock, build, run and fleet on the recording fake Nix: which commands, in which
order, per dialect. No Nix needed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nixlayer.closure.build import build_closure
from nixlayer.closure.fleet import fleet_build
from nixlayer.closure.fleetspec import FleetEntry
from nixlayer.closure.lock import lock_config
from nixlayer.closure.render import render_config
from nixlayer.closure.run import run_closure
from nixlayer.closure.spec import VMSpec
from nixlayer.fsutil import state_dir
from tests.fakenix import FakeNix, captured, dialect_version
from tests.helpers import FIXTURES, ssh_key

GITHUB = "github:linux-kdevops/nixos-flake"
TOPLEVEL = "/nix/store/k5y27hq28y9xlxzcb0h5yx86lzp91fja-nixos-system-vm-26.05"
VERSIONS = ["2.8", "2.26", "2.34"]


def spec(name: str = "vm", src: Path | None = None, **extra: object) -> VMSpec:
    data: dict[str, object] = {
        "vm_name": name,
        "library": GITHUB,
        "ssh_keys": [ssh_key("ci")],
        "profiles": ["devel"],
        "test_suites": ["ltp"],
    }
    if src is not None:
        data["overrides"] = [{"pkg": "fio", "src": str(src)}]
    return VMSpec.model_validate({**data, **extra})


def write_lock(version: str) -> object:
    """What `nix flake lock`/`nix flake update` leaves behind: a lock file in the flake."""

    def effect(argv: list[str], _stdin: str | None) -> None:
        ref = next(a for a in argv if a.startswith("path:"))
        lock = json.loads(captured(version, "flake.lock"))
        # The capture pinned a path: library; these specs name a GitHub one.
        locked = lock["nodes"]["nixos-flake"]["locked"]
        lock["nodes"]["nixos-flake"]["locked"] = {
            "type": "github",
            "owner": "linux-kdevops",
            "repo": "nixos-flake",
            "rev": "0" * 40,
            "narHash": locked["narHash"],
            "lastModified": locked["lastModified"],
        }
        Path(ref.removeprefix("path:"), "flake.lock").write_text(json.dumps(lock))

    return effect


def fake(version: str) -> FakeNix:
    """Nix `version` as captured: metadata, lock, build, eval answers."""
    nix = FakeNix(dialect_version(version))
    nix.on("nix", "flake", "metadata", stdout=captured(version, "flake-metadata-path.json"))
    nix.on("nix", "flake", "lock", effect=write_lock(version))  # type: ignore[arg-type]
    nix.on("nix", "flake", "update", effect=write_lock(version))  # type: ignore[arg-type]
    nix.on("nix", "build", stdout=captured(version, "build.json"))
    nix.on("nix", "eval", stdout=captured(version, "eval-initrd-file.json"))
    return nix


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "fio"
    d.mkdir()
    (d / "README").write_text("fio\n")
    return d


@pytest.mark.parametrize("version", VERSIONS)
def test_render_fetches_a_remote_library_once(tmp_path: Path, version: str) -> None:
    nix = fake(version)
    result = render_config(spec(), root=tmp_path, nix=nix)
    assert nix.calls == [["nix", "flake", "metadata", "--json", GITHUB]]
    assert result.flake_nix.is_file() and GITHUB in result.flake_nix.read_text()


def test_render_of_a_local_library_runs_no_nix(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(FIXTURES / "nixos-flake", lib)
    nix = fake("2.34")
    render_config(spec(library=str(lib)), root=tmp_path, nix=nix)
    assert nix.calls == []


@pytest.mark.parametrize(
    ("version", "repin"),
    [
        ("2.8", ["nix", "flake", "lock", "path:{d}", "--update-input", "fio-src"]),
        ("2.26", ["nix", "flake", "update", "--flake", "path:{d}", "fio-src"]),
        ("2.34", ["nix", "flake", "update", "--flake", "path:{d}", "fio-src"]),
    ],
)
def test_lock_pins_then_repins_the_source_override(
    tmp_path: Path, src: Path, version: str, repin: list[str]
) -> None:
    nix = fake(version)
    d = render_config(spec(src=src), root=tmp_path, nix=nix).config_dir
    nix.calls.clear()
    lock_config(d, nix=nix)
    assert nix.calls == [["nix", "flake", "lock", f"path:{d}"]]
    nix.calls.clear()
    # The next lock moves the override (a developer's checkout), never the library.
    lock_config(d, nix=nix)
    assert nix.calls == [[a.format(d=d) for a in repin]]


def test_lock_update_library_repins_it_too(tmp_path: Path, src: Path) -> None:
    nix = fake("2.34")
    d = render_config(spec(src=src), root=tmp_path, nix=nix).config_dir
    lock_config(d, nix=nix)
    nix.calls.clear()
    lock_config(d, update_library=True, nix=nix)
    repin = ["nix", "flake", "update", "--flake", f"path:{d}", "fio-src", "nixos-flake"]
    assert nix.calls == [repin]


def test_lock_relays_nix_warnings_whole(
    tmp_path: Path, src: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nix = fake("2.34")
    d = render_config(spec(src=src), root=tmp_path, nix=nix).config_dir
    lock_config(d, nix=nix)
    nix.on("nix", "flake", "update", stderr=captured("2.34", "stderr/lock-update.txt"))
    nix.rules.insert(0, nix.rules.pop())
    caplog.set_level("WARNING", logger="nixlayer")
    lock_config(d, nix=nix)
    (record,) = [r for r in caplog.records if "updating lock file" in r.getMessage()]
    assert "• Updated input 'fio-src':" in record.getMessage()
    assert "→ 'path:" in record.getMessage()


def test_lock_checks_a_stale_path_library(tmp_path: Path) -> None:
    """A `path:` library pin is compared with the directory by `nix hash path`."""
    lib = tmp_path / "nixos-flake"
    shutil.copytree(FIXTURES / "nixos-flake", lib)
    nix = fake("2.34").on("nix", "hash", "path", stdout="sha256-changed\n")
    d = render_config(spec(library=str(lib)), root=tmp_path / "vms", nix=nix).config_dir
    lock = json.loads(captured("2.34", "flake.lock"))
    lock["nodes"]["nixos-flake"]["locked"]["path"] = str(lib)
    del lock["nodes"]["fio-src"], lock["nodes"]["root"]["inputs"]["fio-src"]
    (d / "flake.lock").write_text(json.dumps(lock))
    nix.rules = [r for r in nix.rules if r.prefix[:3] != ["nix", "flake", "lock"]]
    result = lock_config(d, nix=nix)
    assert nix.calls == [
        ["nix", "hash", "path", "--type", "sha256", str(lib)],
        ["nix", "flake", "lock", f"path:{d}"],
    ]
    assert "changed on disk since it was pinned" in result.warnings[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_build_then_the_initrd_when_there_is_no_bootspec(tmp_path: Path, version: str) -> None:
    nix = fake(version)
    d = render_config(spec(), root=tmp_path, nix=nix).config_dir
    nix.calls.clear()
    result = build_closure(d, nix=nix)
    link = state_dir(tmp_path) / "results" / "vm"
    base = f"path:{d}#nixosConfigurations.vm.config.system"
    assert nix.calls == [
        ["nix", "build", f"path:{d}#toplevel", "--json", "--out-link", str(link)],
        ["nix", "eval", "--json", f"{base}.boot.loader.initrdFile"],
        ["nix", "build", f"{base}.build.initialRamdisk", "--json", "--no-link"],
    ]
    assert result.toplevel == TOPLEVEL and result.init == f"{TOPLEVEL}/init"


def test_build_with_progress_asks_nix_for_internal_json(tmp_path: Path) -> None:
    nix = fake("2.34")
    d = render_config(spec(), root=tmp_path, nix=nix).config_dir
    nix.calls.clear()
    build_closure(d, nix=nix, progress=lambda _p: None, system="x86_64-linux")
    assert nix.calls[0][:3] == ["nix", "build", f"path:{d}#packages.x86_64-linux.toplevel"]
    assert nix.calls[0][-3:] == ["--log-format", "internal-json", "-v"]
    # ... and the logged command leaves them out.
    assert "--log-format" not in nix.commands()[0]


def test_options_reach_every_command(tmp_path: Path) -> None:
    nix = fake("2.34")
    nix.options = ["--option", "max-jobs", "2"]
    run_closure(spec(), root=tmp_path, nix=nix)
    assert all(c[-3:] == ["--option", "max-jobs", "2"] for c in nix.calls)


@pytest.mark.parametrize("version", VERSIONS)
def test_run_is_render_lock_build(tmp_path: Path, src: Path, version: str) -> None:
    nix = fake(version)
    result = run_closure(spec(src=src), root=tmp_path, nix=nix)
    d = result.render.config_dir
    assert [c[:3] for c in nix.calls] == [
        ["nix", "flake", "metadata"],
        ["nix", "flake", "lock"],
        ["nix", "build", f"path:{d}#packages.x86_64-linux.toplevel"],
        ["nix", "eval", "--json"],
        ["nix", "build", f"path:{d}#nixosConfigurations.vm.config.system.build.initialRamdisk"],
    ]
    assert result.build.toplevel == TOPLEVEL


def test_a_nix_failure_stops_run_before_build(tmp_path: Path) -> None:
    from nixlayer.errors import NixError

    nix = fake("2.34")
    nix.rules.insert(
        0,
        nix.rules[0].__class__(
            ["nix", "flake", "lock"],
            returncode=1,
            stderr=captured("2.34", "stderr/eval-file-throw.txt"),
        ),
    )
    with pytest.raises(NixError) as info:
        run_closure(spec(), root=tmp_path, nix=nix)
    assert info.value.first_error() == "the job's inputs are broken"
    assert [c[:3] for c in nix.calls] == [["nix", "flake", "metadata"], ["nix", "flake", "lock"]]


@pytest.mark.parametrize("version", VERSIONS)
def test_fleet_locks_each_library_once_and_builds_every_vm(tmp_path: Path, version: str) -> None:
    nix = fake(version)
    entries = [FleetEntry(name=n, spec=spec(n)) for n in ("a", "b", "c")]
    outcomes = fleet_build(entries, root=tmp_path, jobs=1, nix=nix)
    assert [o.status for o in outcomes] == ["built"] * 3
    locks = [c for c in nix.calls if c[1:3] == ["flake", "lock"]]
    # The first VM pins the library; the others are seeded with that pin, then locked
    # (which adds nothing new, so Nix never fetches the library again).
    assert [c[3] for c in locks] == [f"path:{tmp_path / n}" for n in ("a", "b", "c")]
    assert [c[1:3] for c in nix.calls].count(["flake", "metadata"]) == 3
    seeded = json.loads((tmp_path / "b" / "flake.lock").read_text())
    assert "nixos-flake" in seeded["nodes"]
    builds = [c[2] for c in nix.calls if c[1] == "build" and c[2].endswith(".toplevel")]
    assert builds == [f"path:{tmp_path / n}#packages.x86_64-linux.toplevel" for n in "abc"]


def test_fleet_isolates_a_throwing_module(tmp_path: Path) -> None:
    nix = fake("2.34")
    nix.rules.insert(
        0,
        nix.rules[0].__class__(
            ["nix", "build"],
            contains=[f"path:{tmp_path / 'bad'}#packages.x86_64-linux.toplevel"],
            returncode=1,
            stderr=captured("2.34", "stderr/build-throw.txt"),
        ),
    )
    entries = [FleetEntry(name=n, spec=spec(n)) for n in ("good", "bad")]
    good, bad = fleet_build(entries, root=tmp_path, jobs=1, nix=nix)
    assert good.status == "built" and bad.status == "failed"
    assert bad.error == "error: mmtests is broken in lib-b"
