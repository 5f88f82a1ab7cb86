"""Pure parts of the layer: unit-name rules, outcomes, inhibitors, the systemd-run argv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nixlayer.errors import InputError
from nixlayer.layer.kinds import ACTIONS, KIND_NAMES, KINDS
from nixlayer.layer.outcome import Outcome, StepResult, check_reason, classify, failed_units
from nixlayer.layer.predict import predict
from nixlayer.layer.protection import Rule, build_protection, normalize_unit
from nixlayer.layer.transient import transient_argv
from nixlayer.layer.where import Where
from nixlayer.planner.inhibitors import check_applies, inhibitor_verdict, read_inhibitors


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("cron", "cron.service"),
        ("sshd.socket", "sshd.socket"),
        ("getty@tty1", "getty@tty1.service"),
        ("getty@", "getty@.service"),
        ("ssh*", "ssh*"),
        ("/var/lib/docker", "var-lib-docker.mount"),
        ("/dev/sda1", "dev-sda1.device"),
        ("foo.bar", "foo.bar.service"),
    ],
)
def test_names_are_normalized_as_systemctl_does(name: str, unit: str) -> None:
    assert normalize_unit(name) == unit


def test_launchd_labels_are_left_alone() -> None:
    assert normalize_unit("com.openssh.sshd", "launchd") == "com.openssh.sshd"


def test_rules_match_globs_and_template_instances() -> None:
    assert Rule("ssh*", "--protect").matches("sshd.socket")
    assert Rule("getty@.service", "--protect").matches("getty@tty1.service")
    assert Rule("getty@.service", "--protect").matches("getty@.service")
    assert not Rule("getty@.service", "--protect").matches("getty@tty1.socket")
    assert not Rule("cron.service", "--protect").matches("crond.service")


def test_unknown_names_warn_for_protect_and_fail_for_allow_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    known = ["sshd.service", "cron.service"]
    protection = build_protection(
        family="systemd", systems=[], protect=["nosuch"], allow_restart=["sshd"], known_units=known
    )
    assert "nosuch.service matches no unit" in caplog.text
    assert protection.rule_for("sshd.service") is None  # allowed
    rule = protection.rule_for("nix-daemon.service")
    assert rule is not None and rule.origin == "default"
    with pytest.raises(InputError) as exc:
        build_protection(
            family="systemd", systems=[], protect=[], allow_restart=["shd"], known_units=known
        )
    assert exc.value.field == "--allow-restart"


def _step(code: int, *lines: str, ran: bool = True) -> StepResult:
    return StepResult(("stc", "switch"), code, lines, ran)


def test_switch_to_configuration_exit_codes() -> None:
    assert classify("nixos", _step(0)) is Outcome.OK
    assert classify("nixos", _step(4, "warning: the following units failed: a.service")) is (
        Outcome.UNITS_FAILED
    )
    check = _step(1, "Pre-switch check 'switchInhibitors' failed", "Pre-switch checks failed")
    assert classify("nixos", check) is Outcome.CHECK_FAILED
    assert classify("nixos", _step(1, "Failed to install bootloader")) is Outcome.FAILED
    assert classify("nixos", _step(2)) is Outcome.FAILED
    assert classify("nixos", _step(100)) is Outcome.REBOOT_NEEDED
    assert classify("nixos", _step(1, ran=False)) is Outcome.UNKNOWN
    assert classify("system-manager", _step(4)) is Outcome.FAILED
    assert failed_units(["warning: the following units failed: b.service, a.service"]) == [
        "a.service",
        "b.service",
    ]
    assert failed_units(["Failed to restart c.service: timeout"]) == ["c.service"]
    assert "'switchInhibitors'" in check_reason(check.output)


def test_inhibitors(tmp_path: Path) -> None:
    assert read_inhibitors(tmp_path) == {}
    (tmp_path / "switch-inhibitors").write_text(json.dumps({"systemd": "/nix/store/a"}))
    assert read_inhibitors(tmp_path) == {"systemd": "/nix/store/a"}
    verdict = inhibitor_verdict(
        {"systemd": "a", "dbus": "x", "old": "1"}, {"systemd": "b", "dbus": "x"}
    )
    assert verdict.names == ["systemd"] and verdict.differing["systemd"] == ("a", "b")
    assert not inhibitor_verdict({"old": "1"}, {"new": "2"}).inhibited  # one side only
    (tmp_path / "switch-inhibitors").write_text("[1]")
    with pytest.raises(InputError):
        read_inhibitors(tmp_path)  # fails loudly, as nixpkgs does since PR 510514
    assert check_applies("switch", {}) is None
    assert check_applies("boot", {}) and check_applies("dry-activate", {})
    assert check_applies("test", {"NIXOS_NO_CHECK": "1"})
    assert check_applies("test", {"NIXOS_NO_CHECK": "0"}) is None


def test_systemd_run_argv() -> None:
    argv = transient_argv("systemd-run", "u.service", Path("/r/u.log"), ["/t/bin/stc", "test"])
    assert argv[:7] == [
        "systemd-run",
        "-E",
        "LOCALE_ARCHIVE",
        "-E",
        "NIXOS_INSTALL_BOOTLOADER",
        "-E",
        "NIXOS_NO_CHECK",
    ]
    assert "--unit=u.service" in argv and "--property=StandardError=append:/r/u.log" in argv
    assert argv[-2:] == ["/t/bin/stc", "test"]


def test_one_table_of_kinds_and_one_list_of_actions() -> None:
    assert set(KINDS) == set(KIND_NAMES)
    assert ACTIONS == ("switch", "test", "dry-activate", "boot")


def _sm_system(root: Path, units: dict[str, str]) -> Path:
    (root / "services").mkdir(parents=True)
    services = {}
    for name, text in units.items():
        f = root / f"unit-{name}"
        f.write_text(text)
        services[name] = {"storePath": str(f), "masked": False}
    (root / "services/services.json").write_text(json.dumps(services))
    return root


@pytest.mark.parametrize(
    "broken",
    ["[Service\nExecStart=/bin/x\n", "[Service]\nExecStart\n", "not json"],
)
def test_a_broken_system_manager_system_is_an_input_error(tmp_path: Path, broken: str) -> None:
    old = _sm_system(tmp_path / "old", {"a.service": "[Service]\nExecStart=/bin/a\n"})
    new = _sm_system(tmp_path / "new", {"a.service": broken})
    if broken == "not json":
        (new / "services/services.json").write_text("[")
    with pytest.raises(InputError) as exc:
        predict("system-manager", new, old, "switch", Where(state_dir=tmp_path / "state"))
    named = ("the new system", str(new / "services/services.json"), str(new / "unit-a.service"))
    assert exc.value.field in named
