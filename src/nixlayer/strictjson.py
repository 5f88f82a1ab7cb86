"""Strict readers for nixlayer's own state files (a switch's state, a seed's record):
each checks one value's JSON type, where a bool is never a number, and raises a
ValueError that names the field. They stay plain Python so that the commands reading
those files (`switch`, `runner-store seed`) do not import pydantic at start-up; the
specs users write are pydantic models (closure/spec.py), with their JSON Schema."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nixlayer.safeload import join_key, show


def field(where: str, key: str) -> str:
    return join_key(where, key)


def obj(v: Any, where: str, allowed: Iterable[str] | None = None) -> dict[str, Any]:
    """An object; with `allowed`, one holding no other keys."""
    if not isinstance(v, dict):
        raise ValueError(f"{where or 'the top level'} is not an object: {show(v, 30)}")
    if allowed is not None:
        unknown = sorted(set(v) - set(allowed))
        if unknown:
            raise ValueError(f"{field(where, unknown[0])} is not a known field")
    return v


def get(d: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in d:
        raise ValueError(f"{field(where, key)} is missing")
    return d[key]


def array(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list):
        raise ValueError(f"{where} is not a list: {show(v, 30)}")
    return v


def string(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{where} is not a string: {show(v, 30)}")
    return v


def opt_string(v: Any, where: str) -> str | None:
    return None if v is None else string(v, where)


def integer(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):  # bool is an int to Python
        raise ValueError(f"{where} is not an integer: {show(v, 30)}")
    return v


def boolean(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{where} is not true or false: {show(v, 30)}")
    return v


def strings(v: Any, where: str) -> list[str]:
    return [string(s, f"{where}[{i}]") for i, s in enumerate(array(v, where))]


def string_map(v: Any, where: str) -> dict[str, str]:
    return {k: string(s, field(where, k)) for k, s in obj(v, where).items()}
