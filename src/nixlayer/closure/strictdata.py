"""Reading user data files strictly: UTF-8 only, bounded size and depth, no YAML
aliases (a 583-byte alias bomb expands to gigabytes), duplicate keys refused
instead of silently keeping the last, and no string Nix or a file could not hold
(NUL, lone surrogates). Every refusal is an InputError naming where it is."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 4 << 20
MAX_DEPTH = 32


def read_text(path: Path | str, field: str, limit: int = MAX_BYTES) -> str:
    """A text file (or standard input for `-`) as str."""
    from nixlayer.errors import InputError

    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as fh:
                raw = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(field, f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > limit:
        raise InputError(field, f"{path} is larger than {limit} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(field, f"{path} is not UTF-8 text (byte {exc.start})") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads_json(text: str, field: str, where: str) -> Any:
    from nixlayer.errors import InputError

    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(field, f"{where}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:
        raise InputError(field, f"{where}: invalid JSON: {exc}") from None
    except RecursionError:
        raise InputError(field, f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    check_tree(data, field, where)
    return data


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases and with duplicate keys refused."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def loads_yaml(text: str, field: str, where: str) -> Any:
    from nixlayer.errors import InputError

    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise InputError(field, f"{where}: invalid YAML{at}: {problem}") from None
    except RecursionError:
        raise InputError(field, f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    check_tree(data, field, where)
    return data


def check_tree(data: Any, field: str, where: str) -> None:
    """Refuse deep nesting, non-text keys and strings with NUL or lone surrogates.
    Iterative, so hostile depth cannot exhaust the stack. Errors name the field at
    fault (`ssh_keys[0]`; `--catalog.profiles[1]` under a prefix other than SPEC)."""
    from nixlayer.errors import InputError

    def name(path: str) -> str:
        if not path:
            return field
        return path if field == "SPEC" else f"{field}.{path}"

    todo: list[tuple[Any, str, int]] = [(data, "", 0)]
    while todo:
        node, path, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise InputError(name(path), f"{where}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, str):
            _check_str(node, name(path), where)
        elif isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise InputError(name(path), f"{where}: key {key!r} is not text")
                _check_str(key, name(path), where)
                todo.append((value, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(node, list):
            todo += [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node)]
        elif not (node is None or isinstance(node, bool | int | float)):
            raise InputError(name(path), f"{where}: a {type(node).__name__} is not JSON data")


def _check_str(text: str, field: str, where: str) -> None:
    from nixlayer.errors import InputError

    if "\x00" in text:
        raise InputError(field, f"{where}: contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(field, f"{where}: contains a lone surrogate (invalid Unicode)") from None
