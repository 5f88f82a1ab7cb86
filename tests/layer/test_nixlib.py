"""nixlib's protect module on the stand-in runner base (real Nix evaluation)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import run_nix
from tests.layer.conftest import Layered

pytestmark = pytest.mark.nix

BASE_SERVICES = [
    "cron",
    "dbus",
    "gitlab-runner",
    "nix-daemon",
    "sshd",
    "systemd-logind",
    "systemd-networkd",
]


def _evaluate(layered: Layered, module: str) -> Any:
    expr = f"""
      let
        flake = builtins.getFlake "path:{layered.base}";
        c = (flake.nixosConfigurations.runner.extendModules {{ modules = [ ({module}) ]; }}).config;
      in {{
        services = builtins.attrNames c.systemd.services;
        restartIfChanged = builtins.mapAttrs (_: s: s.restartIfChanged or null) c.systemd.services;
        published = builtins.attrNames (c.environment.etc or {{ }});
      }}
    """
    return json.loads(run_nix("eval", "--impure", "--json", "--expr", expr))


def test_importing_the_module_changes_nothing_until_enabled(layered: Layered) -> None:
    off = _evaluate(layered, "{ lib, ... }: { nixlayer.protect.enable = lib.mkForce false; }")
    assert off["services"] == BASE_SERVICES
    assert set(off["restartIfChanged"].values()) == {None}
    assert off["published"] == []
    on = _evaluate(layered, "{ ... }: { }")
    assert on["published"] == ["nixlayer/protected-units.json"]
    assert on["restartIfChanged"]["sshd"] is False
    assert on["restartIfChanged"]["cron"] is None  # not protected


def test_no_stub_units_for_listed_services_the_base_does_not_define(layered: Layered) -> None:
    on = _evaluate(
        layered,
        """{ options, ... }: {
          nixlayer.protect.units = options.nixlayer.protect.units.default ++ [ "my-agent.service" ];
        }""",
    )
    # wpa_supplicant, NetworkManager, resolved, my-agent: listed, not defined, not created.
    assert on["services"] == BASE_SERVICES


def test_keep_services_running_off_leaves_restart_if_changed_alone(layered: Layered) -> None:
    off = _evaluate(layered, "{ ... }: { nixlayer.protect.keepServicesRunning = false; }")
    assert off["restartIfChanged"]["sshd"] is None
    assert off["published"] == ["nixlayer/protected-units.json"]  # still guarded
