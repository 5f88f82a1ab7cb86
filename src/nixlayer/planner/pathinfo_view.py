"""`nix path-info --json` as {store path: NAR size}, in every Nix dialect: 2.8 to 2.18
print a list of objects with "path"; 2.19 and later (2.26, 2.34) an object keyed by path,
whose values may be null for invalid paths.

A local view for the planner: when nix/nixjson/pathinfo.py (runner-store branch) lands,
`nar_sizes` becomes a call to it and this module goes.
"""

from __future__ import annotations

import json
from typing import Any

from nixlayer.errors import NixlayerError


def nar_sizes(text: str) -> dict[str, int]:
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise NixlayerError(f"nix path-info printed invalid JSON: {exc}") from None
    if isinstance(data, list):
        items = [(e.get("path"), e) for e in data if isinstance(e, dict)]
    elif isinstance(data, dict):
        items = list(data.items())
    else:
        raise NixlayerError("nix path-info printed neither a list nor an object")
    out: dict[str, int] = {}
    for path, info in items:
        if not isinstance(path, str) or not isinstance(info, dict):
            continue  # null: not valid in this store
        size = info.get("narSize")
        out[path] = size if isinstance(size, int) and not isinstance(size, bool) else 0
    return out
