"""render -> lock -> build with the real Nix on the stand-in library."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nixlayer.closure.build import build_closure
from nixlayer.closure.lock import lock_config
from nixlayer.closure.render import render_config
from nixlayer.closure.run import run_closure
from nixlayer.closure.spec import Override, Share, VMSpec
from nixlayer.nix.nixjson import flakelock
from nixlayer.nix.runner import Nix
from nixlayer.nix.version import Dialect
from tests.helpers import StandIn, run_nix, ssh_key

pytestmark = pytest.mark.nix


def _record(toplevel: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(toplevel) / "configuration.json").read_text())
    return data


def _pkg(record: dict[str, Any], pname: str) -> dict[str, Any]:
    return next(p for p in record["systemPackages"] if p["pname"] == pname)


def test_every_spec_field_reaches_the_closure(stand_in: StandIn, tmp_path: Path) -> None:
    fio_src = tmp_path / "fio-src"
    fio_src.mkdir()
    (fio_src / "VERSION").write_text("3.99-dev\n")
    keys = (ssh_key('alice@"laptop" ${HOME}', seed=b"a"), ssh_key("bob", "ssh-rsa", seed=b"b"))
    spec = VMSpec(
        vm_name="kvm-01",
        user_name="tester",
        ssh_keys=keys,
        profiles=("devel", "monitoring"),
        test_suites=("fstests", "sysbench"),
        shares={
            "/mnt/results dir": Share(tag="results", options=("rw", "x-ùnicode")),
        },
        home_dir="/home/tester",
        overrides=(Override(pkg="fio", src=str(fio_src)),),
        library=str(stand_in.library),
    )
    done = run_closure(spec, root=tmp_path / "vms")
    built = done.build
    cdir = tmp_path / "vms" / "kvm-01"
    assert built.config_dir == cdir
    assert {p.name for p in cdir.iterdir()} == {
        "flake.nix",
        "default.nix",
        "flake.lock",
        ".nixlayer-manifest.json",
    }
    assert built.out_link == tmp_path / "vms" / ".nixlayer" / "results" / "kvm-01"
    assert os.path.realpath(built.out_link) == built.toplevel
    assert built.init == f"{built.toplevel}/init"
    assert built.initrd is not None and built.initrd.endswith("-initrd-kvm-01/initrd")
    assert Path(built.initrd).is_file()

    rec = _record(built.toplevel)
    assert rec["networking"]["hostName"] == "kvm-01"
    assert rec["nixos-flake"]["user"]["name"] == "tester"
    assert rec["users"]["tester"]["authorizedKeys"] == list(keys)
    assert rec["users"]["root"]["authorizedKeys"] == list(keys)
    assert rec["nixos-flake"]["monitoring"]["enable"] is True
    assert "monitor-sysstat@" in rec["systemd"]["services"]
    names = {p["pname"] for p in rec["systemPackages"]}
    assert {"gdb", "strace", "sysstat", "xfstests", "sysbench"} <= names
    assert "gnumake" not in names  # build-tools was not selected
    assert rec["services"]["mysql"] and rec["services"]["postgresql"]
    assert rec["fileSystems"]["/mnt/results dir"] == {
        "device": "results",
        "fsType": "virtiofs",
        "options": ["rw", "x-ùnicode"],
    }
    # The fstests suite's share and the home share came without being asked for.
    assert rec["fileSystems"]["/var/lib/xfstests"]["device"] == "fstests"
    assert rec["fileSystems"]["/home/tester"]["device"] == "home"
    assert rec["users"]["root"]["home"] == "/home/tester"
    fio = _pkg(rec, "fio")
    # The library's overlay ran first (its version), the override after it (our source).
    assert fio["name"] == "fio-1.0-nixos-flake"
    assert (Path(fio["path"]) / "share" / fio["name"] / "VERSION").read_text() == "3.99-dev\n"
    assert rec["nixpkgs"]["system"] == "x86_64-linux"
    assert rec["boot"]["kernel"]["enable"] is False


def test_lock_repins_overrides_every_run(stand_in: StandIn, tmp_path: Path) -> None:
    src = tmp_path / "fio-src"
    src.mkdir()
    (src / "VERSION").write_text("one\n")
    spec = VMSpec(
        vm_name="vm",
        profiles=(),
        test_suites=("fstests",),
        overrides=(Override(pkg="fio", src=str(src)),),
        library=str(stand_in.library),
    )
    first = run_closure(spec, root=tmp_path).build
    (src / "VERSION").write_text("two\n")
    locked = lock_config(first.config_dir)
    assert (locked.moved, locked.requested) == (("fio-src",), ("fio-src",))
    assert lock_config(first.config_dir).moved == ()  # nothing changed: nothing moved
    second = build_closure(first.config_dir)
    fio = _pkg(_record(second.toplevel), "fio")
    assert (Path(fio["path"]) / "share" / fio["name"] / "VERSION").read_text() == "two\n"
    assert second.toplevel != first.toplevel


def test_stale_path_library_warns_and_update_repins(own_stand_in: StandIn, tmp_path: Path) -> None:
    lib = own_stand_in.library
    spec = VMSpec(vm_name="vm", profiles=("devel",), test_suites=(), library=str(lib))
    first = run_closure(spec, root=tmp_path).build
    assert lock_config(first.config_dir).warnings == ()
    devel = lib / "modules/profiles/devel.nix"
    devel.write_text(devel.read_text().replace("pkgs.vim", "pkgs.vim pkgs.hello"))
    stale = lock_config(first.config_dir)
    assert len(stale.warnings) == 1 and "changed on disk since it was pinned" in stale.warnings[0]
    assert build_closure(first.config_dir).toplevel == first.toplevel  # the silent trap
    fresh = lock_config(first.config_dir, update_library=True)
    assert fresh.moved == ("nixos-flake",) and fresh.warnings == ()
    rebuilt = build_closure(first.config_dir)
    assert "hello" in {p["pname"] for p in _record(rebuilt.toplevel)["systemPackages"]}


def test_missing_bootspec_falls_back(own_stand_in: StandIn, tmp_path: Path) -> None:
    backend = own_stand_in.library / "modules/backends/imageless/default.nix"
    backend.write_text(
        backend.read_text().replace(
            "boot.kernel.enable = false;",
            "boot.kernel.enable = false;\n  boot.bootspec.enable = false;",
        )
    )
    spec = VMSpec(vm_name="vm", profiles=(), test_suites=(), library=str(own_stand_in.library))
    built = run_closure(spec, root=tmp_path).build
    assert not (Path(built.toplevel) / "boot.json").exists()
    assert built.init == f"{built.toplevel}/init"
    assert built.initrd is not None and built.initrd.endswith("-initrd-vm/initrd")
    assert Path(built.initrd).is_file()


def test_git_library_ref(stand_in: StandIn, tmp_path: Path) -> None:
    repo = tmp_path / "lib-git"
    shutil.copytree(stand_in.library, repo)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "lib"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    spec = VMSpec(vm_name="vm", profiles=(), test_suites=("ltp",), library=f"git+file://{repo}")
    done = run_closure(spec, root=tmp_path / "vms")
    assert f'"git+file://{repo}"' in done.render.flake_text
    assert "ltp" in {p["pname"] for p in _record(done.build.toplevel)["systemPackages"]}


def test_aarch64_system_is_rendered_and_evaluates(stand_in: StandIn, tmp_path: Path) -> None:
    spec = VMSpec(
        vm_name="arm",
        system="aarch64-linux",
        profiles=(),
        test_suites=(),
        library=str(stand_in.library),
    )
    r = render_config(spec, root=tmp_path)
    lock_config(r.config_dir)
    out = run_nix("eval", "--json", f"path:{r.config_dir}#packages.aarch64-linux.toplevel.system")
    assert json.loads(out) == "aarch64-linux"


def _recording(tmp_path: Path, version_line: str | None = None) -> Path:
    """A `nix` that records each argv and runs the real one. With `version_line` it is
    the one shim left: it reports a Nix that cannot run here (Lix), and hands the modern
    `flake update --flake` to a real Nix older than 2.19 in that Nix's own words."""
    real = shutil.which("nix")
    legacy = Nix().version().dialect is Dialect.LEGACY
    log = tmp_path / "argv.log"
    shim = tmp_path / "nix"
    fake_version = (
        f"if [ \"$1\" = --version ]; then echo '{version_line}'; exit 0; fi" if version_line else ""
    )
    translate = (
        """if [ "$1 $2 $3" = "flake update --flake" ]; then
  ref="$4"; shift 4
  set -- flake lock "$ref" $(for i in "$@"; do printf -- '--update-input %s ' "$i"; done)
fi"""
        if version_line and legacy
        else ""
    )
    shim.write_text(f"""#!/bin/sh
printf '%s\\n' "$*" >> {log}
{fake_version}
{translate}
exec {real} "$@"
""")
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return shim


