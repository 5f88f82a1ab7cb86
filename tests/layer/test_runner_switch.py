"""Switching a real runner: the transient unit, switch-to-configuration's exit codes,
inhibitors, the exact rollback, interrupted runs and `restore` (real Nix builds; stand-in
systemd-run and switch-to-configuration from tests/layer/fakes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import cli, json_result, nixlayer_bin
from tests.layer.conftest import Layered
from tests.layer.test_switch import SSHD_CHANGE

pytestmark = pytest.mark.nix

INHIBITOR_CHANGE = """{ lib, ... }:
{
  system.switch.inhibitors = lib.mkForce {
    systemd = "/nix/store/00000000000000000000000000000000-systemd-259";
  };
}
"""


def _new_toplevel(layered: Layered, job: Path | None = None) -> str:
    """The job's system, built by a dry-activate (which activates nothing)."""
    proc = cli(*layered.args("--action", "dry-activate", "--json", job=job), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    toplevel: str = json_result(proc)["toplevel"]
    layered.stc_log.unlink(missing_ok=True)
    return toplevel


def _generation(profile: Path) -> str:
    return os.readlink(profile)


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_activation_survives_a_kill_of_nixlayer(layered: Layered) -> None:
    new = _new_toplevel(layered)
    gate = layered.root / "gate"
    env = {**os.environ, **layered.env, "NIXLAYER_FAKE_STC_GATE": str(gate)}
    proc = subprocess.Popen(
        [nixlayer_bin(), *layered.args("--transient", "--action", "test")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _wait_for(Path(f"{gate}.started"))  # switch-to-configuration is mid-way
    os.killpg(proc.pid, signal.SIGKILL)  # as a cancelled job's process group is
    proc.communicate(timeout=30)
    assert os.path.realpath(layered.current) == layered.base_toplevel
    gate.write_text("")  # let the activation go on without nixlayer
    (call,) = layered.systemd_run_calls()
    unit = next(a.split("=", 1)[1] for a in call if a.startswith("--unit="))
    _wait_for(layered.systemd_dir / f"{unit}.exit")
    assert os.path.realpath(layered.current) == new  # it finished: the new system runs
    assert call[:6] == [
        "-E",
        "LOCALE_ARCHIVE",
        "-E",
        "NIXOS_INSTALL_BOOTLOADER",
        "-E",
        "NIXOS_NO_CHECK",
    ]
    assert {"--collect", "--no-ask-password", "--wait", "--service-type=exec"} <= set(call)
    assert call[-2:] == [f"{new}/bin/switch-to-configuration", "test"]
    assert unit.startswith("nixlayer-activate-") and "--pipe" not in call
    log = next(a for a in call if a.startswith("--property=StandardOutput=append:"))
    assert "stand-in switch-to-configuration test" in Path(log.split(":", 1)[1]).read_text()
    # The next run learns how the interrupted one ended, then returns to the base.
    restored = cli(*layered.restore_args("--json"), env=layered.env)
    assert restored.returncode == 0, restored.stderr
    assert "interrupted activation of" in restored.stderr and "keeping it" in restored.stderr
    assert json_result(restored)["action"] == "test"
    assert os.path.realpath(layered.current) == layered.base_toplevel


def test_transient_start_failure_is_retried_once(layered: Layered) -> None:
    new = _new_toplevel(layered)
    env = {**layered.env, "NIXLAYER_FAKE_SYSTEMD_FAIL_FIRST": "1"}
    proc = cli(*layered.args("--transient", "--json"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(layered.systemd_run_calls()) == 2 and "trying once more" in proc.stderr
    assert len(json_result(proc)["transient_units"]) == 2
    assert os.path.realpath(layered.current) == new


def test_exit_4_keeps_the_new_system_and_reports(layered: Layered) -> None:
    new = _new_toplevel(layered)
    env = {**layered.env, "NIXLAYER_FAKE_STC_EXIT": f"{Path(new).name[:32]}:4"}
    proc = cli(*layered.args("--action", "switch", "--json"), env=env)
    assert proc.returncode == 1, proc.stderr
    result = json_result(proc, ok=False)
    assert result["outcome"] == "units-failed" and result["failed_units"] == ["docker.service"]
    assert result["activated"] is True
    assert "some units failed: docker.service; nothing was rolled back" in proc.stderr
    assert layered.stc_calls() == [f"{new} switch"]  # no rollback: nothing bounced again
    assert os.path.realpath(layered.current) == new
    assert os.path.realpath(layered.profile) == new


def test_failed_pre_switch_check_rolls_nothing_back(layered: Layered) -> None:
    new = _new_toplevel(layered)
    before = _generation(layered.profile)
    env = {**layered.env, "NIXLAYER_FAKE_STC_CHECK_FAIL": Path(new).name[:32]}
    proc = cli(*layered.args("--action", "switch", "--json"), env=env)
    assert proc.returncode == 3, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert "pre-switch check 'diskSpace' failed" in error["message"]
    assert "not enough space in /boot" in error["message"]
    assert layered.stc_calls() == [f"{new} switch"]  # the old system is not re-activated
    assert _generation(layered.profile) == before  # the profile is where it was
    assert os.path.realpath(layered.current) == layered.base_toplevel


def test_inhibitors_refuse_or_switch_at_next_boot(layered: Layered) -> None:
    job = layered.job_variant("inhibited", INHIBITOR_CHANGE)
    new = _new_toplevel(layered, job)  # dry-activate skips the inhibitor check
    refused = cli(*layered.args("--action", "switch", "--json", job=job), env=layered.env)
    assert refused.returncode == 3, refused.stderr
    assert "switch inhibitors differ" in refused.stderr and "systemd:" in refused.stderr
    assert "--on-inhibit boot" in refused.stderr
    assert list(json_result(refused, ok=False)["inhibitors"]) == ["systemd"]
    assert layered.stc_calls() == []
    test = cli(*layered.args("--action", "test", job=job), env=layered.env)
    assert test.returncode == 3 and "cannot fall back to the next boot" in test.stderr
    boot = cli(
        *layered.args("--action", "switch", "--on-inhibit", "boot", "--json", job=job),
        env=layered.env,
    )
    assert boot.returncode == 0, boot.stderr
    result = json_result(boot)
    assert (result["action"], result["requested_action"]) == ("boot", "switch")
    assert result["reboot_needed"] is True and result["activated"] is False
    assert "a reboot is needed" in boot.stderr
    assert layered.stc_calls() == [f"{new} boot"]
    assert os.path.realpath(layered.profile) == new  # the boot default
    assert os.path.realpath(layered.current) == layered.base_toplevel  # nothing bounced


def test_nixos_no_check_skips_the_inhibitor_check(layered: Layered) -> None:
    job = layered.job_variant("inhibited", INHIBITOR_CHANGE)
    new = _new_toplevel(layered, job)
    proc = cli(*layered.args(job=job), env={**layered.env, "NIXOS_NO_CHECK": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "NIXOS_NO_CHECK=1 skips" in proc.stderr
    assert os.path.realpath(layered.current) == new


def test_rollback_goes_to_the_exact_generation(layered: Layered) -> None:
    new = _new_toplevel(layered)
    assert cli(*layered.args("--action", "switch"), env=layered.env).returncode == 0
    at_new = _generation(layered.profile)  # system-2-link -> the job's system
    # The same system again, failing: `nix-env --set` makes no new generation, so a
    # `--rollback` would land on the base (one too far).
    env = {**layered.env, "NIXLAYER_FAKE_STC_EXIT": f"{Path(new).name[:32]}:2"}
    proc = cli(*layered.args("--action", "switch", "--json"), env=env)
    assert proc.returncode == 1, proc.stderr
    assert _generation(layered.profile) == at_new
    assert os.path.realpath(layered.profile) == new
    assert json_result(proc, ok=False)["profile_generation"] == int(at_new.split("-")[-2])


def test_a_kill_right_after_setting_the_profile_is_repaired(layered: Layered) -> None:
    before = _generation(layered.profile)
    real_nix = shutil.which("nix")
    assert real_nix
    wrap = layered.root / "nix-wrap"
    wrap.mkdir()
    (wrap / "nix").write_text(f'#!/bin/sh\nexec {real_nix} "$@"\n')
    real_env = str(Path(real_nix).parent / "nix-env")
    # nixlayer dies the moment the profile points at the new system.
    (wrap / "nix-env").write_text(
        f'#!/bin/sh\n{real_env} "$@" || exit\ncase "$*" in *--set*) kill -9 $PPID;; esac\n'
    )
    for f in wrap.iterdir():
        f.chmod(0o755)
    env = {**layered.env, "NIXLAYER_NIX": str(wrap / "nix")}
    killed = cli(*layered.args("--action", "switch"), env=env)
    assert killed.returncode == -signal.SIGKILL
    assert _generation(layered.profile) != before  # never activated, yet the boot default
    assert layered.stc_calls() == []
    proc = cli(*layered.restore_args(), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    assert "interrupted before" in proc.stderr
    assert _generation(layered.profile) == before
    assert os.path.realpath(layered.profile) == layered.base_toplevel


def test_restore_after_test_and_after_switch(layered: Layered) -> None:
    nothing = cli(*layered.restore_args("--json"), env=layered.env)
    assert nothing.returncode == 0 and not json_result(nothing)["restored"]
    assert layered.stc_calls() == []  # safe when nothing was applied
    new = _new_toplevel(layered)
    gen = _generation(layered.profile)
    assert cli(*layered.args("--action", "test"), env=layered.env).returncode == 0
    proc = cli(*layered.restore_args("--json"), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    assert json_result(proc)["action"] == "test"
    assert layered.stc_calls() == [f"{new} test", f"{layered.base_toplevel} test"]
    assert os.path.realpath(layered.current) == layered.base_toplevel
    again = cli(*layered.restore_args("--json"), env=layered.env)  # idempotent
    assert again.returncode == 0 and not json_result(again)["restored"]
    assert len(layered.stc_calls()) == 2

    assert cli(*layered.args("--action", "switch"), env=layered.env).returncode == 0
    assert _generation(layered.profile) != gen
    proc = cli(*layered.restore_args("--json"), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    assert json_result(proc)["action"] == "switch"
    assert _generation(layered.profile) == gen  # the base's own generation, not a new one
    assert os.path.realpath(layered.current) == layered.base_toplevel
    assert layered.stc_calls()[-1] == f"{layered.base_toplevel} switch"


def test_restore_goes_through_the_guard(layered: Layered) -> None:
    job = layered.job_variant("sshd-job", SSHD_CHANGE)
    args = layered.args("--allow-restart", "sshd", job=job)
    assert cli(*args, env=layered.env).returncode == 0
    refused = cli(*layered.restore_args("--json"), env=layered.env)
    assert refused.returncode == 3 and "sshd.service" in refused.stderr
    assert [r["unit"] for r in json_result(refused, ok=False)["refused"]] == ["sshd.service"]
    allowed = cli(*layered.restore_args("--allow-restart", "sshd"), env=layered.env)
    assert allowed.returncode == 0, allowed.stderr
    assert os.path.realpath(layered.current) == layered.base_toplevel


def test_protect_and_allow_restart_names_as_systemctl_reads_them(layered: Layered) -> None:
    job = layered.job_variant(
        "cron-job", "{ lib, ... }: { systemd.services.cron.serviceConfig.Nice = 5; }"
    )
    proc = cli(*layered.args("--protect", "cron", "--json", job=job), env=layered.env)
    assert proc.returncode == 3, proc.stderr
    (refused,) = json_result(proc, ok=False)["refused"]
    assert (refused["unit"], refused["rule"]) == ("cron.service", "cron.service (--protect)")
    glob = cli(*layered.args("--protect", "cr*", job=job), env=layered.env)
    assert glob.returncode == 3 and "cron.service would be stopped" in glob.stderr
    typo = cli(*layered.args("--protect", "crno", "--action", "dry-activate"), env=layered.env)
    assert typo.returncode == 0
    assert "--protect crno.service matches no unit in either system" in typo.stderr
    sshd = layered.job_variant("sshd-job", SSHD_CHANGE)
    allowed = cli(*layered.args("--allow-restart", "sshd", job=sshd), env=layered.env)
    assert allowed.returncode == 0, allowed.stderr
    bad = cli(*layered.args("--allow-restart", "shhd", "-q", job=sshd), env=layered.env)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "nixlayer: error: --allow-restart: 'shhd.service' matches no unit in either system"
    )


def test_plan_is_shown_before_activation_as_a_prediction(layered: Layered) -> None:
    job = layered.job_variant(
        "cron-job", "{ lib, ... }: { systemd.services.cron.serviceConfig.Nice = 5; }"
    )
    proc = cli(*layered.args(job=job), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    predicted = proc.stderr.index("predicted by nixlayer for `test` (before activating")
    activation = proc.stderr.index("bin/switch-to-configuration test")
    assert predicted < proc.stderr.index("stop: cron.service") < activation
    # Not in switch-to-configuration's own words, which it prints itself.
    assert "the following units" not in proc.stderr[:activation]


def test_errors_name_switch_flags_and_hint_units(layered: Layered) -> None:
    args = layered.args("-q")
    i = args.index("--units")
    del args[i : i + 2]
    proc = cli(*args, env=layered.env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("nixlayer: error: --units: systemd is not running here")
    args = layered.args("-q")
    args[args.index("--current") + 1] = str(layered.root / "nope")
    proc = cli(*args, env=layered.env)
    assert proc.returncode == 2 and "--current:" in proc.stderr and "--from" not in proc.stderr


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_a_checkout_reaches_the_store_as_its_tracked_files(layered: Layered) -> None:
    repo = layered.root / "checkout"
    shutil.copytree(layered.job, repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "flake.nix", "flake.lock", "job.nix")
    _git(repo, "commit", "-qm", "job")
    with open(repo / "artefact.bin", "wb") as fh:  # an untracked 200 MB build artefact
        fh.truncate(200 * 1024 * 1024)
    proc = cli(*layered.args("--action", "dry-activate", "--json", job=repo), env=layered.env)
    assert proc.returncode == 0, proc.stderr
    assert f"git+file://{repo}" in proc.stderr
    meta = json.loads(
        subprocess.run(
            ["nix", "flake", "metadata", "--json", f"git+file://{repo}"],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    )
    source = Path(meta["path"])
    assert sorted(p.name for p in source.iterdir()) == ["flake.lock", "flake.nix", "job.nix"]
    # An untracked flake.nix is named, not silently read from the disk.
    (repo / "sub").mkdir()
    shutil.copy(repo / "flake.nix", repo / "sub/flake.nix")
    untracked = cli(*layered.args("-q", job=repo / "sub"), env=layered.env)
    assert untracked.returncode == 2 and "is not tracked by git" in untracked.stderr


def test_the_job_flake_is_evaluated_purely(layered: Layered) -> None:
    secret = layered.root / "runner-secret"
    secret.mkdir()
    (secret / "token").write_text(f"{os.urandom(16).hex()}\n")
    would_be = subprocess.run(
        ["nix", "store", "add-path", "--dry-run", "--name", secret.name, str(secret)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    job = layered.job_variant("greedy", "{ ... }: { }")
    text = (job / "flake.nix").read_text()
    # Evaluated impurely, this would copy the runner's directory into the store.
    (job / "flake.nix").write_text(
        text.replace("inputs = {", f'inputs = builtins.seq "${{{secret}}}" {{', 1)
    )
    proc = cli(*layered.args("-q", job=job), env=layered.env)
    assert proc.returncode == 2, proc.stderr
    assert not Path(would_be).exists()
    assert layered.stc_calls() == []
