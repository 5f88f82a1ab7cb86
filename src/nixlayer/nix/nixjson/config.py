"""Nix's effective settings: `nix show-config --json` (Nix < 2.20) and
`nix config show --json` (2.20+, where `show-config` is a deprecated alias).

Every version prints one object keyed by setting name; each value is an object
with `value`, `defaultValue`, `description`, `aliases` (2.8), plus
`documentDefault` and, since 2.13, `experimentalFeature`. Values keep their JSON
types: booleans, integers, strings, lists of strings; `sandbox` is `true`,
`false` or `"relaxed"`. `sandbox-paths` is a list of `target=source` strings up to
2.2x and an object `{target: {"source": ..., "optional": bool}}` in 2.34 (captures of
2.8, 2.26.3 and 2.34.8 are in tests/data/nix-json). Only the settings nixlayer
decides on are typed here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

SandboxMode = Literal["true", "false", "relaxed"]


class ConfigFormatError(ValueError):
    """Nix printed something that is not settings JSON of any known shape."""


@dataclass(frozen=True)
class NixSettings:
    trusted_users: tuple[str, ...]
    allowed_users: tuple[str, ...]
    sandbox: SandboxMode
    sandbox_fallback: bool
    build_users_group: str
    sandbox_paths: tuple[str, ...]
    post_build_hook: str


def _value(doc: dict[str, Any], name: str, default: Any) -> Any:
    entry = doc.get(name)
    if entry is None:
        return default
    if not isinstance(entry, dict) or "value" not in entry:
        raise ConfigFormatError(f"setting {name!r} has no value: {entry!r}")
    return entry["value"]


def _strings(doc: dict[str, Any], name: str, default: list[str]) -> tuple[str, ...]:
    value = _value(doc, name, default)
    if isinstance(value, str):  # never printed so, but Nix's own syntax is space-separated
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigFormatError(f"setting {name!r} is not a list of strings: {value!r}")
    return tuple(value)


def _sandbox_paths(doc: dict[str, Any]) -> tuple[str, ...]:
    value = _value(doc, "sandbox-paths", [])
    if isinstance(value, dict):  # Nix 2.34: {target: {"source": ..., "optional": ...}}
        out = []
        for target, spec in value.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("source"), str):
                raise ConfigFormatError(f"sandbox-paths entry {target!r} is {spec!r}")
            out.append(f"{target}={spec['source']}" + ("?" if spec.get("optional") else ""))
        return tuple(out)
    return _strings(doc, "sandbox-paths", [])


def _sandbox(value: Any) -> SandboxMode:
    if value is True or value == "true":
        return "true"
    if value is False or value == "false":
        return "false"
    if value == "relaxed":
        return "relaxed"
    raise ConfigFormatError(f"setting 'sandbox' has an unknown value: {value!r}")


def parse_settings(text: str) -> NixSettings:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigFormatError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or "trusted-users" not in doc:
        raise ConfigFormatError("not an object of Nix settings (no 'trusted-users')")
    fallback = _value(doc, "sandbox-fallback", True)
    group = _value(doc, "build-users-group", "")
    hook = _value(doc, "post-build-hook", "")
    if not isinstance(fallback, bool) or not isinstance(group, str) or not isinstance(hook, str):
        raise ConfigFormatError("sandbox-fallback, build-users-group or post-build-hook mistyped")
    return NixSettings(
        trusted_users=_strings(doc, "trusted-users", ["root"]),
        allowed_users=_strings(doc, "allowed-users", ["*"]),
        # Absent only where Nix has no sandbox at all (not Linux): unsandboxed.
        sandbox=_sandbox(_value(doc, "sandbox", False)),
        sandbox_fallback=fallback,
        build_users_group=group,
        sandbox_paths=_sandbox_paths(doc),
        post_build_hook=hook,
    )
