"""A drop-in for kdevops-ng's `f/nix/build` flow: the same grouped inputs
(`guest`, `closure`, `lock`) its bring-up passes, the same result
(`{toplevel, init, initrd, config_dir}`, whose init and initrd the bring-up
boots), served by nixlayer's steps."""

from __future__ import annotations

from typing import Any

from nixlayer.closure.catalog import NIXOS_FLAKE_CATALOG
from nixlayer.closure.windmill import JSON_SCHEMA, OVERRIDE_ITEMS, flow_modules


def _group(title: str, description: str, props: dict[str, Any], required: list[str]) -> Any:
    group: dict[str, Any] = {
        "type": "object",
        "description": description,
        "default": {},
        "order": list(props),
        "properties": props,
        "title": title,
    }
    if required:
        group["required"] = required
    return group


def input_groups() -> dict[str, Any]:
    cat = NIXOS_FLAKE_CATALOG
    guest = {
        "vm_name": {
            "type": "string",
            "description": "Host name of the guest and name of its config directory.",
            "default": "nixos",
            "title": "VM Name",
        },
        "user_name": {
            "type": "string",
            "description": "The unprivileged guest account (nixos-flake.user.name).",
            "default": "kdevops",
        },
        "ssh_keys": {
            "type": "array",
            "description": "OpenSSH public keys for root and the account (the kdevops "
            "VM key is always added).",
            "default": [],
            "items": {"type": "string"},
            "title": "SSH Keys",
        },
        "shares": {
            "type": "object",
            "description": 'virtiofs shares by guest mount point, e.g. {"/mnt/r": {"tag": '
            '"r", "options": ["ro"]}}; fstests and home shares are added for you.',
            "default": {},
        },
        "home": {
            "type": "boolean",
            "description": "Mount the operator's home (tag `home`) and make it root's home.",
            "default": True,
        },
        "home_dir": {
            "type": "string",
            "description": "Where the home share appears in the guest (default /home/<you>).",
            "default": "",
            "title": "Home Dir",
        },
    }
    closure = {
        "profiles": {
            "type": "array",
            "description": "nixos-flake profiles (controller is a host role, off by default).",
            "default": list(cat.default_profiles),
            "items": {"type": "string", "enum": sorted(cat.profiles)},
        },
        "test_suites": {
            "type": "array",
            "description": "nixos-flake test suites (all by default).",
            "default": list(cat.default_test_suites),
            "items": {"type": "string", "enum": list(cat.test_suites)},
        },
        "overrides": {
            "type": "array",
            "description": 'Package source overrides, e.g. [{"pkg": "fio", "src": "/src/fio"}].',
            "default": [],
            "items": OVERRIDE_ITEMS,
        },
    }
    lock = {
        "update_lock": {
            "type": "boolean",
            "description": "Re-pin the vendored nixos-flake, not only missing pins.",
            "default": False,
        }
    }
    return {
        "guest": _group("Guest", "Guest identity, access and virtiofs mounts.", guest, ["vm_name"]),
        "closure": _group("Closure", "What goes into the toplevel closure.", closure, []),
        "lock": _group("Lock", "How flake.lock pins move.", lock, []),
    }


RENDER_INPUTS = {
    "vm_name": "flow_input.guest?.vm_name",
    "user_name": "flow_input.guest?.user_name",
    "ssh_keys": "flow_input.guest?.ssh_keys",
    "shares": "flow_input.guest?.shares",
    "home": "flow_input.guest?.home",
    "home_dir": "flow_input.guest?.home_dir",
    "profiles": "flow_input.closure?.profiles",
    "test_suites": "flow_input.closure?.test_suites",
    "overrides": "flow_input.closure?.overrides",
}


def kdevops_flow(folder: str) -> dict[str, Any]:
    groups = input_groups()
    return {
        "summary": "Build the NixOS closure",
        "description": "kdevops-ng's f/nix/build, served by nixlayer: render_config -> "
        "lock_config -> build_closure on one worker (same_worker); returns "
        "{toplevel, init, initrd, config_dir}.",
        "value": {
            "modules": flow_modules(folder, RENDER_INPUTS, "flow_input.lock?.update_lock"),
            "same_worker": True,
        },
        "schema": {
            "$schema": JSON_SCHEMA,
            "type": "object",
            "order": list(groups),
            "properties": groups,
            "required": [],
        },
    }
