from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, REPO, run_nix

NIXLIB = REPO / "nixlib"
FAKES = Path(__file__).parent / "fakes"


@dataclass(frozen=True)
class Layered:
    root: Path
    base: Path
    job: Path
    nixpkgs_a: Path
    nixpkgs_b: Path
    base_toplevel: str
    current: Path  # what /run/current-system would be: the base's system
    units: Path
    profile: Path
    runtime: Path
    stc_log: Path
    state_dir: Path
    systemd_dir: Path  # the fake systemd's records
    env: dict[str, str]

    def system_args(self) -> list[str]:
        """The running system's options, shared by switch and restore (as cli/switch.py's
        `_system_options` is)."""
        return [
            "--kind",
            "nixos",
            "--current",
            str(self.current),
            "--units",
            str(self.units),
            "--runtime-dir",
            str(self.runtime),
            "--profile",
            str(self.profile),
            "--state-dir",
            str(self.state_dir),
        ]

    def args(self, *extra: str, job: Path | None = None) -> list[str]:
        job_args = ["switch", str(job or self.job), "--base", str(self.base), "--name", "runner"]
        return [*job_args, *self.system_args(), *extra]

    def restore_args(self, *extra: str) -> list[str]:
        return ["restore", *self.system_args(), *extra]

    def systemd_run_calls(self) -> list[list[str]]:
        log = self.systemd_dir / "systemd-run.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def stc_calls(self) -> list[str]:
        return self.stc_log.read_text().splitlines() if self.stc_log.exists() else []

    def job_variant(self, name: str, job_nix: str) -> Path:
        d = self.root / name
        shutil.copytree(self.job, d)
        (d / "job.nix").write_text(job_nix)
        return d


def lock_job(job: Path, nixpkgs: Path, base: Path) -> None:
    run_nix(
        "flake",
        "lock",
        f"path:{job}",
        "--override-input",
        "nixpkgs",
        f"path:{nixpkgs}",
        "--override-input",
        "nixlayer",
        f"path:{NIXLIB}",
        "--override-input",
        "base",
        f"path:{base}",
    )


@pytest.fixture
def layered(tmp_path: Path, nix_available: None) -> Layered:
    return make_layered(tmp_path)


def make_layered(tmp_path: Path) -> Layered:
    """A runner base and a job, each on its own stand-in nixpkgs, locked and built."""
    a, b = tmp_path / "nixpkgs-a", tmp_path / "nixpkgs-b"
    shutil.copytree(FIXTURES / "nixpkgs", a)
    shutil.copytree(FIXTURES / "nixpkgs", b)
    (b / "pkgs/revision").write_text("stand-in-b\n")
    base, job = tmp_path / "base", tmp_path / "job"
    sm = tmp_path / "system-manager"
    shutil.copytree(FIXTURES / "system-manager", sm)
    shutil.copytree(FIXTURES / "runner-base", base)
    shutil.copytree(FIXTURES / "job", job)
    # The job's flake.nix is the shipped template itself; only job.nix is a fixture.
    shutil.copyfile(NIXLIB / "templates/job/flake.nix", job / "flake.nix")
    run_nix(
        "flake",
        "lock",
        f"path:{base}",
        "--override-input",
        "nixpkgs",
        f"path:{a}",
        "--override-input",
        "nixlayer",
        f"path:{NIXLIB}",
        "--override-input",
        "system-manager",
        f"path:{sm}",
    )
    lock_job(job, b, base)
    out = run_nix(
        "build",
        "--json",
        "--no-link",
        f"path:{base}#nixosConfigurations.runner.config.system.build.toplevel",
    )
    toplevel = json.loads(out)[0]["outputs"]["out"]
    current = tmp_path / "current-system"
    os.symlink(toplevel, current)
    units = tmp_path / "units.json"
    names = sorted(os.listdir(Path(toplevel) / "etc/systemd/system"))
    units.write_text(
        json.dumps(
            [{"unit": n, "load": "loaded", "active": "active", "sub": "running"} for n in names]
        )
    )
    profile = tmp_path / "profiles" / "system"
    profile.parent.mkdir()
    subprocess.run(
        ["nix-env", "-p", str(profile), "--set", toplevel], check=True, capture_output=True
    )
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("0::/system.slice/gitlab-runner.service\n")
    stc_log = tmp_path / "stc.log"
    systemd_dir = tmp_path / "fake-systemd"
    systemd_dir.mkdir()
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name, script, mode in (
        ("systemd-run", "systemd.py", "run"),
        ("systemctl", "systemd.py", "ctl"),
        ("stc", "stc.py", ""),
    ):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKES / script} {mode} "$@"\n')
        wrapper.chmod(0o755)
    env = {
        "NIXLAYER_SYSTEMD_RUN": str(bin_dir / "systemd-run"),
        "NIXLAYER_SYSTEMCTL": str(bin_dir / "systemctl"),
        "NIXLAYER_FAKE_SYSTEMD_DIR": str(systemd_dir),
        "NIXLAYER_FAKE_STC": str(bin_dir / "stc"),
        "NIXLAYER_FAKE_CURRENT": str(current),
        "NIXLAYER_FAKE_STC_LOG": str(stc_log),
        "NIXLAYER_CGROUP_FILE": str(cgroup),
        "NIXLAYER_REGISTRY": str(tmp_path / "no-registry.json"),
        "NIXLAYER_BASE": "",
    }
    return Layered(
        root=tmp_path,
        base=base,
        job=job,
        nixpkgs_a=a,
        nixpkgs_b=b,
        base_toplevel=toplevel,
        current=current,
        units=units,
        profile=profile,
        runtime=tmp_path / "run",
        stc_log=stc_log,
        state_dir=tmp_path / "state",
        systemd_dir=systemd_dir,
        env=env,
    )