@pytest.mark.parametrize("version_line", [None, "nix (Lix, like Nix) 2.91.1"])
def test_lock_speaks_the_dialect_of_the_nix_it_runs(
    stand_in: StandIn, tmp_path: Path, version_line: str | None
) -> None:
    """On the real Nix of this run (2.8: legacy; 2.26, 2.34: modern), and on Lix through
    the shim: the override is re-pinned, and its pin really moves."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "README").write_text("one\n")
    nix = Nix(binary=str(_recording(tmp_path, version_line)))
    spec = VMSpec(
        vm_name="vm",
        profiles=(),
        test_suites=("fstests",),
        library=str(stand_in.library),
        overrides=(Override(pkg="fio", src=str(src)),),
    )
    cdir = tmp_path / "vms" / "vm"
    run_closure(spec, root=tmp_path / "vms", nix=nix)
    before = flakelock.read(cdir / "flake.lock")
    (src / "README").write_text("two\n")
    lock_config(cdir, nix=nix)
    after = flakelock.read(cdir / "flake.lock")
    assert before is not None and after is not None
    assert after.locked("fio-src")["narHash"] != before.locked("fio-src")["narHash"]
    assert after.locked("nixos-flake") == before.locked("nixos-flake")
    calls = (tmp_path / "argv.log").read_text().splitlines()
    assert calls.count("--version") == 1  # detected once per process
    lock_calls = [c for c in calls if c.startswith("flake ")]
    modern = version_line is not None or Nix().version().dialect is Dialect.MODERN
    if modern:
        assert lock_calls[-1] == f"flake update --flake path:{cdir} fio-src"
        assert not any("--update-input" in c for c in lock_calls)
    else:
        assert lock_calls[-1] == f"flake lock path:{cdir} --update-input fio-src"


def test_spec_update_lock_and_forced_host_role(own_stand_in: StandIn, tmp_path: Path) -> None:
    lib = own_stand_in.library
    spec = VMSpec(
        vm_name="ctl",
        profiles=("controller",),
        test_suites=(),
        library=str(lib),
        force_host_roles=True,
    )
    first = run_closure(spec, root=tmp_path).build
    rec = _record(first.toplevel)
    assert rec["nixos-flake"]["controller"]["enable"] is True
    assert {"libvirt", "qemu"} <= {p["pname"] for p in rec["systemPackages"]}
    controller = lib / "modules/profiles/controller.nix"
    controller.write_text(controller.read_text().replace("pkgs.qemu ]", "pkgs.qemu pkgs.socat ]"))
    same = run_closure(spec, root=tmp_path)
    assert same.build.toplevel == first.toplevel and same.lock.warnings
    moved = run_closure(spec.model_copy(update={"update_library": True}), root=tmp_path)
    assert moved.lock.moved == ("nixos-flake",)
    assert "socat" in {p["pname"] for p in _record(moved.build.toplevel)["systemPackages"]}
