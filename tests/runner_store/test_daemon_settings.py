"""Pure units: Nix's settings JSON per version, the argv per version, the trust
decision, and secret masking."""

from __future__ import annotations

import grp
import json
from pathlib import Path

import pytest

from nixlayer.nix import commands
from nixlayer.nix.nixjson.config import ConfigFormatError, NixSettings, parse_settings
from nixlayer.nix.version import parse_version
from nixlayer.runner_store import jobtrust
from nixlayer.runner_store.tomlmask import masked

DATA = Path(__file__).parent.parent / "data" / "nix-json"


def _settings(**kw: object) -> NixSettings:
    base: dict[str, object] = {
        "trusted_users": ("root",),
        "allowed_users": ("*",),
        "sandbox": "true",
        "sandbox_fallback": False,
        "build_users_group": "nixbld",
        "sandbox_paths": (),
        "post_build_hook": "",
    }
    base.update(kw)
    return NixSettings(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "capture", ["show-config-2.8.json", "config-show-2.26.json", "config-show-2.34.json"]
)
def test_parse_real_captures(capture: str) -> None:
    """Nix 2.8 (`show-config`), 2.26.3 and 2.34.8 (`config show`; Debian trixie and
    sid, whose `show-config` still works but warns), all read /etc/nix/nix.conf here."""
    s = parse_settings((DATA / capture).read_text())
    assert s.trusted_users == ("root",) and s.allowed_users == ("*",)
    assert s.sandbox == "false"  # Debian's /etc/nix/nix.conf
    assert s.build_users_group == "nixbld" and s.sandbox_fallback is True
    if capture.endswith("2.34.json"):  # an object there, a list before
        assert s.sandbox_paths == ("/bin/sh=/usr/bin/bash-static",)


@pytest.mark.parametrize(
    "text",
    ["", "[]", '{"sandbox": {"value": true}}', '{"trusted-users": {"value": 3}}'],
)
def test_parse_rejects_other_shapes(text: str) -> None:
    with pytest.raises(ConfigFormatError):
        parse_settings(text)


def test_sandbox_values() -> None:
    doc = json.loads((DATA / "show-config-2.8.json").read_text())
    for value, want in ((True, "true"), (False, "false"), ("relaxed", "relaxed")):
        doc["sandbox"]["value"] = value
        assert parse_settings(json.dumps(doc)).sandbox == want


@pytest.mark.parametrize(
    ("version", "argv_tail"),
    [
        ("nix (Nix) 2.8.0", ["show-config", "--json"]),
        ("nix (Nix) 2.19.3", ["show-config", "--json"]),
        ("nix (Nix) 2.26.3", ["config", "show", "--json"]),
        ("nix (Nix) 2.34.1", ["config", "show", "--json"]),
        ("nix (Lix, like Nix) 2.91.1", ["show-config", "--json"]),
    ],
)
def test_show_config_argv(version: str, argv_tail: list[str]) -> None:
    argv = commands.show_config(parse_version(version))
    assert argv[:2] == ["--extra-experimental-features", "nix-command"]
    assert argv[2:] == argv_tail


def test_trusted_by_follows_nix_match_user() -> None:
    root_group = grp.getgrgid(0).gr_name
    assert jobtrust.trusted_by(_settings(trusted_users=("root",)), 0, 0) == "root"
    assert jobtrust.trusted_by(_settings(trusted_users=("*",)), 4242, 4242) == "*"
    assert jobtrust.trusted_by(_settings(trusted_users=(f"@{root_group}",)), 4242, 0)
    assert jobtrust.trusted_by(_settings(trusted_users=("4242",)), 4242, 4242) == "4242"
    assert jobtrust.trusted_by(_settings(trusted_users=("ci-admin",)), 0, 0) is None
    assert jobtrust.trusted_by(_settings(trusted_users=()), 0, 0) is None


def test_trust_problem_per_runner_setting() -> None:
    trusting_root = _settings(trusted_users=("root",))
    assert jobtrust.trust_problem(trusting_root, {}, remapped_engine=False)
    assert jobtrust.trust_problem(trusting_root, {"user": "1000:1000"}, False) is None
    assert jobtrust.trust_problem(trusting_root, {"user": "1000"}, False)
    assert jobtrust.trust_problem(trusting_root, {"user": "runner"}, False)
    # allowed_users alone fixes nothing: a job naming no user gets its image's root.
    assert jobtrust.trust_problem(trusting_root, {"allowed_users": ["1000:1000"]}, False)
    # Docker's userns-remap makes root an unprivileged host uid, unless turned off.
    assert jobtrust.trust_problem(trusting_root, {}, remapped_engine=True) is None
    assert jobtrust.trust_problem(trusting_root, {"userns_mode": "host"}, True)
    assert jobtrust.trust_problem(_settings(trusted_users=("*",)), {}, True)
    assert jobtrust.trust_problem(_settings(trusted_users=()), {}, False) is None


def test_sandbox_problem() -> None:
    assert jobtrust.sandbox_problem(_settings()) is None
    assert "sandbox = false" in str(jobtrust.sandbox_problem(_settings(sandbox="false")))
    assert jobtrust.sandbox_problem(_settings(sandbox="relaxed"))


def test_mask() -> None:
    text = (
        'token = "glrt-abc_DEF-123"   # yearly\n'
        'environment = ["A=1", "CI_JOB_TOKEN=xyz", "DB_PASSWORD=p4ss"]\n'
        'url = "https://x/?t=glpat-abcdef"\n'
        'name = "keep"\n'
    )
    out = masked(text)
    for secret in ("glrt-abc", "xyz", "p4ss", "glpat-abcdef"):
        assert secret not in out
    assert 'token = "[MASKED]"   # yearly' in out and '"A=1"' in out and 'name = "keep"' in out
