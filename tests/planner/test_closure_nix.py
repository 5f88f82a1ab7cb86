"""Closure diff and plans from flake references, on two toplevels built by real Nix from
two revisions of the stand-in nixpkgs (every store path differs between them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from nixlayer.nix.runner import Nix
from nixlayer.planner.closure_diff import closure_diff, closure_of
from nixlayer.planner.systems import build_system
from tests.helpers import FIXTURES, cli, json_result, run_nix

pytestmark = pytest.mark.nix

OLD = """{ pkgs, ... }: {
  networking.hostName = "vm";
  environment.systemPackages = [ pkgs.hello pkgs.vim pkgs.gdb pkgs.strace ];
  systemd.services.web = { script = "exec web --port 80"; };
  systemd.services.sshd = { stopIfChanged = false; serviceConfig.ExecStart = "/bin/sshd"; };
}
"""
NEW = """{ pkgs, ... }: {
  networking.hostName = "vm";
  environment.systemPackages = [
    (pkgs.hello.overrideAttrs { version = "2.0"; })
    (pkgs.vim.overrideAttrs {
      buildCommand = ''
        mkdir -p "$out/bin"
        printf '#!/bin/sh\\necho vim\\n' > "$out/bin/vim"
        head -c 65536 /dev/zero > "$out/bin/vim-runtime"
      '';
    })
    pkgs.strace
    pkgs.git
  ];
  systemd.services.web = { script = "exec web --port 8080"; };
  systemd.services.sshd = { stopIfChanged = false; serviceConfig.ExecStart = "/bin/sshd"; };
}
"""


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("nix") is None:
        pytest.skip("nix is not installed")
    base = tmp_path_factory.mktemp("closure")
    for rev in ("a", "b"):
        shutil.copytree(FIXTURES / "nixpkgs", base / f"nixpkgs-{rev}")
        (base / f"nixpkgs-{rev}/pkgs/revision").write_text(f"stand-in-{rev}")
    flake = base / "systems"
    flake.mkdir()
    (flake / "old.nix").write_text(OLD)
    (flake / "new.nix").write_text(NEW)
    (flake / "flake.nix").write_text(
        "{\n"
        f'  inputs.nixpkgs-a.url = "path:{base}/nixpkgs-a";\n'
        f'  inputs.nixpkgs-b.url = "path:{base}/nixpkgs-b";\n'
        "  outputs = { self, nixpkgs-a, nixpkgs-b }: {\n"
        "    nixosConfigurations.old = nixpkgs-a.lib.nixosSystem { modules = [ ./old.nix ]; };\n"
        "    nixosConfigurations.new = nixpkgs-b.lib.nixosSystem { modules = [ ./new.nix ]; };\n"
        "  };\n}\n"
    )
    return flake


def by_name(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in changes}


def test_closure_diff_of_two_revisions(systems: Path) -> None:
    nix = Nix()
    old = str(build_system(f"path:{systems}#old", "nixos", nix))
    new = str(build_system(f"path:{systems}#new", "nixos", nix))
    assert old != new
    diff = closure_diff(old, new, nix)
    assert [c.name for c in diff.added] == ["git"]
    assert [c.name for c in diff.removed] == ["gdb"]
    hello = next(c for c in diff.version if c.name == "hello")
    assert (hello.old_versions, hello.new_versions) == (["1.0"], ["2.0"])
    vim = next(c for c in diff.size if c.name == "vim")
    assert vim.old_versions == vim.new_versions == ["1.0"] and vim.size_delta > 60000
    assert "strace" not in {c.name for c in [*diff.version, *diff.size]}  # same version and size
    assert diff.new_size > diff.old_size
    # One path-info of both systems, split by references: each closure is what Nix lists
    # for that system alone.
    for system, count in ((old, diff.old_paths), (new, diff.new_paths)):
        alone = set(run_nix("path-info", "--recursive", system).split())
        assert count == len(alone) and set(closure_of(system, nix)) == alone


def test_plan_from_flake_references(systems: Path, tmp_path: Path) -> None:
    units = tmp_path / "units.json"
    units.write_text(
        json.dumps(
            [
                {"unit": u, "load": "loaded", "active": "active", "sub": "running"}
                for u in ("web.service", "sshd.service")
            ]
        )
    )
    args = ["plan", "--from", f"path:{systems}#old", "--to", f"path:{systems}#new"]
    args += ["--units", str(units), "--runtime-dir", str(tmp_path / "run")]
    proc = cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json_result(proc)
    assert doc["from_system"].startswith("/nix/store/") and doc["to_system"].endswith("-vm-26.05")
    plan = doc["switch"]
    assert plan["stop"] == ["web.service"] and plan["start"] == ["web.service"]
    assert plan["lines"] == [
        "stopping the following units: web.service",
        "activating the configuration...",
        "restarting sysinit-reactivation.target",
        "starting the following units: web.service",
    ]
    closure = doc["closure"]
    assert by_name(closure["added"])["git"]["new_versions"] == ["1.0"]
    assert by_name(closure["version"])["hello"]["new_versions"] == ["2.0"]
    md = cli(*args, "--format", "markdown")
    assert md.returncode == 0, md.stderr
    assert "<summary>Packages (3)</summary>" in md.stdout
    assert "| <code>hello</code> | version | 1.0 | 2.0 |" in md.stdout
