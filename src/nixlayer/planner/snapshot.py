"""The active-unit snapshot: `systemctl list-units --all --output=json`."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError, NixlayerError
from nixlayer.safeload import parse_json, read_text


@dataclass(frozen=True)
class ActiveUnit:
    name: str
    active: str
    sub: str
    fragment_path: str | None = None  # when known, only /etc/systemd/system units are acted on


def parse_snapshot(data: Any, source: str) -> dict[str, ActiveUnit]:
    """Keep units that are not inactive, as switch-to-configuration does."""
    if not isinstance(data, list):
        raise InputError(
            source, "expected a JSON array of units (systemctl list-units --output=json)"
        )
    out: dict[str, ActiveUnit] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError(source, f"entry {i} is not an object")
        try:
            name, active, sub = str(item["unit"]), str(item["active"]), str(item.get("sub", ""))
        except KeyError as exc:
            raise InputError(source, f"entry {i} has no {exc.args[0]!r} field") from None
        if active == "inactive":
            continue
        fragment = item.get("fragment_path", item.get("FragmentPath"))
        out[name] = ActiveUnit(name, active, sub, str(fragment) if fragment else None)
    return out


def load_snapshot(path: Path) -> dict[str, ActiveUnit]:
    source = f"--units {path}"
    return parse_snapshot(parse_json(read_text(path, "--units"), "--units", str(path)), source)


def list_units_argv() -> list[str]:
    return [
        os.environ.get("NIXLAYER_SYSTEMCTL", "systemctl"),
        "list-units",
        "--all",
        "--output=json",
        "--no-pager",
    ]


def query_snapshot() -> dict[str, ActiveUnit]:
    """Ask the running systemd (no root needed)."""
    argv = list_units_argv()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise NixlayerError(f"{argv[0]} not found: pass --units FILE with a snapshot") from None
    if proc.returncode != 0:
        raise NixlayerError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    try:
        return parse_snapshot(json.loads(proc.stdout), "systemctl list-units")
    except json.JSONDecodeError as exc:
        raise NixlayerError(f"systemctl printed invalid JSON: {exc.msg}") from exc
