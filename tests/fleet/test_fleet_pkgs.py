"""`fleet build --share-pkgs` on real Nix: VMs that would instantiate nixpkgs the
same way take one package set, and every VM's toplevel is exactly what it is
without sharing, in separate groups for different overrides, and alone when a
library module gives it overlays of its own."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from nixlayer.closure.fleet import fleet_build
from nixlayer.closure.fleetspec import FleetEntry
from nixlayer.closure.spec import VMSpec
from nixlayer.errors import InputError
from tests.helpers import FIXTURES, StandIn, cli, ssh_key

pytestmark = pytest.mark.nix

# A library module that gives one VM (by host name) an overlay of its own: sharing
# the others' package set would silently drop it.
ODD_OVERLAY = """
  nixpkgs.overlays = lib.mkIf (config.networking.hostName == "odd") [
    (final: prev: { fio = prev.hello; })
  ];
}
"""


def _entries(lib: Path, src: Path, key: str) -> list[FleetEntry]:
    base: dict[str, Any] = {
        "library": str(lib),
        "profiles": ["devel"],
        "test_suites": ["fstests"],  # fio and xfsprogs in every closure
        "ssh_keys": [ssh_key(key)],
    }
    xfs = {"overrides": [{"pkg": "xfsprogs", "src": str(src)}]}
    vms: dict[str, dict[str, Any]] = {"a": {}, "x1": xfs, "b": {}, "odd": {}, "x2": xfs, "c": {}}
    return [
        FleetEntry(name=n, spec=VMSpec.model_validate({**base, **extra, "vm_name": n}))
        for n, extra in vms.items()
    ]


def _evaluated(root: Path, toplevel: str) -> tuple[str, str]:
    """(drvPath, outPath) of a toplevel, as the shared evaluator recorded it."""
    cache = json.loads((root / ".nixlayer/eval-cache.json").read_text())
    (hit,) = [v for v in cache.values() if v["outPath"] == toplevel]
    return hit["drvPath"], hit["outPath"]


def test_shared_package_sets_change_no_toplevel(
    own_stand_in: StandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lib = own_stand_in.library
    user = lib / "modules/user.nix"
    text = user.read_text().rstrip()
    assert text.endswith("}")
    user.write_text(text[:-1] + ODD_OVERLAY)
    src = tmp_path / "xfsprogs-src"
    shutil.copytree(FIXTURES / "nixpkgs/pkgs/xfsprogs-src", src)
    key = uuid.uuid4().hex
    caplog.set_level("INFO", logger="nixlayer")

    alone = fleet_build(_entries(lib, src, key), root=tmp_path / "alone")
    assert "shared package set" not in caplog.text
    caplog.clear()
    shared = fleet_build(_entries(lib, src, key), root=tmp_path / "shared", share_pkgs=True)

    assert [o.status for o in alone + shared] == ["built"] * 12, [o.error for o in shared]
    for a, s in zip(alone, shared, strict=True):
        assert a.vm_name == s.vm_name and a.toplevel is not None
        assert _evaluated(tmp_path / "alone", a.toplevel) == _evaluated(
            tmp_path / "shared", s.toplevel or ""
        ), a.vm_name
    # b and c took a's package set, x2 took x1's (another group: its override);
    # odd, whose library module adds an overlay, was evaluated on its own.
    assert "3 system(s) evaluated on a shared package set" in caplog.text
    assert "odd: evaluated on its own package set" in caplog.text
    # The override and the odd overlay are in the toplevels they belong to.
    tops = {o.vm_name: o.toplevel for o in shared}
    assert len(set(tops.values())) == 6
    for name, top in tops.items():
        record = json.loads((Path(top or "") / "configuration.json").read_text())
        pnames = {p["pname"] for p in record["systemPackages"]}
        assert ("fio" in pnames) == (name != "odd"), name


def _fio(toplevel: str | None) -> str:
    record = json.loads((Path(toplevel or "") / "configuration.json").read_text())
    name: str = next(p["name"] for p in record["systemPackages"] if p["pname"] == "fio")
    return name


def test_vms_on_different_library_pins_do_not_share(
    own_stand_in: StandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A VM that keeps its older library pin is in a group of its own: the same
    manifest, the same number of overlays, another library underneath."""
    lib, root, key = own_stand_in.library, tmp_path / "vms", uuid.uuid4().hex

    def entry(name: str, **extra: Any) -> FleetEntry:
        spec = {"vm_name": name, "library": str(lib), "profiles": ["devel"],
                "test_suites": ["fstests"], "ssh_keys": [ssh_key(key)], **extra}  # fmt: skip
        return FleetEntry(name=name, spec=VMSpec.model_validate(spec))

    (first,) = fleet_build([entry("old")], root=root, share_pkgs=True)
    assert _fio(first.toplevel) == "fio-1.0-nixos-flake"
    overlay = lib / "overlays/default.nix"
    overlay.write_text(overlay.read_text().replace("1.0-nixos-flake", "1.1-nixos-flake"))
    caplog.set_level("INFO", logger="nixlayer")
    # bob: old's default.nix changes, so it is evaluated again (on its own pin).
    new, old = fleet_build([entry("new"), entry("old", user_name="bob")], root=root,
                           share_pkgs=True)  # fmt: skip
    assert (new.status, old.status) == ("built", "built")
    assert _fio(new.toplevel) == "fio-1.1-nixos-flake"
    assert _fio(old.toplevel) == "fio-1.0-nixos-flake"
    assert "shared package set" not in caplog.text


