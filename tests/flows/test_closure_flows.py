"""render, lock, build and run on the recording fake Nix: which commands, in which
order, per dialect. No Nix needed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nixlayer.closure.build import build_closure
from nixlayer.closure.lock import lock_config
from nixlayer.closure.render import render_config
from nixlayer.closure.run import run_closure
from nixlayer.errors import InputError
from nixlayer.fsutil import state_dir
from tests.fakenix import captured
from tests.flows.closure_fake import GITHUB, INSTALLABLE, TOPLEVEL, VERSIONS, fake, spec
from tests.helpers import FIXTURES


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
    nix.rules.insert(0, nix.rules.pop())
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
        ["nix", "build", f"path:{d}#{INSTALLABLE}", "--json", "--out-link", str(link)],
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
    config = f"path:{d}#nixosConfigurations.vm"
    link = state_dir(tmp_path) / "results" / "vm"
    assert nix.calls[:2] == [
        ["nix", "flake", "metadata", "--json", GITHUB],
        ["nix", "flake", "lock", f"path:{d}"],
    ]
    # The override check: fio's derivation, then the closure it must be in.
    check, closure, *rest = nix.calls[2:]
    assert check[:3] == ["nix", "eval", "--json"] and check[3:5] == [config, "--apply"]
    assert 'builtins.fromJSON "[\\"fio\\"]"' in check[5] and len(check) == 6
    assert closure == ["nix", "path-info", "--derivation", "--recursive", f"path:{d}#{INSTALLABLE}"]
    assert rest == [
        ["nix", "build", f"path:{d}#{INSTALLABLE}", "--json", "--out-link", str(link)],
        ["nix", "eval", "--json", f"{config}.config.system.boot.loader.initrdFile"],
        ["nix", "build", f"{config}.config.system.build.initialRamdisk", "--json", "--no-link"],
    ]
    assert result.build.toplevel == TOPLEVEL


def test_build_refuses_an_override_its_closure_does_not_use(tmp_path: Path, src: Path) -> None:
    """fio's derivation is not among the closure's: the overlay would change nothing."""
    nix = fake("2.34")
    (fio,) = json.loads(captured("2.34", "eval-override-drvs.json"))
    others = [p for p in captured("2.34", "path-info-derivations.txt").split() if p != fio]
    assert len(others) < len(captured("2.34", "path-info-derivations.txt").split())
    nix.on("nix", "path-info", "--derivation", stdout="\n".join(others) + "\n")
    nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(InputError) as info:
        run_closure(spec(src=src), root=tmp_path, nix=nix)
    assert info.value.field == "overrides[0].pkg"
    assert "'fio' is not in this VM's closure" in str(info.value)
    assert [c[1] for c in nix.calls] == ["flake", "flake", "eval", "path-info"]


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
