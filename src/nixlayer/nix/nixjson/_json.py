"""Reading helpers shared by the nixjson modules: decode once, check types, fail typed."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from nixlayer.errors import NixOutputError

T = TypeVar("T")


def load(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NixOutputError(what, f"not JSON ({exc}): {text[:200]!r}") from exc


def expect(value: Any, kind: type[T], what: str) -> T:
    # bool is an int in Python; Nix's numbers never are booleans.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise NixOutputError(what, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def optional(obj: dict[str, Any], key: str, kind: type[T], what: str) -> T | None:
    """An optional field: absent and JSON null are both None (Nix 2.23+ prints null)."""
    value = obj.get(key)
    return None if value is None else expect(value, kind, f"{what}.{key}")
