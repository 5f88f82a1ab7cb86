"""`nixlayer switch` and `prepare` over a stand-in runner base, with real Nix builds
and the stand-in's recording switch-to-configuration."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nixlayer.layer.protection import default_units
from tests.helpers import cli, json_result, run_nix
from tests.layer.conftest import NIXLIB, Layered, lock_job

pytestmark = pytest.mark.nix

SSHD_CHANGE = """{ lib, jobPkgs, ... }:
{
  systemd.services.sshd.serviceConfig.ExecStart = lib.mkForce "${jobPkgs.openssh}/bin/sshd -D -d";
}
"""
NIXPKGS_SWAP = """{ jobPkgs, ... }:
{
  nixpkgs.pkgs = jobPkgs;
  environment.systemPackages = [ jobPkgs.hello ];
}
"""


def _units(toplevel: str) -> dict[str, bytes]:
    d = Path(toplevel) / "etc/systemd/system"
    return {p.name: p.read_bytes() for p in d.iterdir()}


def test_job_layer_keeps_the_base_and_uses_its_own_nixpkgs(layered: Layered) -> None:
    proc = cli(*layered.args("--action", "dry-activate", "--json"), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    result = json_result(proc)
    job_units, base_units = _units(result["toplevel"]), _units(layered.base_toplevel)
    assert set(job_units) - set(base_units) == {"docker.service"}
    for name, data in base_units.items():
        assert job_units[name] == data, name  # byte-identical: nothing of the base moves
    hello = json.loads(
        run_nix(
            "eval", "--json", f"path:{layered.nixpkgs_b}#legacyPackages.x86_64-linux.hello.outPath"
        )
    )
    base_hello = json.loads(
        run_nix(
            "eval", "--json", f"path:{layered.nixpkgs_a}#legacyPackages.x86_64-linux.hello.outPath"
        )
    )
    record = json.loads((Path(result["toplevel"]) / "configuration.json").read_text())
    paths = {p["path"] for p in record["systemPackages"]}
    assert hello in paths and base_hello not in paths
    assert hello in job_units["docker.service"].decode()
    # sshd is protected by the base's module: restartIfChanged = false is rendered.
    assert b"X-RestartIfChanged=false" in job_units["sshd.service"]
    assert result["plan"]["start"] == [] and result["plan"]["stop"] == []
    assert result["activated"] is False
    assert layered.stc_calls() == [f"{result['toplevel']} dry-activate"]


def test_a_job_that_only_adds_units_switches(layered: Layered) -> None:
    proc = cli(*layered.args("--action", "switch"), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    toplevel = proc.stdout.split()[-1]
    assert layered.stc_calls() == [f"{toplevel} switch"]
    assert os.path.realpath(layered.profile) == toplevel
    assert "activated" in proc.stdout


def test_a_job_that_changes_sshd_is_refused(layered: Layered) -> None:
    job = layered.job_variant("sshd-job", SSHD_CHANGE)
    before = os.path.realpath(layered.profile)
    proc = cli(*layered.args(job=job), env=layered.env)
    assert proc.returncode == 3, proc.stderr
    assert "refusing to switch: 1 protected unit(s)" in proc.stderr
    assert (
        "sshd.service was changed" in proc.stderr and "[Service] ExecStart changed" in proc.stderr
    )
    assert layered.stc_calls() == []  # nothing activated
    assert os.path.realpath(layered.profile) == before


def test_allow_restart_is_explicit_and_logged(layered: Layered) -> None:
    job = layered.job_variant("sshd-job", SSHD_CHANGE)
    proc = cli(*layered.args("--allow-restart", "sshd.service", job=job), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    assert (
        "warning: allowing sshd.service to be stopped or restarted (--allow-restart; "
        "protected by sshd.service (default))" in proc.stderr
    )
    assert len(layered.stc_calls()) == 1


def test_a_job_that_swaps_the_base_nixpkgs_is_refused(layered: Layered) -> None:
    job = layered.job_variant("swap-job", NIXPKGS_SWAP)
    proc = cli(*layered.args("--json", job=job), env=layered.env)
    assert proc.returncode == 3, proc.stderr
    for unit in (
        "gitlab-runner.service",
        "nix-daemon.service",
        "sshd.service",
        "systemd-logind.service",
        "systemd-networkd.service",
    ):
        assert unit in proc.stderr, unit
    assert "cron.service" not in proc.stderr  # not protected: it may restart
    assert layered.stc_calls() == []
    # The envelope names each refused unit, its change and the protecting rule.
    refused = {r["unit"]: r for r in json_result(proc, ok=False)["refused"]}
    assert refused["sshd.service"]["change"] == "skip"
    assert refused["sshd.service"]["rule"] == "sshd.service (default)"
    assert "[Service] ExecStart" in refused["nix-daemon.service"]["cause"]
    assert all(r["rule"].endswith("(default)") for r in refused.values())
    assert json.loads(proc.stdout)["error"]["kind"] == "guard"


def test_protect_adds_units(layered: Layered) -> None:
    job = layered.job_variant(
        "cron-job", "{ lib, ... }: { systemd.services.cron.serviceConfig.Nice = 5; }"
    )
    assert cli(*layered.args("--action", "dry-activate", job=job), env=layered.env).returncode == 0
    proc = cli(*layered.args("--protect", "cron.service", job=job), env=layered.env)
    assert proc.returncode == 3 and "cron.service would be stopped" in proc.stderr


def test_the_runner_agents_own_unit_is_protected(layered: Layered) -> None:
    job = layered.job_variant(
        "cron-job", "{ lib, ... }: { systemd.services.cron.serviceConfig.Nice = 5; }"
    )
    (layered.root / "cgroup").write_text("0::/system.slice/cron.service\n")
    proc = cli(*layered.args(job=job), env=layered.env)
    assert proc.returncode == 3 and "cron.service would be stopped" in proc.stderr


def test_failed_activation_rolls_back(layered: Layered) -> None:
    before = os.path.realpath(layered.profile)
    dry = json_result(cli(*layered.args("--action", "dry-activate", "--json"), env=layered.env))
    new = dry["toplevel"]
    # Exit 2 (the activation script failed) for the new system only.
    env = {**layered.env, "NIXLAYER_FAKE_STC_EXIT": f"{Path(new).name[:32]}:2"}
    layered.stc_log.unlink()
    proc = cli(*layered.args("--action", "switch"), env=env)
    assert proc.returncode == 1, proc.stderr
    assert f"rolled back to {layered.base_toplevel}" in proc.stderr
    assert layered.stc_calls() == [f"{new} switch", f"{layered.base_toplevel} switch"]
    assert os.path.realpath(layered.profile) == before


def test_job_paths_with_spaces_and_odd_characters(layered: Layered) -> None:
    odd = layered.root / "builds/tok en/0/grp/my proj ?#é"
    shutil.copytree(layered.job, odd)
    proc = cli(
        *layered.args("--action", "dry-activate", "--json", job=odd),
        env={**layered.env, "XDG_CACHE_HOME": str(layered.root / "cache")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "staging" in proc.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing base", "base: '/nonexistent/base' (from --base) has no flake.nix"),
        ("no such configuration", "--name: the base"),
        ("no base input", "has no `base` input"),
        ("no flake", "FLAKE_DIR:"),
    ],
)
def test_bad_input_exit_2(layered: Layered, change: str, message: str) -> None:
    args = layered.args()
    if change == "missing base":
        args[args.index("--base") + 1] = "/nonexistent/base"
    elif change == "no such configuration":
        args[args.index("--name") + 1] = "nope"
    elif change == "no base input":
        job = layered.job_variant("no-base", "{ ... }: { }")
        text = (job / "flake.nix").read_text().replace('base.url = "path:/etc/nixos";', "")
        (job / "flake.nix").write_text(
            text.replace("      base,\n", "").replace("inherit base;", "base = { };")
        )
        args[1] = str(job)
    else:
        args[1] = str(layered.root / "empty")
        (layered.root / "empty").mkdir()
    proc = cli(*args, "-q", env=layered.env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_configuration_follows_the_host_name_then_default(layered: Layered) -> None:
    args = layered.args()
    i = args.index("--name")
    del args[i : i + 2]
    proc = cli(*args, env=layered.env)
    assert proc.returncode == 2
    assert "nixosConfigurations." in proc.stderr and "or default" in proc.stderr
    assert "(it has: other, runner)" in proc.stderr


def test_base_from_env_and_registry(layered: Layered) -> None:
    args = layered.args("--action", "dry-activate")
    i = args.index("--base")
    del args[i : i + 2]
    assert cli(*args, env={**layered.env, "NIXLAYER_BASE": str(layered.base)}).returncode == 0
    registry = layered.root / "registry.json"
    registry.write_text(
        json.dumps(
            {
                "version": 2,
                "flakes": [
                    {
                        "from": {"type": "indirect", "id": "nixlayer-base"},
                        "to": {"type": "path", "path": str(layered.base)},
                    }
                ],
            }
        )
    )
    proc = cli(*args, env={**layered.env, "NIXLAYER_REGISTRY": str(registry)})
    assert proc.returncode == 0, proc.stderr


def test_prepare_rewrites_only_the_base_entry(layered: Layered) -> None:
    moved = layered.root / "base-moved"
    shutil.copytree(layered.base, moved)
    before = json.loads((layered.job / "flake.lock").read_text())
    proc = cli("prepare", str(layered.job), "--base", str(moved), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    after = json.loads((layered.job / "flake.lock").read_text())
    assert after["nodes"]["base"]["locked"]["path"] == str(moved)
    assert after["nodes"]["base"]["original"] == before["nodes"]["base"]["original"]
    assert after["nodes"]["nixpkgs_2"] == before["nodes"]["nixpkgs_2"]
    # A plain build of the job (no override) now builds over the moved base.
    plain = json.loads(
        run_nix(
            "build",
            "--json",
            "--no-link",
            f"path:{layered.job}#nixosConfigurations.runner.config.system.build.toplevel",
        )
    )
    dry = json.loads(
        cli(*layered.args("--action", "dry-activate", "--json"), env=layered.env).stdout
    )["result"]
    assert plain[0]["outputs"]["out"] == dry["toplevel"]


def test_template_and_default_list(layered: Layered, tmp_path: Path) -> None:
    target = tmp_path / "new-job"
    target.mkdir()
    run_nix("flake", "init", "-t", f"path:{NIXLIB}#job", cwd=target)
    assert {p.name for p in target.iterdir()} == {"flake.nix", "job.nix"}
    lock_job(target, layered.nixpkgs_b, layered.base)
    proc = cli(*layered.args("--action", "dry-activate", job=target), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    # One list (nixlib/protected-units.json), read by the Nix library and by the guard.
    listed = json.loads(run_nix("eval", "--json", f"path:{NIXLIB}#lib.defaultProtectedUnits"))
    assert tuple(listed) == default_units("systemd") and "sshd.service" in listed


def test_switch_shows_the_closure_diff_before_activating(layered: Layered) -> None:
    """The job adds `hello` (revision B's) to the runner's closure: switch says so in its
    prediction, on the terminal and in the envelope, before anything is activated."""
    result = json_result(cli(*layered.args("--action", "dry-activate", "--json"), env=layered.env))
    closure = result["closure"]
    assert [p["name"] for p in closure["added"]] == ["hello"]
    assert closure["new_paths"] > closure["old_paths"] and closure["removed"] == []
    human = cli(*layered.args("--action", "dry-activate"), env=layered.env)
    assert human.returncode == 0, human.stderr
    assert "closure: " in human.stderr and "1 added, 0 removed" in human.stderr
    assert all(call.endswith(" dry-activate") for call in layered.stc_calls())
