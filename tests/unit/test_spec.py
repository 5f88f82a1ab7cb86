from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from nixlayer.closure.catalog import NIXOS_FLAKE_CATALOG, Catalog, load_catalog
from nixlayer.closure.spec import VMSpec, resolve_spec
from nixlayer.closure.specfile import load_spec, validate_spec
from nixlayer.errors import InputError
from tests.helpers import ssh_key


def _err(data: dict[str, Any]) -> str:
    with pytest.raises(InputError) as info:
        resolve_spec(validate_spec(data))
    return str(info.value)


def test_defaults_are_fully_featured() -> None:
    r = resolve_spec(VMSpec(vm_name="vm"))
    assert r.profiles == ("devel", "build-tools", "monitoring")
    assert r.test_suites == NIXOS_FLAKE_CATALOG.test_suites
    assert r.spec.user_name == "kdevops"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"vm_name": "../x"}, "vm_name: must be a host name NixOS accepts"),
        ({"vm_name": "a/b"}, "vm_name: must be a host name NixOS accepts"),
        ({"vm_name": "-x"}, "vm_name: must be a host name NixOS accepts"),
        ({"vm_name": "vm\n"}, "vm_name: must be a host name NixOS accepts"),
        ({"vm_name": "vm", "user_name": "bob\n"}, "user_name: must be a POSIX user name"),
        (
            {"vm_name": "vm", "overrides": [{"pkg": "fio\n", "src": "/a"}]},
            "overrides[0].pkg: must match",
        ),
        (
            {"vm_name": "vm", "profiles": ["devel", "gaming"]},
            "profiles[1]: unknown profile 'gaming'",
        ),
        (
            {"vm_name": "vm", "test_suites": ["ltp", "nope"]},
            "test_suites[1]: unknown test suite 'nope'",
        ),
        (
            {"vm_name": "vm", "ssh_keys": ["ssh-ed25519 !!!notbase64"]},
            "ssh_keys[0]: key data is not valid base64",
        ),
        ({"vm_name": "vm", "ssh_keys": ["hello"]}, "ssh_keys[0]: not an OpenSSH public key"),
        (
            {"vm_name": "vm", "ssh_keys": [ssh_key().replace("ssh-ed25519 ", "ssh-rsa ")]},
            "ssh_keys[0]: key data does not hold a ssh-rsa key",
        ),
        (
            {"vm_name": "vm", "shares": {"mnt/x": {"tag": "x"}}},
            "shares: mount point 'mnt/x' must be absolute",
        ),
        (
            {"vm_name": "vm", "shares": {"/a": {"tag": "x"}, "/b": {"tag": "x"}}},
            "shares: tag 'x' is used by '/a' and '/b'",
        ),
        (
            {"vm_name": "vm", "shares": {"/a": {"tag": "store"}}},
            "shares['/a'].tag: tag 'store' is reserved",
        ),
        ({"vm_name": "vm", "shares": {"/a": {"tag": "modules"}}}, "tag 'modules' is reserved"),
        ({"vm_name": "vm", "shares": {"/a/../b": {"tag": "x"}}}, "must not contain . or .."),
        ({"vm_name": "vm", "profiles": ["controller"]}, "profiles[0]: 'controller' is a host role"),
        ({"vm_name": "vm", "user_name": "Root User"}, "user_name: must be a POSIX user name"),
        (
            {
                "vm_name": "vm",
                "overrides": [{"pkg": "fio", "src": "/a"}, {"pkg": "fio", "src": "/b"}],
            },
            "overrides: package 'fio' is overridden twice",
        ),
        (
            {"vm_name": "vm", "overrides": [{"pkg": "a.b", "src": "/a"}]},
            "overrides[0].pkg: must match",
        ),
        ({"vm_name": "vm", "system": "riscv64-linux"}, "system: Input should be"),
        ({"vm_name": "vm", "colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({}, "vm_name: Field required"),
    ],
)
def test_bad_input_names_the_field(data: dict[str, Any], expected: str) -> None:
    assert expected in _err(data)


