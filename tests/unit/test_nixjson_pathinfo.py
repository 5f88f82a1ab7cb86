"""nix path-info --json in every version's shape, and the argv that asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nixlayer.nix import commands
from nixlayer.nix.nixjson.pathinfo import PathInfoFormatError, parse, to_sri
from nixlayer.nix.version import parse_version

DATA = Path(__file__).parent.parent / "data" / "nix-json"
PB = "/nix/store/3d54bq5b9gj3nb0f2rlqk4v6rz83x06a-pb"
PA = "/nix/store/qipkhma9s7lxjacdl1fkmndk34mvy0c2-pa"
BAD = "/nix/store/00000000000000000000000000000000-x"


@pytest.mark.parametrize("version", ["2.8", "2.26", "2.34"])
def test_every_shape_parses_to_the_same_infos(version: str) -> None:
    result = parse((DATA / f"path-info-{version}.json").read_text())
    assert set(result.valid) == {PA, PB}
    assert result.invalid == (BAD,)
    pb = result.valid[PB]
    assert pb.nar_hash == "sha256-4nFCcytB8lbDxRTnYCFkIM2W0vOFCofZ7854Nc0+/vc="
    assert pb.nar_size == 160 and pb.references == (PA,)
    assert pb.deriver == "/nix/store/clg9qlazlxlah430kwfvpazxkrmlp2kp-pb.drv"
    assert pb.name == "3d54bq5b9gj3nb0f2rlqk4v6rz83x06a-pb"


def test_base_names_are_made_full() -> None:
    text = '{"aaa-x": {"narHash": "sha256-4nFCcytB8lbDxRTnYCFkIM2W0vOFCofZ7854Nc0+/vc=",'
    text += ' "narSize": 1, "references": ["bbb-y"], "deriver": null}}'
    info = parse(text).valid["/nix/store/aaa-x"]
    assert info.references == ("/nix/store/bbb-y",) and info.deriver is None


def test_old_base32_hashes_become_sri() -> None:
    # `nix hash to-base32` of the SRI (Nix 2.8), as Nix 2.3 printed narHash; and hex.
    sri = "sha256-4nFCcytB8lbDxRTnYCFkIM2W0vOFCofZ7854Nc0+/vc="
    assert to_sri("sha256:1xzy7v6kay6fxzcqf2l5yg99dk90chhn1rqlqp1mdwj15drl4wg2") == sri
    hexa = "e27142732b41f256c3c514e760216420" + "cd96d2f3850a87d9efce7835cd3efef7"
    assert to_sri("sha256:" + hexa) == sri
    assert to_sri(sri) == sri


@pytest.mark.parametrize(
    "text",
    ["not json", "3", '[{"nopath": 1}]', '{"/nix/store/a-b": {"narHash": "md5:zz"}}', '{"k": 4}'],
)
def test_garbage_is_a_format_error(text: str) -> None:
    with pytest.raises(PathInfoFormatError):
        parse(text)


@pytest.mark.parametrize(
    ("version_line", "has_format"),
    [
        ("nix (Nix) 2.8.0", False),
        ("nix (Nix) 2.26.3", False),
        ("nix (Nix) 2.33.0", True),
        ("nix (Nix) 2.34.1", True),
        ("nix (Lix, like Nix) 2.91.1", False),
        ("nix (Determinate Nix 3.11.0) 2.31.2", False),
    ],
)
def test_argv_asks_for_format_1_only_where_the_flag_exists(
    version_line: str, has_format: bool
) -> None:
    argv = commands.path_info_json("local?root=/d", parse_version(version_line), all_paths=True)
    assert ("--json-format" in argv) is has_format
    assert argv[:2] == ["path-info", "--json"] and argv[-1] == "--all"
    if has_format:
        assert argv[argv.index("--json-format") + 1] == "1"
