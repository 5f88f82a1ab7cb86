from __future__ import annotations

from typing import Any

import pytest

from nixlayer.closure.catalog import NIXOS_FLAKE_CATALOG, Catalog
from nixlayer.closure.spec import VMSpec, resolve_spec
from nixlayer.closure.specfile import validate_spec
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
        ({"vm_name": "../x"}, "vm_name: must match"),
        ({"vm_name": "a/b"}, "vm_name: must match"),
        ({"vm_name": "-x"}, "vm_name: must match"),
        ({"vm_name": "vm\n"}, "vm_name: must match"),
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
