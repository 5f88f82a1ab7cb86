"""The one place where Python values become Nix source text.

Every user-supplied string passes through `string()`; the property tests in
tests/unit/test_nixlang_roundtrip.py prove with the real Nix evaluator that it
comes back byte-identical.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_IDENT = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_'-]*$")
_KEYWORDS = frozenset({"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"})

# In a double-quoted Nix string, `\` `"` and `$` are special (`$` only before `{`,
# but escaping every `$` is simplest and always correct); CR, LF and TAB get their
# escapes so the file stays line-oriented and no editor rewrites them.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE_RE = re.compile(r'[\\"$\n\r\t]')


@dataclass(frozen=True)
class Raw:
    """A Nix expression written by nixlayer itself, never from user text."""

    text: str


NixValue = str | bool | int | None | Raw | Sequence["NixValue"] | Mapping[str, "NixValue"]


def string(value: str) -> str:
    """A Nix string literal that evaluates to exactly `value`."""
    if "\x00" in value:
        raise ValueError("Nix strings cannot contain NUL characters")
    return '"' + _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value) + '"'


def is_identifier(name: str) -> bool:
    return bool(_IDENT.fullmatch(name)) and name not in _KEYWORDS


def attr_name(name: str) -> str:
    """One attribute name: bare when it is an identifier, quoted otherwise."""
    return name if is_identifier(name) else string(name)


def attr_path(*names: str) -> str:
    return ".".join(attr_name(n) for n in names)


def value(v: NixValue, indent: int = 0) -> str:
    """Render a Python value as a Nix expression (lists and sets one item per line)."""
    pad = "  " * indent
    inner = "  " * (indent + 1)
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, Mapping):
        if not v:
            return "{ }"
        body = "".join(f"{inner}{attr_name(k)} = {value(x, indent + 1)};\n" for k, x in v.items())
        return "{\n" + body + pad + "}"
    if not v:
        return "[ ]"
    body = "".join(f"{inner}{_list_item(x, indent + 1)}\n" for x in v)
    return "[\n" + body + pad + "]"


def _list_item(v: NixValue, indent: int) -> str:
    text = value(v, indent)
    # Function applications and other compound raw expressions need parentheses
    # to stay one list element.
    if isinstance(v, Raw) and not _IDENT_PATH.fullmatch(text):
        return f"({text})"
    return text


_IDENT_PATH = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_'-]*(\.[a-zA-Z_][a-zA-Z0-9_'-]*)*$")
