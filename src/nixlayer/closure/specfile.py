"""Reading a spec from a file: strict YAML or JSON, one-line errors, and paths in
the file made relative to the file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nixlayer.closure.spec import VMSpec
from nixlayer.errors import InputError
from nixlayer.safeload import check_data, parse_json, parse_yaml, read_text

RENAMED = {"update_lock": "update_library"}


def parse_data(text: str, name: str, field: str = "SPEC") -> Any:
    """JSON for `*.json`, YAML (a superset) otherwise."""
    if name.endswith(".json"):
        return parse_json(text, field, name)
    return parse_yaml(text, field, name)


def read_spec_data(path: str) -> dict[str, Any]:
    """The raw mapping in a SPEC file (`-` reads standard input), with relative
    paths (`library`, `overrides[].src`) resolved against the file's directory."""
    data = parse_data(read_text(path, "SPEC"), path)
    if not isinstance(data, dict):
        raise InputError("SPEC", f"{path}: expected a mapping of fields, got {type(data).__name__}")
    base = Path.cwd() if path == "-" else Path(path).absolute().parent
    return resolve_relative(data, base)


def _relative(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(("./", "../")) or value in (".", ".."))


def resolve_relative(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """`./dir` in `library` or an override's `src` means beside the spec file, as a
    path in any config file does (not a git URL, not the caller's cwd)."""
    out = dict(data)
    lib = out.get("library")
    if isinstance(lib, str) and _relative(lib):
        out["library"] = os.path.normpath(base / lib)
    elif isinstance(lib, str) and lib.startswith("path:") and _relative(lib[5:].split("?")[0]):
        out["library"] = "path:" + os.path.normpath(base / lib[5:])
    overrides = out.get("overrides")
    if isinstance(overrides, list):
        out["overrides"] = [
            {**o, "src": os.path.normpath(base / o["src"])}
            if isinstance(o, dict) and _relative(o.get("src"))
            else o
            for o in overrides
        ]
    return out


def validate_spec(data: Mapping[str, Any]) -> VMSpec:
    for old, new in RENAMED.items():
        if old in data:
            raise InputError(old, f"renamed: use {new}")
    check_data(dict(data), "SPEC", "spec")
    try:
        return VMSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise spec_error(exc) from None


def load_spec(path: str, overrides: Mapping[str, Any] | None = None) -> VMSpec:
    data = read_spec_data(path)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate_spec(data)


def spec_error(exc: ValidationError) -> InputError:
    """One line naming the first bad field and the value it had."""
    errors = exc.errors()
    first = errors[0]
    field = _loc(first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    shown = "" if isinstance(value, dict) or value is None else f" (got {_short(value)})"
    more = f" [and {len(errors) - 1} more]" if len(errors) > 1 else ""
    return InputError(field, f"{msg}{shown}{more}")


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out and (part.isidentifier()):
            out += f".{part}"
        elif out:
            out += f"[{part!r}]"
        else:
            out = str(part)
    return out or "SPEC"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
