"""`nixlayer fleet build` on real Nix: two libraries, ten VMs, one broken."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.helpers import StandIn, cli, json_result, make_stand_in, ssh_key

pytestmark = pytest.mark.nix


@pytest.fixture
def two_libraries(tmp_path: Path, nix_available: None) -> tuple[StandIn, StandIn]:
    a = make_stand_in(tmp_path / "libs", "lib-a")
    b = make_stand_in(tmp_path / "libs", "lib-b")
    devel = b.library / "modules/profiles/devel.nix"
    devel.write_text(devel.read_text().replace("pkgs.vim", "pkgs.vim pkgs.hello"))
    (b.library / "modules/testSuites/mmtests.nix").write_text(
        '{ ... }: throw "mmtests is broken in lib-b"'
    )
    return a, b


def _fleet(tmp_path: Path, a: StandIn, b: StandIn) -> Path:
    vms: list[dict[str, object]] = [
        {"vm_name": f"a-{i}", "library": str(a.library)} for i in range(5)
    ]
    vms += [{"vm_name": f"b-{i}", "library": str(b.library)} for i in range(4)]
    vms.append({"vm_name": "b-broken", "library": str(b.library), "test_suites": ["mmtests"]})
    fleet = tmp_path / "fleet.json"
    fleet.write_text(
        json.dumps(
            {
                "defaults": {
                    "profiles": ["devel"],
                    "test_suites": ["ltp"],
                    "ssh_keys": [ssh_key("ci")],
                },
                "vms": vms,
            }
        )
    )
    return fleet


def test_ten_vms_two_libraries_one_broken(
    two_libraries: tuple[StandIn, StandIn], tmp_path: Path
) -> None:
    a, b = two_libraries
    root = tmp_path / "vms"
    proc = cli(
        "fleet", "build", str(_fleet(tmp_path, a, b)), "--root", str(root), "--jobs", "2", "--json"
    )
    assert proc.returncode == 1, proc.stderr  # not all built
    out = json_result(proc, ok=False)
    status = {v["name"]: v["status"] for v in out["vms"]}
    assert status.pop("b-broken") == "failed"
    assert set(status.values()) == {"built"} and len(status) == 9
    broken = next(v for v in out["vms"] if v["name"] == "b-broken")
    assert "mmtests is broken in lib-b" in broken["error"]
    # Each library revision is pinned once and shared by the VMs that use it.
    pins = {}
    for v in out["vms"]:
        lock = json.loads((root / v["name"] / "flake.lock").read_text())
        pins[v["name"]] = lock["nodes"]["nixos-flake"]["locked"]
    assert len({json.dumps(p, sort_keys=True) for n, p in pins.items() if n.startswith("a-")}) == 1
    assert len({json.dumps(p, sort_keys=True) for n, p in pins.items() if n.startswith("b-")}) == 1
    assert pins["a-0"] != pins["b-0"]
    # Library b's change reached its VMs only.
    recs = {
        v["name"]: json.loads((Path(v["toplevel"]) / "configuration.json").read_text())
        for v in out["vms"]
        if v["status"] == "built"
    }
    assert all(
        ("hello" in {p["pname"] for p in r["systemPackages"]}) == n.startswith("b-")
        for n, r in recs.items()
    )
    assert all(v["seconds"] > 0 for v in out["vms"])


def test_table_output_and_directory_fleet(stand_in: StandIn, tmp_path: Path) -> None:
    d = tmp_path / "machines"
    d.mkdir()
    (d / "defaults.yaml").write_text(
        f"library: {stand_in.library}\nprofiles: [devel]\ntest_suites: []\n"
    )
    (d / "web.yaml").write_text("user_name: web\n")
    (d / "db.json").write_text('{"test_suites": ["sysbench"]}')
    (d / "bad.yaml").write_text("profiles: [gaming]\n")
    proc = cli("fleet", "build", str(d), "--root", str(tmp_path / "vms"))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["VM", "status", "toplevel", "time"]
    rows = {ln.split()[0]: ln.split()[1] for ln in lines[1:-1]}
    assert rows == {"bad": "invalid", "db": "built", "web": "built"}
    assert "profiles[0]: unknown profile 'gaming'" in proc.stdout
    assert lines[-1] == "2/3 built"


def test_all_built_exits_0_and_passes_nix_options(stand_in: StandIn, tmp_path: Path) -> None:
    import shutil

    real = shutil.which("nix")
    log = tmp_path / "argv"
    shim = tmp_path / "nix"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    fleet = tmp_path / "f.yaml"
    fleet.write_text(
        f"defaults: {{library: {stand_in.library}, profiles: [], test_suites: []}}\n"
        "vms: {one: {}, two: {user_name: bob}}\n"
    )
    proc = cli(
        "fleet",
        "build",
        str(fleet),
        "--root",
        str(tmp_path / "vms"),
        "--max-jobs",
        "2",
        "--builders",
        "",
        "--json",
        env={"NIXLAYER_NIX": str(shim)},
    )
    assert proc.returncode == 0, proc.stderr
    builds = [ln for ln in log.read_text().splitlines() if ln.startswith("build ")]
    assert len(builds) == 2
    assert all("--option builders  --max-jobs 2" in ln for ln in builds)
    assert "--version" in log.read_text().splitlines()


def test_fleet_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "f.yaml"
    f.write_text("vms: 3\n")
    proc = cli("fleet", "build", str(f), "--root", str(tmp_path))
    assert proc.returncode == 2 and "vms:" in proc.stderr
    f.write_text("vms: [{vm_name: a}, {vm_name: a}]\n")
    proc = cli("fleet", "build", str(f), "--root", str(tmp_path))
    assert proc.returncode == 2 and "VM 'a' appears twice" in proc.stderr
