"""Which base configuration a job layers over, as a concrete flake ref.

Modern Nix ignores the system registry when locking (Nix PR 12068), so the
alias is resolved here and passed as `--override-input base <ref>`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from nixlayer.errors import InputError
from nixlayer.nix.flakeref import normalize_ref
from nixlayer.safeload import parse_json, read_text, show

REGISTRY_ALIAS = "nixlayer-base"
DEFAULT_BASE = Path("/etc/nixos")


@dataclass(frozen=True)
class BaseRef:
    ref: str
    origin: str  # where it came from, for messages


def registry_path() -> Path:
    return Path(os.environ.get("NIXLAYER_REGISTRY", "/etc/nix/registry.json"))


def attrs_to_ref(to: dict[str, Any]) -> str:
    """A registry `to` attribute set as a flake ref URL."""
    kind = to.get("type")
    params = {k: str(v) for k, v in to.items() if k not in ("type", "path", "url", "owner", "repo")}
    query = f"?{urlencode(params)}" if params else ""
    if kind == "path":
        return f"path:{to['path']}{query}"
    if kind in ("git", "hg", "tarball", "file"):
        url = str(to["url"])
        prefix = "" if kind in ("tarball", "file") else f"{kind}+"
        return f"{prefix}{url}{query}"
    if kind in ("github", "gitlab", "sourcehut"):
        extra = {k: v for k, v in params.items() if k not in ("ref", "rev")}
        rev = params.get("rev") or params.get("ref")
        tail = f"/{rev}" if rev else ""
        q = f"?{urlencode(extra)}" if extra else ""
        return f"{kind}:{to['owner']}/{to['repo']}{tail}{q}"
    raise InputError("base", f"registry entry {REGISTRY_ALIAS!r} has an unsupported type {kind!r}")


def _from_registry(path: Path) -> str | None:
    if not path.exists():
        return None
    data = parse_json(read_text(path, "registry"), "registry", str(path))
    flakes = data.get("flakes", []) if isinstance(data, dict) else None
    if not isinstance(flakes, list):
        raise InputError("registry", f'{path}: expected {{"flakes": [...]}}, got {show(data)}')
    for i, entry in enumerate(flakes):
        src = entry.get("from") if isinstance(entry, dict) else None
        alias = (src.get("type"), src.get("id")) if isinstance(src, dict) else None
        if alias == ("indirect", REGISTRY_ALIAS):
            to = entry.get("to")
            if not isinstance(to, dict):
                raise InputError(f"registry flakes[{i}].to", f"{path}: not an object: {show(to)}")
            try:
                return attrs_to_ref(to)
            except KeyError as exc:
                raise InputError(f"registry flakes[{i}].to", f"{path}: no {exc}") from None
    return None


def resolve_base(explicit: str | None = None) -> BaseRef:
    """--base, else $NIXLAYER_BASE, else the registry alias, else /etc/nixos."""
    candidates: list[tuple[str | None, str]] = [
        (explicit, "--base"),
        (os.environ.get("NIXLAYER_BASE"), "$NIXLAYER_BASE"),
    ]
    for raw, origin in candidates:
        if raw:
            return _checked(raw, origin)
    reg = registry_path()
    aliased = _from_registry(reg)
    if aliased:
        return _checked(aliased, f"registry {REGISTRY_ALIAS} in {reg}")
    if (DEFAULT_BASE / "flake.nix").is_file():
        return _checked(str(DEFAULT_BASE), str(DEFAULT_BASE))
    raise InputError(
        "base",
        f"no base configuration: pass --base REF, set NIXLAYER_BASE, add {REGISTRY_ALIAS} to "
        f"{reg}, or put the base flake in {DEFAULT_BASE}",
    )


def _checked(raw: str, origin: str) -> BaseRef:
    ref, path = normalize_ref(raw)
    try:
        found = path is None or (path / "flake.nix").is_file()
    except OSError as exc:  # a name too long, a symlink loop
        raise InputError("base", f"{show(raw)} (from {origin}): {exc.strerror}") from None
    if not found:
        raise InputError("base", f"{raw!r} (from {origin}) has no flake.nix")
    return BaseRef(ref=ref, origin=origin)
