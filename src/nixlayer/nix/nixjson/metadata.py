"""`nix flake metadata --json REF`.

- Every version: `path` (the source in the store), `locked`, `original`, `resolved`,
  `url`, `originalUrl`, `resolvedUrl`, `lastModified`, `locks` (the flake's lock file),
  and `description` when the flake has one.
- Nix 2.26+: `fingerprint`, and `locked.__final`.
- git inputs add `revision`, `revCount` (and `dirtyRevision` for a dirty tree).
- Nix 2.8 percent-encodes `/` in `url` as `%2f`, later versions as `/` (the same URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nixlayer.errors import NixOutputError
from nixlayer.nix.nixjson._json import expect, load, optional

WHAT = "nix flake metadata --json"


@dataclass(frozen=True)
class FlakeMetadata:
    path: str  # the flake's source, copied into the store
    url: str  # the locked URL
    original_url: str | None
    locked: dict[str, Any]
    last_modified: int | None
    revision: str | None
    description: str | None
    root_inputs: tuple[str, ...] = ()  # the inputs the flake's lock gives its root


def _root_inputs(locks: dict[str, Any] | None) -> tuple[str, ...]:
    nodes = (locks or {}).get("nodes")
    root = nodes.get((locks or {}).get("root", "root")) if isinstance(nodes, dict) else None
    inputs = root.get("inputs") if isinstance(root, dict) else None
    return tuple(sorted(inputs)) if isinstance(inputs, dict) else ()


def parse(text: str) -> FlakeMetadata:
    data = expect(load(text, WHAT), dict, WHAT)
    path = optional(data, "path", str, WHAT)
    url = optional(data, "url", str, WHAT)
    if not path or not url:
        # A lazy-trees Nix may not copy the source: nixlayer needs its files on disk.
        raise NixOutputError(WHAT, f"no source path or url in {text[:200]!r}")
    return FlakeMetadata(
        path=path,
        url=url,
        original_url=optional(data, "originalUrl", str, WHAT),
        locked=optional(data, "locked", dict, WHAT) or {},
        last_modified=optional(data, "lastModified", int, WHAT),
        revision=optional(data, "revision", str, WHAT),
        description=optional(data, "description", str, WHAT),
        root_inputs=_root_inputs(optional(data, "locks", dict, WHAT)),
    )
