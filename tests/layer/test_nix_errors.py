"""Nix's errors and warnings reach the user whole, on whichever real Nix runs the tests
(2.8 prints `error: CAUSE`; 2.26 and 2.34 a bare `error:`, a trace, then the cause)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import StandIn, cli, json_result, ssh_key
from tests.layer.conftest import Layered

NOT_A_SET = "must be an attribute set"


def _broken_flake(layered: Layered) -> Path:
    """A flake.nix that is not a literal attribute set. Nix reads a job's flake as a flake
    (`nix flake metadata`, never `--file`), so this is the evaluation error a job's
    flake.nix can cause: newer Nix shows a trace before the cause."""
    job = layered.job_variant("broken-flake", (layered.job / "job.nix").read_text())
    text = (job / "flake.nix").read_text()
    (job / "flake.nix").write_text(f"let flake = {text}; in flake // {{ }}\n")
    return job


def test_prepare_names_the_evaluation_error(layered: Layered) -> None:
    job = _broken_flake(layered)
    proc = cli("prepare", str(job), "--base", str(layered.base), "--json", env=layered.env)
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert "flake.nix does not evaluate: file '/nix/store/" in error["message"]
    assert error["message"].endswith(NOT_A_SET)
    assert error["field"] == "FLAKE_DIR"


def test_switch_names_the_evaluation_error(layered: Layered) -> None:
    job = _broken_flake(layered)
    proc = cli(*layered.args("--action", "dry-activate", "--json", job=job), env=layered.env)
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout)["error"]["message"].endswith(NOT_A_SET)


def test_switch_names_a_throwing_job_module(layered: Layered) -> None:
    job = layered.job_variant("throwing", '{ ... }: throw "the job module is broken"\n')
    proc = cli(*layered.args("--action", "dry-activate", "--json", job=job), env=layered.env)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["kind"] == "nix" and error["message"] == "the job module is broken"
    assert "--log-format" not in error["nix"]["command"]  # pasteable as logged


def test_lock_relays_nix_warnings_with_their_input_lines(stand_in: StandIn, tmp_path: Path) -> None:
    src = tmp_path / "fio"
    src.mkdir()
    (src / "README").write_text("one\n")
    spec = tmp_path / "vm.json"
    spec.write_text(
        json.dumps(
            {
                "vm_name": "vm",
                "library": str(stand_in.library),
                "ssh_keys": [ssh_key("ci")],
                "profiles": [],
                "test_suites": [],
                "overrides": [{"pkg": "fio", "src": str(src)}],
            }
        )
    )
    root = tmp_path / "vms"
    assert cli("render", str(spec), "--root", str(root), "-q").returncode == 0
    created = json.loads(cli("lock", str(root / "vm"), "--json").stdout)["warnings"]
    # "creating lock file": quoted differently by each version, always naming the file.
    assert any(w.startswith("nix: creating lock file") for w in created), created
    assert any(str(root / "vm" / "flake.lock") in w for w in created), created
    (src / "README").write_text("two\n")
    proc = cli("lock", str(root / "vm"), "--json")
    json_result(proc)
    (updated,) = [w for w in json.loads(proc.stdout)["warnings"] if "updating lock" in w]
    lines = updated.splitlines()
    assert "• Updated input 'fio-src':" in lines
    assert sum(line.strip().startswith(f"'path:{src}") for line in lines) == 1
    assert sum(line.strip().startswith(f"→ 'path:{src}") for line in lines) == 1
    assert "• Updated input 'fio-src':" in proc.stderr  # and on the terminal, whole
