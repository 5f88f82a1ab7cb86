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


# A snapshot of 100,000 units is about 15 MiB; anything far larger is not one.
MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024
NAME_MAX = 255


def _unit_name(value: Any, source: str, i: int) -> str:
    """A unit name that is safe to join to a unit directory and to print."""
    if not isinstance(value, str):
        raise InputError(source, f"entry {i}: 'unit' is not a string")
    problem = None
    if not value or value in (".", "..") or "/" in value:
        problem = "is not a unit name"
    elif "\0" in value:
        problem = "contains a NUL character"
    else:
        try:
            if len(value.encode()) > NAME_MAX:
                problem = f"is longer than {NAME_MAX} bytes"
        except UnicodeEncodeError:
            problem = "is not valid Unicode"
    if problem:
        raise InputError(source, f"entry {i}: unit {value[:60]!r} {problem}")
    return value


def parse_snapshot(data: Any, source: str) -> dict[str, ActiveUnit]:
    """Keep units that are not inactive, as switch-to-configuration does."""
    if isinstance(data, dict) and isinstance(data.get("units"), list):
        data = data["units"]  # the per-user form: {"units": [...], "config_home": ...}
    if not isinstance(data, list):
        raise InputError(
            source, "expected a JSON array of units (systemctl list-units --output=json)"
        )
    out: dict[str, ActiveUnit] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError(source, f"entry {i} is not an object")
        if "unit" not in item or "active" not in item:
            missing = "unit" if "unit" not in item else "active"
            raise InputError(source, f"entry {i} has no {missing!r} field")
        name = _unit_name(item["unit"], source, i)
        active, sub = item["active"], item.get("sub", "")
        if not isinstance(active, str) or not isinstance(sub, str):
            raise InputError(source, f"entry {i}: 'active' and 'sub' must be strings")
        if active == "inactive":
            continue
        fragment = item.get("fragment_path", item.get("FragmentPath"))
        if fragment is not None and not isinstance(fragment, str):
            raise InputError(source, f"entry {i}: 'fragment_path' must be a string")
        out[name] = ActiveUnit(name, active, sub, fragment or None)
    return out


def read_json_file(path: Path, source: str) -> Any:
    """A JSON input file, through the one guarded reader (bounded, UTF-8, no duplicate keys),
    every refusal named by `source` (the flag and file it came from)."""
    try:
        return parse_json(read_text(path, source), source)
    except InputError as exc:
        if exc.field == source:
            raise
        raise InputError(source, f"{exc.field}: {exc.message}") from None


def load_snapshot(path: Path) -> dict[str, ActiveUnit]:
    source = f"--units {path}"
    return parse_snapshot(read_json_file(path, source), source)


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
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except FileNotFoundError:
        raise NixlayerError(f"{argv[0]} not found: pass --units FILE with a snapshot") from None
    except subprocess.TimeoutExpired:
        raise NixlayerError(f"{' '.join(argv)} did not answer in 120 s") from None
    if proc.returncode != 0:
        raise NixlayerError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    try:
        return parse_snapshot(json.loads(proc.stdout), "systemctl list-units")
    except (json.JSONDecodeError, RecursionError) as exc:
        raise NixlayerError(f"systemctl printed invalid JSON: {exc}") from None
