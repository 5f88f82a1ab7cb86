"""Read a SPEC file (YAML or JSON), apply flag overrides, validate into a VMSpec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from nixlayer.closure.spec import VMSpec
from nixlayer.errors import InputError
from nixlayer.safeload import load_data


def read_spec_data(path: str) -> dict[str, Any]:
    """The raw mapping in a SPEC file (`-` reads standard input), read by the guarded
    loader (bounded YAML, no duplicate keys, UTF-8 only)."""
    data = load_data(path, "SPEC", fmt="json" if path.endswith(".json") else "yaml")
    if not isinstance(data, dict):
        raise InputError("SPEC", f"{path}: expected a mapping of fields, got {type(data).__name__}")
    return data


def validate_spec(data: Mapping[str, Any]) -> VMSpec:
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
