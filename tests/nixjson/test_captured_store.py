"""path-info and the settings (nixjson/pathinfo.py, nixjson/config.py), fed what Nix 2.8,
2.26 and 2.34 really printed, and the argv that asked each of them."""

from __future__ import annotations

from nixlayer.nix import commands
from nixlayer.nix.nixjson import pathinfo
from nixlayer.nix.nixjson.config import parse_settings
from nixlayer.nix.nixjson.version import parse as parse_version
from tests.nixjson.data import VERSIONS, every_version, read

TOPLEVEL = "/nix/store/hwazjyb1lf91mni1a42qd68m48cw4hm5-nixos-system-vm-26.05"
BOGUS = "/nix/store/00000000000000000000000000000000-x"


def _all(version: str) -> pathinfo.PathInfoResult:
    return pathinfo.parse(read(version, "path-info-all.json"))


@every_version
def test_path_info_of_a_whole_store(version: str) -> None:
    result = _all(version)
    assert result.invalid == ()
    top = result.valid[TOPLEVEL]
    assert top.nar_hash.startswith("sha256-") and top.nar_size > 0
    assert top.deriver is not None and top.deriver.endswith("-nixos-system-vm-26.05.drv")
    assert top.references and all(r in result.valid for r in top.references)


def test_every_version_reports_the_same_store() -> None:
    """The same closure, copied by each version: the same paths, hashes and references."""
    seen = {
        v: {p: (i.nar_hash, i.nar_size, i.references) for p, i in _all(v).valid.items()}
        for v in VERSIONS
    }
    first = seen[VERSIONS[0]]
    assert all(other == first for other in seen.values())


@every_version
def test_path_info_names_the_invalid_path(version: str) -> None:
    result = pathinfo.parse(read(version, "path-info-invalid.json"))
    assert result.invalid == (BOGUS,)
    assert set(result.valid) == {TOPLEVEL}


@every_version
def test_path_info_argv_asks_each_version_for_the_shape_it_has(version: str) -> None:
    v = parse_version(read(version, "version.txt"))
    argv = commands.path_info_json("local?root=/s", v, all_paths=True)
    # 2.34 warns without --json-format; 2.26 (and 2.8) reject it.
    assert ("--json-format" in argv) == (v.version >= (2, 33, 0))
    assert argv[:2] == ["path-info", "--json"] and argv[-1] == "--all"


@every_version
def test_settings(version: str) -> None:
    settings = parse_settings(read(version, "config.json"))
    # As the capture ran: /etc/nix/nix.conf has `sandbox = false`, NIX_CONFIG empties
    # build-users-group; nothing sets a hook or trusts anyone but root.
    assert settings.sandbox == "false"
    assert settings.build_users_group == ""
    assert settings.trusted_users == ("root",)
    assert settings.post_build_hook == ""


@every_version
def test_settings_argv_per_version(version: str) -> None:
    v = parse_version(read(version, "version.txt"))
    argv = commands.show_config(v)
    # Nix 2.20 renamed `show-config` to `config show`.
    wanted = ["config", "show", "--json"] if v.version >= (2, 20, 0) else ["show-config", "--json"]
    assert argv[-len(wanted) :] == wanted
