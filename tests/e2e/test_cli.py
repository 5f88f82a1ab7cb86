"""The installed `nixlayer` command, as users run it."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import StandIn, cli, json_result, nixlayer_bin, run_on_terminal, ssh_key

pytestmark = pytest.mark.e2e


def _spec(tmp_path: Path, stand_in: StandIn, name: str = "vm", **extra: Any) -> Path:
    data: dict[str, object] = {
        "vm_name": name,
        "library": str(stand_in.library),
        "profiles": ["devel"],
        "test_suites": ["ltp"],
        "ssh_keys": [ssh_key("ci@runner")],
    }
    data.update(extra)
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(data))
    return f


def test_run_prints_the_closure_as_json(stand_in: StandIn, tmp_path: Path) -> None:
    proc = cli(
        "run", str(_spec(tmp_path, stand_in)), "--root", str(tmp_path / "vms"), "--json", "--show"
    )
    assert proc.returncode == 0, proc.stderr
    out = json_result(proc)
    assert set(out) == {"toplevel", "init", "initrd", "config_dir"}
    assert out["config_dir"] == str(tmp_path / "vms" / "vm")
    assert "--- " + str(tmp_path / "vms/vm/default.nix") in proc.stderr  # files shown
    assert "$ nix build 'path:" in proc.stderr  # pasteable commands


def test_steps_one_by_one_and_flag_overrides(stand_in: StandIn, tmp_path: Path) -> None:
    spec = _spec(tmp_path, stand_in)
    root = tmp_path / "r"
    r = cli(
        "render",
        str(spec),
        "--root",
        str(root),
        "--vm-name",
        "other",
        "--profile",
        "build-tools",
        "--set",
        "shares={/mnt/x: {tag: x}}",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    default = (root / "other" / "default.nix").read_text()
    assert "profiles.build-tools" in default and "profiles.devel" not in default
    assert 'nixos-flake.shares."/mnt/x"' in default
    lk = cli("lock", str(root / "other"), "--json")
    assert lk.returncode == 0, lk.stderr
    assert json_result(lk)["lock_file"] == str(root / "other" / "flake.lock")
    b = cli("build", str(root / "other"), "--out-link", str(tmp_path / "gcroot"))
    assert b.returncode == 0, b.stderr
    lines = dict(line.split("=", 1) for line in b.stdout.splitlines())
    assert lines["toplevel"] == str((tmp_path / "gcroot").resolve())


def test_env_root_and_workers_dir(stand_in: StandIn, tmp_path: Path) -> None:
    spec = str(_spec(tmp_path, stand_in))
    assert cli("render", spec, "-q", env={"NIXLAYER_ROOT": str(tmp_path / "a")}).returncode == 0
    assert (tmp_path / "a/vm/flake.nix").is_file()
    env = {"WORKERS_DIR": str(tmp_path / "w"), "WORKER_INDEX": "3"}
    assert cli("render", spec, "-q", env=env).returncode == 0
    assert (tmp_path / "w/3/nix/vm/default.nix").is_file()


BAD_INPUTS = [
    ({"profiles": ["devel", "gaming"]}, "profiles[1]: unknown profile 'gaming'"),
    ({"test_suites": ["xfs"]}, "test_suites[0]: unknown test suite 'xfs'"),
    ({"vm_name": "../x"}, "vm_name: must be a host name NixOS accepts"),
    ({"ssh_keys": ["ssh-ed25519 AAAA"]}, "ssh_keys[0]: key data"),
    ({"shares": {"/a": {"tag": "t"}, "/b": {"tag": "t"}}}, "shares: tag 't' is used by"),
    ({"shares": {"/a": {"tag": "store"}}}, "shares['/a'].tag: tag 'store' is reserved"),
    ({"shares": {"mnt": {"tag": "t"}}}, "shares: mount point 'mnt' must be absolute"),
    ({"library": "/nonexistent/lib"}, "library: '/nonexistent/lib': no such directory"),
    ({"overrides": [{"pkg": "fio", "src": "/nonexistent/fio"}]}, "overrides[0].src:"),
    ({"profiles": ["controller"]}, "profiles[0]: 'controller' is a host role"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_nothing_written(
    stand_in: StandIn, tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    root = tmp_path / "vms"
    for command in ("render", "run"):
        proc = cli(command, str(_spec(tmp_path, stand_in, **extra)), "--root", str(root))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("nixlayer: error: ") and message in proc.stderr
        assert proc.stdout == ""
        assert not root.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("spec.yaml", "vm_name: [unclosed", "invalid YAML at line 1"),
        ("spec.yaml", "- a\n- b\n", "expected a mapping"),
        ("spec.json", "{bad json", "invalid JSON at line 1"),
    ],
)
def test_unparsable_spec(tmp_path: Path, name: str, content: str, message: str) -> None:
    f = tmp_path / name
    f.write_text(content)
    proc = cli("render", str(f), "--root", str(tmp_path / "vms"))
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "vms").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert cli("render").returncode == 2
    assert cli("frobnicate").returncode == 2
    missing = cli("render", str(tmp_path / "nope.yaml"), "--root", str(tmp_path))
    assert missing.returncode == 2 and "SPEC: cannot read" in missing.stderr
    no_root = cli("render", "-", input_text="vm_name: x\nlibrary: /tmp\n")
    assert no_root.returncode == 2 and "root: no config root" in no_root.stderr


def test_out_link_inside_config_dir_is_refused(stand_in: StandIn, tmp_path: Path) -> None:
    assert (
        cli("render", str(_spec(tmp_path, stand_in)), "--root", str(tmp_path), "-q").returncode == 0
    )
    proc = cli("build", str(tmp_path / "vm"), "--out-link", str(tmp_path / "vm" / "result"))
    assert proc.returncode == 2 and "out_link:" in proc.stderr


def test_failing_nix_shows_its_error_exit_1(own_stand_in: StandIn, tmp_path: Path) -> None:
    module = own_stand_in.library / "modules/testSuites/ltp.nix"
    module.write_text('{ ... }: throw "ltp is broken here"')
    proc = cli("run", str(_spec(tmp_path, own_stand_in)), "--root", str(tmp_path / "vms"), "-q")
    assert proc.returncode == 1
    assert "nixlayer: error: nix failed" in proc.stderr
    assert "ltp is broken here" in proc.stderr


def test_schema_is_json_schema() -> None:
    proc = cli("schema")
    schema = json.loads(proc.stdout)
    assert schema["title"] == "VMSpec" and "vm_name" in schema["required"]
    assert set(schema["properties"]) >= {
        "profiles",
        "test_suites",
        "shares",
        "overrides",
        "ssh_keys",
    }


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [nixlayer_bin(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_runs_on_one_vm_serialize_and_other_vms_proceed(stand_in: StandIn, tmp_path: Path) -> None:
    root = tmp_path / "vms"
    a, b = _spec(tmp_path, stand_in, "vm-a"), _spec(tmp_path, stand_in, "vm-b")
    (root / ".nixlayer" / "locks").mkdir(parents=True)
    fd = os.open(root / ".nixlayer" / "locks" / "vm-a.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        waiting = _start("render", str(a), "--root", str(root))
        other = _start("render", str(b), "--root", str(root), "-q")
        assert other.wait(timeout=30) == 0  # a different VM is not held up
        time.sleep(1.0)
        assert waiting.poll() is None  # the same VM waits for the lock
        assert not (root / "vm-a").exists()
    finally:
        os.close(fd)
    assert waiting.wait(timeout=30) == 0
    assert "waiting for another nixlayer run on vm-a" in (
        waiting.stderr.read() if waiting.stderr else ""
    )
    assert (root / "vm-a" / "default.nix").is_file()


def test_concurrent_full_runs_on_one_vm_both_succeed(stand_in: StandIn, tmp_path: Path) -> None:
    spec = _spec(tmp_path, stand_in)
    procs = [
        _start("run", str(spec), "--root", str(tmp_path / "vms"), "--json", "-q") for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert len({json.loads(o)["result"]["toplevel"] for o, _ in outs}) == 1
    json.loads((tmp_path / "vms" / "vm" / "flake.lock").read_text())


def test_progress_on_a_terminal(stand_in: StandIn, tmp_path: Path) -> None:
    assert (
        cli("render", str(_spec(tmp_path, stand_in)), "--root", str(tmp_path), "-q").returncode == 0
    )
    code, screen, out = run_on_terminal("build", str(tmp_path / "vm"), timeout=60)
    assert code == 0, screen
    # The logged command pastes as the user would type it: without the progress flags
    # nixlayer adds; the progress Nix then logs is parsed, never shown raw.
    assert "$ nix build " in screen and "--log-format" not in screen
    assert "@nix {" not in screen
    assert "toplevel=" in out


def test_interrupt_exits_130_and_writes_nothing(stand_in: StandIn, tmp_path: Path) -> None:
    import signal

    root = tmp_path / "vms"
    (root / ".nixlayer" / "locks").mkdir(parents=True)
    fd = os.open(root / ".nixlayer" / "locks" / "vm.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        proc = _start("render", str(_spec(tmp_path, stand_in)), "--root", str(root))
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        os.close(fd)
    assert not (root / "vm").exists()


def test_render_shows_files_only_when_asked_and_lock_names_what_moved(
    stand_in: StandIn, tmp_path: Path
) -> None:
    spec = str(_spec(tmp_path, stand_in))
    quiet = cli("render", spec, "--root", str(tmp_path / "vms"))
    assert quiet.returncode == 0 and "--- " not in quiet.stderr
    assert quiet.stdout.startswith("rendered ")
    shown = cli("render", spec, "--root", str(tmp_path / "vms"), "--show", "--vm-name", "b")
    assert "--- " + str(tmp_path / "vms/b/flake.nix") in shown.stderr
    first = cli("lock", str(tmp_path / "vms/vm"))
    assert first.returncode == 0 and "(pinned nixos-flake" in first.stdout
    again = cli("lock", str(tmp_path / "vms/vm"))
    assert "(no pin moved)" in again.stdout


def _broken_build(own_stand_in: StandIn, tmp_path: Path) -> Path:
    overlay = own_stand_in.library / "overlays/default.nix"
    overlay.write_text(
        overlay.read_text().replace(
            "  own = {",
            "  own = {\n"
            '    ltp = prev.mkDerivation { pname = "ltp"; buildCommand = '
            '"for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo ltp step $i; done; '
            'echo ltp: cannot find kernel headers; exit 2"; };',
        )
    )
    spec = _spec(tmp_path, own_stand_in)
    assert cli("render", str(spec), "--root", str(tmp_path / "vms"), "-q").returncode == 0
    return tmp_path / "vms" / "vm"


def test_failed_build_shows_its_log_in_a_pipe(own_stand_in: StandIn, tmp_path: Path) -> None:
    cdir = _broken_build(own_stand_in, tmp_path)
    proc = cli("build", str(cdir))
    assert proc.returncode == 1
    assert "> ltp: cannot find kernel headers" in proc.stderr
    assert re.search(r"For full logs, run(:\s+|\s+')nix log /nix/store/", proc.stderr)
    env = json.loads(cli("build", str(cdir), "--json").stdout)
    assert "cannot find kernel headers" in env["error"]["nix"]["stderr"]


def test_failed_build_shows_its_log_on_a_terminal(own_stand_in: StandIn, tmp_path: Path) -> None:
    """With a terminal nixlayer asks Nix for internal-json (for progress), where Nix
    leaves the log tail out of its error: nixlayer puts it back."""
    cdir = _broken_build(own_stand_in, tmp_path)
    code, screen, _ = run_on_terminal("build", str(cdir), timeout=60)
    assert code == 1, screen
    # Progress came from Nix's internal-json, yet the command is logged as it pastes.
    assert re.search(r"nix: \[\d+/\d+\] building", screen), screen
    assert "--log-format" not in screen
    assert "> ltp step 12" in screen and "> ltp: cannot find kernel headers" in screen
    assert "> ltp step 2\r" not in screen  # the last 10 lines, not all
    assert "For full logs, run 'nix log /nix/store/" in screen


def _written(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize(
    ("content", "args", "field"),
    [
        ('{"vm_name": "vm", "user_name": "\\ud800"}', (), "user_name"),
        ('{"vm_name": "' + "a" * 300 + '"}', (), "vm_name"),
        ('{"vm_name": "vm", "vm_name": "vm2"}', (), "SPEC"),
        ('{"vm_name": "vm"}', ("--set", "shares={/a: [unclosed"), "shares"),
        ('{"vm_name": "vm"}', ("--set", "a=&x [1]"), "a"),
        ('{"vm_name": "vm"}', ("--catalog", "CATALOG"), "--catalog"),
        ('{"vm_name": "vm"}', ("--root", "/proc/1"), "root"),
        ('{"vm_name": "vm"}', ("--root", "FILE"), "root"),
    ],
)
def test_hostile_input_is_one_line_exit_2_nothing_written(
    stand_in: StandIn, tmp_path: Path, content: str, args: tuple[str, ...], field: str
) -> None:
    spec = tmp_path / "vm.json"
    spec.write_text(content[:-1] + f', "library": "{stand_in.library}"}}')
    (tmp_path / "cat.json").write_bytes(b'{"profiles": ["caf\xe9"]}')
    (tmp_path / "file").write_text("x")
    argv = [
        a.replace("CATALOG", str(tmp_path / "cat.json")).replace("FILE", str(tmp_path / "file"))
        for a in args
    ]
    root = tmp_path / "vms"
    if "--root" not in argv:
        argv += ["--root", str(root)]
    for command in ("render", "run"):
        proc = cli(command, str(spec), *argv, "--json")
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        env = json.loads(proc.stdout)
        assert env["error"]["field"] == field, env
        assert _written(root) == []
    assert (tmp_path / "file").read_text() == "x"


def test_damaged_flake_lock_is_bad_input(stand_in: StandIn, tmp_path: Path) -> None:
    assert (
        cli("render", str(_spec(tmp_path, stand_in)), "--root", str(tmp_path), "-q").returncode == 0
    )
    for text in (
        "{not json",
        '{"nodes": 3}',
        '{"nodes": {"root": {"inputs": {"x": "y"}}}, "root": "root"}',
    ):
        (tmp_path / "vm" / "flake.lock").write_text(text)
        proc = cli("lock", str(tmp_path / "vm"))
        assert proc.returncode == 2 and proc.stderr.startswith("nixlayer: error: flake.lock: ")
        assert proc.stderr.count("\n") == 1