def test_errors_are_one_line_with_the_value() -> None:
    msg = _err({"vm_name": "../x"})
    assert "\n" not in msg
    assert "(got '../x')" in msg


def test_controller_can_be_forced() -> None:
    r = resolve_spec(VMSpec(vm_name="vm", profiles=("controller",), force_host_roles=True))
    assert r.profiles == ("controller",)


def test_a_catalog_replaces_the_default() -> None:
    cat = Catalog(
        profiles=("base",),
        test_suites=("smoke",),
        default_profiles=("base",),
        reserved_tags=("root",),
    )
    r = resolve_spec(VMSpec(vm_name="vm", catalog=cat))
    assert (r.profiles, r.test_suites) == (("base",), ())
    with pytest.raises(InputError, match="unknown profile 'devel'"):
        resolve_spec(VMSpec(vm_name="vm", profiles=("devel",)), cat)


def test_catalog_defaults_must_be_known() -> None:
    with pytest.raises(ValueError, match="default_profiles names 'x'"):
        Catalog(profiles=("a",), test_suites=(), default_profiles=("x",))


def test_key_types_and_comments() -> None:
    for t in ("ssh-rsa", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com"):
        VMSpec(vm_name="vm", ssh_keys=(ssh_key("c", key_type=t),))
    spec = VMSpec(vm_name="vm", ssh_keys=(ssh_key('alice@"h" ${x} é'),))
    assert spec.ssh_keys[0].endswith('alice@"h" ${x} é')


@pytest.mark.parametrize(
    "name",
    ["vm-", "vm_", "_vm", "a" * 64, "a" * 256, "vm.example", "vm name", "ǘm", ""],
)
def test_host_names_nixos_rejects_are_refused(name: str) -> None:
    assert "vm_name: must be a host name NixOS accepts" in _err({"vm_name": name})


@pytest.mark.parametrize("name", ["a", "a" * 63, "kvm_01", "x-1", "9p"])
def test_host_names_nixos_accepts_pass(name: str) -> None:
    assert VMSpec(vm_name=name).vm_name == name


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"src": "x"}, "`src` is the override itself"),
        ({"a b": "x"}, "attribute name 'a b' must match"),
        ({"autoreconfPhase": 3}, "overrides[0].attrs.autoreconfPhase: Input should be a valid"),
        ({"postPatch": "a\x00b"}, "overrides[0].attrs.postPatch: contains a NUL"),
    ],
)
def test_override_attrs_are_checked(attrs: dict[str, Any], expected: str) -> None:
    data = {"vm_name": "vm", "overrides": [{"pkg": "xfsprogs", "src": "/x", "attrs": attrs}]}
    assert expected in _err(data)


def test_an_override_naming_no_package_is_refused() -> None:
    assert "overrides[0].pkg: Field required" in _err(
        {"vm_name": "vm", "overrides": [{"src": "/x"}]}
    )
    assert "overrides[0]: Input should be" in _err({"vm_name": "vm", "overrides": ["fio"]})


def test_update_lock_was_renamed() -> None:
    assert (
        _err({"vm_name": "vm", "update_lock": True}) == "update_lock: renamed: use update_library"
    )


