"""Read `org.nixos.bootspec.v1` (RFC 0125) from a toplevel's boot.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixlayer.errors import NixlayerError

V1 = "org.nixos.bootspec.v1"


@dataclass(frozen=True)
class Bootspec:
    init: str
    initrd: str | None
    kernel: str | None
    system: str | None
    label: str | None


def read_bootspec(toplevel: Path) -> Bootspec | None:
    """The v1 document, or None when the system has no boot.json (recent imageless
    systems may omit it). Unknown keys and extensions are ignored."""
    path = toplevel / "boot.json"
    if not path.is_file():
        return None
    try:
        doc: Any = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise NixlayerError(f"{path}: not valid JSON: {exc}") from exc
    v1 = doc.get(V1) if isinstance(doc, dict) else None
    if not isinstance(v1, dict):
        return None
    return Bootspec(
        init=str(v1.get("init") or toplevel / "init"),
        initrd=_opt_str(v1.get("initrd")),
        kernel=_opt_str(v1.get("kernel")),
        system=_opt_str(v1.get("system")),
        label=_opt_str(v1.get("label")),
    )


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
