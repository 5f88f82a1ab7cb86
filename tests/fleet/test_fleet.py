"""`nixlayer fleet build` on real Nix: two libraries, ten VMs, one broken."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.helpers import StandIn, cli, json_result, make_stand_in, run_on_terminal, ssh_key

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
    status = {v["vm_name"]: v["status"] for v in out["vms"]}
    assert status.pop("b-broken") == "failed"
    assert set(status.values()) == {"built"} and len(status) == 9
    broken = next(v for v in out["vms"] if v["vm_name"] == "b-broken")
    assert "mmtests is broken in lib-b" in broken["error"]
    assert "mmtests is broken in lib-b" in Path(broken["log_file"]).read_text()
    # Each library revision is pinned once and shared by the VMs that use it.
    pins = {}
    for v in out["vms"]:
        lock = json.loads((root / v["vm_name"] / "flake.lock").read_text())
        pins[v["vm_name"]] = lock["nodes"]["nixos-flake"]["locked"]
    assert len({json.dumps(p, sort_keys=True) for n, p in pins.items() if n.startswith("a-")}) == 1
    assert len({json.dumps(p, sort_keys=True) for n, p in pins.items() if n.startswith("b-")}) == 1
    assert pins["a-0"] != pins["b-0"]
    # Library b's change reached its VMs only.
    recs = {
        v["vm_name"]: json.loads((Path(v["toplevel"]) / "configuration.json").read_text())
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
    assert lines[0].split() == ["VM", "status", "time", "toplevel", "/", "error"]
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


def _failing_fleet(stand_in: StandIn, tmp_path: Path) -> Path:
    """Two good VMs, one whose xfsprogs (a git checkout without configure) fails to
    build, one malformed spec file and one name full of rich markup."""
    import subprocess

    repo = tmp_path / "xfsprogs"
    repo.mkdir()
    (repo / "include").mkdir()
    (repo / "include/install-sh").write_text("#!/bin/sh\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env, timeout=60)
    d = tmp_path / "machines"
    d.mkdir()
    (d / "defaults.yaml").write_text(
        f"library: {stand_in.library}\nprofiles: []\ntest_suites: [ltp]\nhome: false\n"
    )
    (d / "good.yaml").write_text("{}\n")
    (d / "xfs.yaml").write_text(
        f"test_suites: [fstests]\noverrides: [{{pkg: xfsprogs, src: 'git+file://{repo}'}}]\n"
    )
    (d / "broken.yaml").write_text("profiles: [unclosed\n")
    (d / "[bold]x.yaml").write_text("{}\n")
    (d / "bad.yaml").write_text('profiles: ["[/p]"]\n')
    return d


def test_failures_you_can_debug(stand_in: StandIn, tmp_path: Path) -> None:
    d = _failing_fleet(stand_in, tmp_path)
    root = tmp_path / "vms"
    proc = cli("fleet", "build", str(d), "--root", str(root), "--json")
    assert proc.returncode == 1, proc.stderr
    out = {v["vm_name"]: v for v in json_result(proc, ok=False)["vms"]}
    assert {n: v["status"] for n, v in out.items()} == {
        "[bold]x": "invalid",
        "bad": "invalid",
        "broken": "invalid",
        "good": "built",
        "xfs": "failed",
    }
    assert "invalid YAML at line" in out["broken"]["error"]  # that VM, not the fleet
    xfs = out["xfs"]
    # One line: Nix's error without its dangling `;`, the last log line, the hint.
    assert "builder for" in xfs["error"] and "failed with exit code" in xfs["error"]
    assert ";;" not in xfs["error"] and not xfs["error"].endswith(";")
    assert "autoreconf" in xfs["error"] and "see `nix log /nix/store/" in xfs["error"]
    # Whole: the command and every log line Nix kept, in JSON and in the VM's log.
    assert "last 10 log lines" in xfs["log"] or "last log lines:" in xfs["log"]
    assert "$ nix" in xfs["log"] and "autoreconfPhase: autoreconf" in xfs["log"]
    log = Path(xfs["log_file"])
    assert log == root / ".nixlayer/logs/xfs.log" and xfs["log"] in log.read_text()
    # Each VM's own time, not the fleet's: the invalid ones took none.
    assert out["broken"]["seconds"] == 0.0 and out["good"]["seconds"] > 0
    # Progress on a pipe: one line per VM as it finishes.
    assert "fleet: [" in proc.stderr and "xfs failed in" in proc.stderr

    table = cli("fleet", "build", str(d), "--root", str(root))
    assert table.returncode == 1, table.stderr
    assert "Traceback" not in table.stderr
    rows = {ln.split()[0]: ln for ln in table.stdout.splitlines()[1:-1]}
    assert set(rows) == {"[bold]x", "bad", "broken", "good", "xfs"}  # markup shown, not parsed
    assert "unknown profile '[/p]'" in rows["bad"]
    assert "see `nix log" in rows["xfs"] and "(log: " in rows["xfs"]
    assert len(rows["xfs"]) < 400  # shortened in the table


def test_fleet_progress_on_a_terminal(stand_in: StandIn, tmp_path: Path) -> None:

    fleet = tmp_path / "f.yaml"
    fleet.write_text(
        f"defaults: {{library: {stand_in.library}, profiles: [], test_suites: [], home: false}}\n"
        "vms: {one: {}, two: {}}\n"
    )
    code, screen, _ = run_on_terminal(
        "fleet", "build", str(fleet), "--root", str(tmp_path / "vms"), timeout=120
    )
    assert code == 0, screen
    assert "fleet: " in screen and "done" in screen


def test_an_invalid_vm_is_logged_as_invalid_not_built(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from nixlayer.closure.fleet import fleet_build
    from nixlayer.closure.fleetspec import FleetEntry

    caplog.set_level("INFO", logger="nixlayer")
    (out,) = fleet_build([FleetEntry("bad vm", None, "vm_name: not a host name")],
                         root=tmp_path / "r")  # fmt: skip
    assert out.status == "invalid"
    assert "bad vm: invalid: vm_name: not a host name" in caplog.text
    assert "built" not in caplog.text
