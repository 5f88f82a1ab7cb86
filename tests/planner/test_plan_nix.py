"""The planner on toplevels built by real Nix from the stand-in library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nixlayer.closure.run import run_closure
from nixlayer.closure.spec import VMSpec
from nixlayer.planner.plan import plan_switch
from tests.helpers import StandIn, cli, json_result

pytestmark = pytest.mark.nix


def test_plan_between_two_built_systems(own_stand_in: StandIn, tmp_path: Path) -> None:
    lib = own_stand_in.library
    spec = VMSpec(vm_name="vm", profiles=("devel",), test_suites=(), library=str(lib))
    before = run_closure(spec, root=tmp_path / "vms").build.toplevel
    backend = lib / "modules/backends/imageless/default.nix"
    backend.write_text(backend.read_text().replace("openssh -D", "openssh -D -e"))
    after = run_closure(spec.model_copy(update={"update_library": True}), root=tmp_path / "vms")
    assert after.build.toplevel != before

    units = tmp_path / "units.json"
    units.write_text(
        json.dumps(
            [{"unit": "sshd.service", "load": "loaded", "active": "active", "sub": "running"}]
        )
    )
    plan = plan_switch(
        after.build.toplevel, from_root=before, units_file=units, runtime_dir=tmp_path / "run"
    )
    # The stand-in sshd has stopIfChanged = false, as NixOS's does.
    assert plan.restart == ["sshd.service"] and plan.stop == [] and plan.start == []
    assert plan.lines == [
        "activating the configuration...",
        "restarting sysinit-reactivation.target",
        "restarting the following units: sshd.service",
    ]
    assert plan.reasons("sshd.service")[0].reason.endswith(
        "stopIfChanged = false: restarted in one step"
    )

    same = plan_switch(before, from_root=before, units_file=units, runtime_dir=tmp_path / "run")
    assert same.lines == [
        "activating the configuration...",
        "restarting sysinit-reactivation.target",
    ]

    proc = cli(
        "plan",
        "--from",
        before,
        "--to",
        after.build.toplevel,
        "--units",
        str(units),
        "--runtime-dir",
        str(tmp_path / "run"),
        "--action",
        "dry-activate",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        json_result(proc)["switch"]["lines"][-1]
        == "would restart the following units: sshd.service"
    )