def test_share_pkgs_needs_the_shared_evaluator_of_a_fleet_file(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        fleet_build([], root=tmp_path, evaluation="per-vm", share_pkgs=True)
    proc = cli("fleet", "build", "x.yaml", "--share-pkgs", "--eval", "per-vm", "--root",
               str(tmp_path))  # fmt: skip
    assert proc.returncode == 2 and "--share-pkgs" in proc.stderr
    proc = cli("fleet", "build", "--flake", ".", "--share-pkgs", "--root", str(tmp_path))
    assert proc.returncode == 2 and "--share-pkgs" in proc.stderr
    assert not any(tmp_path.iterdir())


# A library module that gives one VM a package set of its own (nixpkgs.pkgs).
OWN_PKGS = """{ config, lib, inputs, ... }:
{
  nixpkgs.pkgs = lib.mkIf (config.networking.hostName == "own") (import inputs.nixpkgs {
    system = "x86_64-linux";
    overlays = [ inputs.nixos-flake.overlays.default (final: prev: { fio = prev.hello; }) ];
  });
}
"""


def add_library_module(lib: Path, name: str, text: str) -> None:
    """A module every VM of the library imports (through its user module)."""
    (lib / f"modules/{name}.nix").write_text(text)
    user = lib / "modules/user.nix"
    before = user.read_text()
    user.write_text(before.replace("./user-options.nix ]", f"./user-options.nix ./{name}.nix ]"))
    assert user.read_text() != before


def test_a_vm_with_its_own_package_set_is_evaluated_alone(
    own_stand_in: StandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lib, key = own_stand_in.library, uuid.uuid4().hex
    add_library_module(lib, "own-pkgs", OWN_PKGS)

    def entry(name: str) -> FleetEntry:
        spec = {"vm_name": name, "library": str(lib), "profiles": ["devel"],
                "test_suites": ["fstests"], "ssh_keys": [ssh_key(key)]}  # fmt: skip
        return FleetEntry(name=name, spec=VMSpec.model_validate(spec))

    caplog.set_level("INFO", logger="nixlayer")
    lead, own = fleet_build([entry("lead"), entry("own")], root=tmp_path / "r", share_pkgs=True)
    assert (lead.status, own.status) == ("built", "built"), (lead.error, own.error)
    assert "own: evaluated on its own package set" in caplog.text
    assert _fio(lead.toplevel).startswith("fio-")
    # Its own package set made it: fio is hello there.
    record = json.loads((Path(own.toplevel or "") / "configuration.json").read_text())
    pnames = {p["pname"] for p in record["systemPackages"]}
    assert "fio" not in pnames and "hello" in pnames, pnames


# A library option whose overlay (always one) depends on it: a catalog that gates a
# profile on it changes the package set, and the module list does not show it.
FANCY = """{ config, lib, ... }:
{
  options.nixos-flake.fancy.enable = lib.mkEnableOption "fancy";
  config.nixpkgs.overlays = [
    (final: prev: if config.nixos-flake.fancy.enable then { fio = prev.hello; } else { })
  ];
}
"""


def test_vms_whose_gates_differ_do_not_share(
    own_stand_in: StandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two VMs import the same modules, but one's catalog (spec `catalog`) gates its
    devel profile on an option and the other's does not: the gate is a line of
    default.nix that decides an overlay's content, so they must not share a package set."""
    from nixlayer.closure.catalog import NIXOS_FLAKE_CATALOG

    lib, key = own_stand_in.library, uuid.uuid4().hex
    add_library_module(lib, "fancy", FANCY)
    gated = NIXOS_FLAKE_CATALOG.model_dump(mode="json")
    gated["gates"] = {**gated["gates"], "devel": "nixos-flake.fancy.enable"}

    def entry(name: str, **extra: Any) -> FleetEntry:
        spec = {"vm_name": name, "library": str(lib), "profiles": ["devel"],
                "test_suites": ["fstests"], "ssh_keys": [ssh_key(key)], **extra}  # fmt: skip
        return FleetEntry(name=name, spec=VMSpec.model_validate(spec))

    entries = [entry("plain"), entry("gated", catalog=gated)]
    alone = fleet_build(entries, root=tmp_path / "alone")
    shared = fleet_build(entries, root=tmp_path / "shared", share_pkgs=True)
    assert [o.status for o in alone + shared] == ["built"] * 4, [o.error for o in shared]
    assert _fio(alone[0].toplevel).startswith("fio-")
    for a, s in zip(alone, shared, strict=True):
        assert _evaluated(tmp_path / "alone", a.toplevel or "") == _evaluated(
            tmp_path / "shared", s.toplevel or ""
        ), a.vm_name
