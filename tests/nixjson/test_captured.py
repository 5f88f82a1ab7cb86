"""Every nixjson module, fed what Nix 2.8, 2.26 and 2.34 really printed."""

from __future__ import annotations

import json

import pytest

from nixlayer.errors import InputError, NixOutputError
from nixlayer.nix.nixjson import build, evaluate, flakelock, metadata
from nixlayer.nix.nixjson import version as nix_version
from tests.nixjson.data import VERSIONS, WORK, every_version, newer_than_2_8, read

TOPLEVEL = "/nix/store/hwazjyb1lf91mni1a42qd68m48cw4hm5-nixos-system-vm-26.05"


def test_three_versions_are_captured() -> None:
    assert {"2.8", "2.26", "2.34"} <= set(VERSIONS)


@pytest.mark.parametrize("v", VERSIONS)
def test_version(v: str) -> None:
    major, minor = v.split(".")
    parsed = nix_version.parse(read(v, "version.txt"))
    assert parsed.implementation == "nix"
    assert parsed.version[:2] == (int(major), int(minor))


@every_version
def test_build_json(version: str) -> None:
    text = read(version, "build.json")
    # The stand-in's derivations are the same on every version: so is the toplevel.
    assert build.out_path(text) == TOPLEVEL
    (built,) = build.parse(text)
    assert built.drv_path is not None and built.drv_path.endswith(".drv")
    assert (built.start_time is not None) == (version == "2.26")


@every_version
def test_build_json_with_two_outputs(version: str) -> None:
    (built,) = build.parse(read(version, "build-multi.json"))
    # Nix 2.8 reports the outputs it was asked for (the default one); later ones all.
    assert set(built.outputs) == ({"out", "dev"} if newer_than_2_8(version) else {"out"})
    assert built.outputs["out"].endswith("-multi")


@pytest.mark.parametrize(
    "text",
    ["", "{}", '[{"outputs": []}]', '[{"outputs": {"out": 1}}]', "[]", '[{"outputs": {}}]'],
)
def test_build_json_of_no_known_shape(text: str) -> None:
    with pytest.raises(NixOutputError, match="nix build --json"):
        build.out_path(text)


def test_an_output_without_a_path_is_left_out() -> None:
    (built,) = build.parse('[{"drvPath": "/nix/store/x.drv", "outputs": {"out": null}}]')
    assert built.outputs == {}


@every_version
def test_flake_metadata(version: str) -> None:
    meta = metadata.parse(read(version, "flake-metadata-path.json"))
    assert meta.path.startswith("/nix/store/") and meta.path.endswith("-source")
    assert meta.url.startswith(f"path:{WORK}/nixos-flake")
    assert meta.locked["type"] == "path" and meta.locked["narHash"].startswith("sha256-")
    assert meta.revision is None and meta.description
    git = metadata.parse(read(version, "flake-metadata-git.json"))
    assert git.revision is not None and len(git.revision) == 40
    assert git.url.startswith(f"git+file://{WORK}/git-lib")
    # The same source, whichever way it was fetched.
    assert git.path == meta.path


def test_flake_metadata_without_a_source_path() -> None:
    with pytest.raises(NixOutputError, match="no source path"):
        metadata.parse('{"url": "github:a/b", "locked": {}}')
    with pytest.raises(NixOutputError, match="expected dict"):
        metadata.parse('{"url": "x", "path": "/nix/store/x", "locked": []}')


@every_version
def test_flake_lock(version: str) -> None:
    lock = flakelock.parse(read(version, "flake.lock"))
    assert lock.version == 7
    inputs = lock.root_inputs()
    assert set(inputs) == {"fio-src", "nixos-flake", "nixpkgs"}
    assert inputs["nixpkgs"] == ["nixos-flake", "nixpkgs"]  # a follows
    assert lock.locked("fio-src")["path"] == f"{WORK}/fio-src"
    assert lock.locked("nixpkgs") == {}
    updated = flakelock.parse(read(version, "flake-updated.lock"))
    assert updated.locked("fio-src")["narHash"] != lock.locked("fio-src")["narHash"]
    assert updated.locked("nixos-flake") == lock.locked("nixos-flake")


@every_version
def test_shared_lock_keeps_the_library_pin_only(version: str) -> None:
    lock = flakelock.parse(read(version, "flake.lock"))
    shared = lock.shared(k for k in lock.root_inputs() if not k.endswith("-src"))
    assert set(shared["nodes"]) == {"root", "nixos-flake", "nixpkgs"}
    assert "fio-src" not in shared["nodes"]["root"]["inputs"]
    # What it writes is a lock file again.
    again = flakelock.parse(json.dumps(shared))
    assert again.locked("nixos-flake") == lock.locked("nixos-flake")
    assert flakelock.parse(again.to_text()) == again


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"nodes": {}, "root": "root", "version": 7}',
        '{"nodes": {"root": {}}, "root": 1, "version": 7}',
        '{"nodes": {"root": {"inputs": {"a": "missing"}}}, "root": "root", "version": 7}',
        '{"nodes": {"root": {"inputs": {"a": ["x", 1]}}}, "root": "root", "version": 7}',
        '{"nodes": {"root": []}, "root": "root", "version": 7}',
        '{"nodes": {"root": {}}, "root": "root", "version": true}',
        '{"nodes": {"root": {"locked": "x"}}, "root": "root", "version": 7}',
    ],
)
def test_malformed_lock_files_are_named_bad_input(text: str) -> None:
    with pytest.raises(InputError) as info:
        flakelock.parse(text, "/x/flake.lock")
    assert info.value.field == "flake.lock"
    assert "/x/flake.lock is not a flake lock file" in str(info.value)
    assert "\n" not in str(info.value)


@every_version
def test_eval_json(version: str) -> None:
    assert evaluate.names(read(version, "eval-names.json")) == ["vm"]
    assert evaluate.string(read(version, "eval-initrd-file.json")) == "initrd"
    with pytest.raises(NixOutputError):
        evaluate.names('["a", 1]')
    with pytest.raises(NixOutputError):
        evaluate.string("null")
