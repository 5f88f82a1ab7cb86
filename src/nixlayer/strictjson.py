"""Strict readers for nixlayer's own state files (a switch's state, a seed's record):
each checks one value's JSON type, where a bool is never a number, and raises a
ValueError that names the field. They stay plain Python so that the commands reading
those files (`switch`, `runner-store seed`) do not import pydantic at start-up; the
specs users write are pydantic models (closure/spec.py), with their JSON Schema."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from nixlayer.safeload import join_key, show

T = TypeVar("T")


def _typed(v: Any, kind: type[T], where: str, what: str) -> T:
    if not isinstance(v, kind):
        raise ValueError(f"{where or 'the top level'} is not {what}: {show(v, 30)}")
    return v


def obj(v: Any, where: str, allowed: Iterable[str] | None = None) -> dict[str, Any]:
    """An object; with `allowed`, one holding no other keys."""
    d = _typed(v, dict, where, "an object")
    if allowed is not None:
        unknown = sorted(set(d) - set(allowed))
        if unknown:
            raise ValueError(f"{join_key(where, unknown[0])} is not a known field")
    return d


def get(d: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in d:
        raise ValueError(f"{join_key(where, key)} is missing")
    return d[key]


def array(v: Any, where: str) -> list[Any]:
    return _typed(v, list, where, "a list")


def string(v: Any, where: str) -> str:
    return _typed(v, str, where, "a string")


def opt_string(v: Any, where: str) -> str | None:
    return None if v is None else string(v, where)


def integer(v: Any, where: str) -> int:
    if isinstance(v, bool):  # an int to Python, never a count
        raise ValueError(f"{where} is not an integer: {show(v, 30)}")
    return _typed(v, int, where, "an integer")


def boolean(v: Any, where: str) -> bool:
    return _typed(v, bool, where, "true or false")


def strings(v: Any, where: str) -> list[str]:
    return [string(s, f"{where}[{i}]") for i, s in enumerate(array(v, where))]


def string_map(v: Any, where: str) -> dict[str, str]:
    return {k: string(s, join_key(where, k)) for k, s in obj(v, where).items()}
