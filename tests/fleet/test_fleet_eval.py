"""The shared evaluator on real Nix: failures isolated, valid outputs skipped, one
build graph, the memory budget's restarts, flake fleets, the scale generator."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from nixlayer.closure.fleet_eval import EvalStats
from nixlayer.closure.fleet_shared import flake_fleet_build
from nixlayer.nix.runner import Nix
from tests.helpers import REPO, StandIn, cli, json_result, make_stand_in, run_nix, ssh_key

pytestmark = pytest.mark.nix


def _shims(tmp_path: Path) -> tuple[Path, Path]:
    """`nix` and `nix-store` that log their arguments, then run the real ones."""
    log = tmp_path / "argv"
    bindir = tmp_path / "shim"
    bindir.mkdir()
    for tool in ("nix", "nix-store"):
        real = shutil.which(tool)
        shim = bindir / tool
        # One line per call: the evaluator's expression spans lines.
        shim.write_text(
            f'#!/bin/sh\nprintf "%s %s\\n" {tool} "$(echo "$*" | tr "\\n" " ")" >> {log}\n'
            f'exec {real} "$@"\n'
        )
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return bindir / "nix", log


@pytest.fixture
def broken_library(tmp_path: Path, nix_available: None) -> StandIn:
    """mmtests throws (catchable); gitr names a package that does not exist (a
    missing attribute: no `tryEval` catches it)."""
    lib = make_stand_in(tmp_path / "lib")
    suites = lib.library / "modules/testSuites"
    (suites / "mmtests.nix").write_text('{ ... }: throw "mmtests is broken here"')
    (suites / "gitr.nix").write_text(
        "{ pkgs, ... }: { environment.systemPackages = [ pkgs.no-such-package ]; }"
    )
    return lib


def _fleet_file(
    tmp_path: Path, library: Path, vms: list[dict[str, object]], key: str | None = None
) -> Path:
    fleet = tmp_path / "fleet.json"
    fleet.write_text(
        json.dumps(
            {
                "defaults": {
                    "library": str(library),
                    "profiles": ["devel"],
                    "test_suites": ["ltp"],
                    # Unique per run, so no output is valid from an earlier run.
                    "ssh_keys": [ssh_key(key or uuid.uuid4().hex)],
                },
                "vms": vms,
            }
        )
    )
    return fleet


def test_failures_isolated_one_graph_then_valid_outputs_skipped(
    broken_library: StandIn, tmp_path: Path
) -> None:
    shim, log = _shims(tmp_path)
    vms: list[dict[str, object]] = [{"vm_name": f"ok-{i}"} for i in range(3)]
    vms.insert(1, {"vm_name": "throws", "test_suites": ["mmtests"]})
    vms.insert(3, {"vm_name": "missing-attr", "test_suites": ["gitr"]})
    fleet = _fleet_file(tmp_path, broken_library.library, vms)
    root = tmp_path / "vms"
    env = {"NIXLAYER_NIX": str(shim)}

    proc = cli("fleet", "build", str(fleet), "--root", str(root), "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    out = {v["vm_name"]: v for v in json_result(proc, ok=False)["vms"]}
    assert out["throws"]["status"] == "failed"
    assert "mmtests is broken here" in out["throws"]["error"]
    assert out["missing-attr"]["status"] == "failed"
    assert "no-such-package" in out["missing-attr"]["error"]
    for name in ("ok-0", "ok-1", "ok-2"):
        assert out[name]["status"] == "built", out[name]
        link = root / ".nixlayer/results" / name
        assert link.is_symlink() and str(link.resolve()) == out[name]["toplevel"]
        assert Path(out[name]["initrd"]).exists() and (root / name / "flake.lock").exists()
    lines = log.read_text().splitlines()
    evals = [ln for ln in lines if ln.startswith("nix eval --json --expr")]
    # One evaluator, plus one fresh one after each of the two failures.
    assert len(evals) == 3
    assert all("ok-2" in e for e in evals[-1:]) and "throws" not in evals[-1]
    realise = [ln for ln in lines if ln.startswith("nix-store --realise")]
    assert len(realise) == 1 and realise[0].count(".drv") == 3
    assert "--keep-going" in realise[0]
    # Each built output is a GC root until its out-link is (no warning from Nix).
    assert "--add-root" in realise[0] and "did not specify '--add-root'" not in proc.stderr

    log.write_text("")
    proc = cli("fleet", "build", str(fleet), "--root", str(root), "--json", env=env)
    again = {v["vm_name"]: v for v in json_result(proc, ok=False)["vms"]}
    for name in ("ok-0", "ok-1", "ok-2"):
        assert again[name]["skipped"] is True
        assert again[name]["toplevel"] == out[name]["toplevel"]
    lines = log.read_text().splitlines()
    evals = [ln for ln in lines if ln.startswith("nix eval --json --expr")]
    # Only the two failing VMs are evaluated again; the valid ones come from the cache.
    assert len(evals) == 2 and not any("ok-" in e for e in evals)
    assert not [ln for ln in lines if "--realise" in ln]


def test_vms_named_at_boot_share_one_evaluation_and_toplevel(
    stand_in: StandIn, tmp_path: Path
) -> None:
    """VMs that differ only in a host name set at boot render one content: evaluated
    once, built once, each with its own config dir, lock, out-link and host name."""
    shim, log = _shims(tmp_path)
    root = tmp_path / "vms"
    names = ["guest-0", "guest-1", "guest-2"]
    vms: list[dict[str, object]] = [{"vm_name": n, "hostname": "boot"} for n in names]
    vms.append({"vm_name": "baked"})  # the name in the closure: a system of its own
    fleet = _fleet_file(tmp_path, stand_in.library, vms)
    env = {"NIXLAYER_NIX": str(shim)}
    out = json_result(cli("fleet", "build", str(fleet), "--root", str(root), "--json", env=env))
    vm = {v["vm_name"]: v for v in out["vms"]}
    tops = {vm[n]["toplevel"] for n in names}
    assert len(tops) == 1 and vm["baked"]["toplevel"] not in tops
    assert next(iter(tops)).endswith("-nixos-system-unnamed-26.05")
    for n in names:
        assert vm[n]["kernel_params"] == [f"systemd.hostname={n}"]
        assert (root / n / "flake.lock").is_file()
        assert os.readlink(root / ".nixlayer/results" / n) == vm[n]["toplevel"]
        record = json.loads(Path(vm[n]["toplevel"], "configuration.json").read_text())
        assert record["networking"]["hostName"] == ""
    assert vm["baked"]["kernel_params"] == []
    files = [sorted((p.name, p.read_bytes()) for p in (root / n).iterdir()) for n in names]
    assert files[0] == files[1] == files[2]
    evals = [ln for ln in log.read_text().splitlines() if ln.startswith("nix eval --json --expr")]
    assert len(evals) == 1 and '"guest-0"' in evals[0] and '"baked"' in evals[0]
    assert '"guest-1"' not in evals[0] and '"guest-2"' not in evals[0]

    # The single-VM build of one of them says the same.
    proc = cli("build", str(root / "guest-1"), "--json")
    assert json_result(proc)["kernel_params"] == ["systemd.hostname=guest-1"]
    # Copied to a directory whose name is no host name (it would inject kernel
    # parameters): refused as bad input before anything is built or linked.
    bad = root / "x init=sh"
    shutil.copytree(root / "guest-1", bad)
    proc = cli("build", str(bad))
    assert proc.returncode == 2 and proc.stderr.startswith("nixlayer: error: config_dir:")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (root / ".nixlayer/results" / bad.name).exists()


def test_changed_vm_is_evaluated_again(stand_in: StandIn, tmp_path: Path) -> None:
    shim, log = _shims(tmp_path)
    root = tmp_path / "vms"
    vms: list[dict[str, object]] = [{"vm_name": "a"}, {"vm_name": "b"}]
    key = uuid.uuid4().hex
    fleet = _fleet_file(tmp_path, stand_in.library, vms, key)
    env = {"NIXLAYER_NIX": str(shim)}
    first = json_result(cli("fleet", "build", str(fleet), "--root", str(root), "--json", env=env))
    log.write_text("")
    vms[1]["user_name"] = "bob"
    fleet = _fleet_file(tmp_path, stand_in.library, vms, key)
    second = json_result(cli("fleet", "build", str(fleet), "--root", str(root), "--json", env=env))
    tops = [{v["vm_name"]: v["toplevel"] for v in r["vms"]} for r in (first, second)]
    assert tops[0]["a"] == tops[1]["a"] and tops[0]["b"] != tops[1]["b"]
    evals = [ln for ln in log.read_text().splitlines() if ln.startswith("nix eval --json --expr")]
    assert len(evals) == 1 and '"b"' in evals[0] and '"a"' not in evals[0]


def test_per_vm_mode_still_builds(stand_in: StandIn, tmp_path: Path) -> None:
    fleet = _fleet_file(tmp_path, stand_in.library, [{"vm_name": "p"}])
    root = tmp_path / "vms"
    proc = cli("fleet", "build", str(fleet), "--root", str(root), "--eval", "per-vm", "--json")
    (vm,) = json_result(proc)["vms"]
    assert vm["status"] == "built" and vm["skipped"] is False


def _flake(tmp_path: Path, nixpkgs: Path, machines: dict[str, str]) -> Path:
    flake = tmp_path / "machines-flake"
    flake.mkdir()
    body = "\n".join(f"        {json.dumps(n)} = {m};" for n, m in machines.items())
    (flake / "flake.nix").write_text(
        f"""{{
  inputs.nixpkgs.url = "path:{nixpkgs}";
  outputs = {{ self, nixpkgs }}: {{
    nixosConfigurations = builtins.mapAttrs (name: m: nixpkgs.lib.nixosSystem {{
      system = "x86_64-linux";
      modules = [ m {{ networking.hostName = name; }} ];
    }}) {{
{body}
    }};
  }};
}}
"""
    )
    run_nix("flake", "lock", f"path:{flake}")
    return flake


def test_flake_fleet_select_and_memory_budget(stand_in: StandIn, tmp_path: Path) -> None:
    flake = _flake(
        tmp_path,
        stand_in.nixpkgs,
        {
            "web-1": "{ }",
            "web-2": "{ }",
            "web-3": "{ }",
            "db-1": "{ }",
            "web-broken": '{ environment.systemPackages = [ (throw "web-broken is broken") ]; }',
        },
    )
    stats = EvalStats()
    # A 1 MiB budget: every evaluator is past it after its first system.
    out = flake_fleet_build(
        f"path:{flake}", root=tmp_path / "r", select=["web-*"], nix=Nix(), max_mb=1, stats=stats
    )
    status = {o.vm_name: o.status for o in out}
    assert status == {"web-1": "built", "web-2": "built", "web-3": "built", "web-broken": "failed"}
    broken = next(o for o in out if o.vm_name == "web-broken")
    assert broken.error and "web-broken is broken" in broken.error
    assert stats.evaluated == 3 and stats.restarts_for_memory >= 2
    # At least one evaluator per memory restart plus the first; whether the broken VM
    # shares the last one depends on when its resident size is sampled (Nix version, load).
    assert stats.evaluators >= stats.restarts_for_memory + 1 >= 3 and stats.peak_rss_mb > 1
    for o in out:
        if o.status == "built":
            assert (tmp_path / "r/.nixlayer/results" / o.vm_name).resolve() == Path(str(o.toplevel))

    proc = cli("fleet", "build", "--flake", f"path:{flake}", "--select", "db-*", "--root",
               str(tmp_path / "r"), "--json")  # fmt: skip
    (db,) = json_result(proc)["vms"]
    assert db["vm_name"] == "db-1" and db["status"] == "built"
    proc = cli("fleet", "build", "--flake", f"path:{flake}", "--select", "nope*", "--root",
               str(tmp_path / "r"), "--json")  # fmt: skip
    assert proc.returncode == 2 and "--select" in json.loads(proc.stdout)["error"]["field"]


def test_fleet_argument_errors(tmp_path: Path) -> None:
    proc = cli("fleet", "build", "--root", str(tmp_path))
    assert proc.returncode == 2 and "FLEET" in proc.stderr
    proc = cli("fleet", "build", "x.yaml", "--select", "a", "--root", str(tmp_path))
    assert proc.returncode == 2 and "--select" in proc.stderr
    proc = cli("fleet", "build", "--flake", ".", "--eval", "per-vm", "--root", str(tmp_path))
    assert proc.returncode == 2 and "--eval" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_tiny_scale_stand_in_plugs_in(tmp_path: Path, nix_available: None) -> None:
    """The generator's tiny instance: the same outputs as the fixture's nixpkgs,
    so a flake of nixosConfigurations builds on it."""
    out = tmp_path / "scale"
    subprocess.run(
        [sys.executable, str(REPO / "bench/scale/gen.py"), "--size", "tiny", "--out", str(out),
         "--revision", "smoke"],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    assert len(list((out / "nixos/modules").rglob("*.nix"))) > 30
    flake = _flake(tmp_path, out, {"h-1": "{ }", "h-2": "{ }"})
    proc = cli("fleet", "build", "--flake", f"path:{flake}", "--root", str(tmp_path / "r"),
               "--json")  # fmt: skip
    vms = json_result(proc)["vms"]
    assert [v["status"] for v in vms] == ["built", "built"]
    record = json.loads((Path(vms[0]["toplevel"]) / "configuration.json").read_text())
    assert record["networking"]["hostName"] == "h-1" and record["systemPackages"]