def test_relative_paths_are_resolved_against_the_spec_file(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    f = tmp_path / "specs" / "vm.yaml"
    f.write_text(
        "vm_name: vm\nlibrary: ../lib\noverrides:\n"
        "  - {pkg: fio, src: ./fio}\n  - {pkg: kmod, src: 'https://x/kmod.git'}\n"
    )
    spec = load_spec(str(f))
    assert spec.library == str(tmp_path / "lib")
    assert spec.overrides[0].src == str(tmp_path / "specs" / "fio")
    assert spec.overrides[1].src == "https://x/kmod.git"


HOSTILE = [
    (
        "dup.yaml",
        "vm_name: a\nvm_name: b\n",
        "SPEC: dup.yaml: duplicate key 'vm_name' at line 2",
    ),
    ("dup.json", '{"vm_name": "a", "vm_name": "b"}', "duplicate key 'vm_name'"),
    ("surrogate.json", '{"vm_name": "vm", "user_name": "\\ud800"}', "user_name: "),
    ("nul.json", '{"vm_name": "vm", "shares": {"/a\\u0000": {"tag": "t"}}}', "NUL"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested deeper than"),
    ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000, "nested deeper than"),
    ("alias.yaml", "a: &x [1]\nb: *x\n", "vm_name: Field required"),
    ("latin1.yaml", b"vm_name: caf\xe9\n", "is not UTF-8 text"),
    ("key.yaml", "? [a]\n: 1\n", "invalid YAML at line 1: found unhashable key"),
    ("int.yaml", "1: x\n", "vm_name: Field required"),
]


@pytest.mark.parametrize(("name", "content", "expected"), HOSTILE)
def test_hostile_spec_files_are_one_line_input_errors(
    tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    with pytest.raises(InputError) as info:
        load_spec(str(f))
    assert expected in str(info.value).replace(str(tmp_path) + "/", "")
    assert "\n" not in str(info.value)


def test_yaml_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    """The 583-byte billion laughs: refused before anything expands it."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, (prev, cur) in enumerate(zip("abcdefgh", "bcdefghi", strict=True)):
        refs = ",".join([f"*{prev}"] * 9)
        lines.append(f"{cur}: &{cur} [{refs}]")
        assert i < 9
    lines.insert(0, "vm_name: vm")
    bomb = "\n".join(lines) + "\nuser_name: *i\n"
    assert len(bomb) < 700
    f = tmp_path / "bomb.yaml"
    f.write_text(bomb)
    start = time.perf_counter()
    with pytest.raises(InputError, match="aliases"):
        load_spec(str(f))
    assert time.perf_counter() - start < 1.0


def test_catalog_errors_name_the_field(tmp_path: Path) -> None:
    f = tmp_path / "cat.json"
    f.write_text('{"profiles": ["a\\u0000"], "test_suites": []}')
    with pytest.raises(InputError) as info:
        load_catalog(f, "--catalog")
    assert info.value.field == "--catalog.profiles[0]"
    f.write_text('{"profiles": ["ok", "b c"], "test_suites": []}')
    with pytest.raises(InputError) as info:
        load_catalog(f, "--catalog")
    assert info.value.field == "--catalog.profiles[1]" and "'b c' is not a module name" in str(
        info.value
    )
    f.write_bytes(b'{"profiles": ["\xff"]}')
    with pytest.raises(InputError, match="not UTF-8"):
        load_catalog(f, "--catalog")
    f.write_text('{"profiles": [], "profiles": [], "test_suites": []}')
    with pytest.raises(InputError, match="duplicate key 'profiles'"):
        load_catalog(f, "--catalog")


DAMAGED = ["[" * 100_000, "[]", '{"vm_name": 1}', "\x00", '{"a": 1, "a": 2}']


@pytest.mark.parametrize("text", DAMAGED)
def test_a_damaged_manifest_is_one_line_bad_input(tmp_path: Path, text: str) -> None:
    """The config dir is the user's: a tampered .nixlayer-manifest.json is input, never a
    traceback (deep nesting, wrong shape, wrong field, NUL, duplicate keys)."""
    from nixlayer.closure.manifest import MANIFEST, read_manifest

    (tmp_path / MANIFEST).write_text(text)
    with pytest.raises(InputError) as info:
        read_manifest(tmp_path)
    assert info.value.field == "config_dir" and "\n" not in str(info.value)


def test_a_host_name_set_at_boot_must_be_one_systemd_takes() -> None:
    """systemd.hostname= takes letters, digits and - only; NixOS also allows `_`."""
    assert VMSpec(vm_name="a_b").hostname == "closure"
    assert VMSpec(vm_name="a-b", hostname="boot").vm_name == "a-b"
    err = _err({"vm_name": "a_b", "hostname": "boot"})
    assert "vm_name 'a_b'" in err and "systemd" in err and "\n" not in err
    assert "'closure' or 'boot'" in _err({"vm_name": "a", "hostname": "dhcp"})
