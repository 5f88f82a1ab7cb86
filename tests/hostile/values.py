"""Pools of hostile values and files the corpus draws from."""

from __future__ import annotations

import json
import random
from typing import Any

import yaml

# Strings a field may receive. Most are invalid wherever a name is expected; some are
# valid free text, so the corpus accepts exit 0 for field mutations unless the value
# can never be valid anywhere (HOSTILE_ALWAYS).
STRINGS: dict[str, str] = {
    "surrogate": "a\ud800b",
    "nul": "a\x00b",
    "long300": "a" * 300,
    "long100k": "x" * 100_000,
    "newline": "a\nb",
    "crlf": "a\r\nb",
    "nix_injection": '"; builtins.abort "pwned"; "',
    "interpolation": "${builtins.readFile /etc/passwd}",
    "shell": "$(touch /tmp/nixlayer-pwned)",
    "dotdot": "../../../etc",
    "proc": "/proc/1",
    "emoji": "\U0001f4a5",
    "rtl_override": "\u202eevil",
    "empty": "",
    "space": " ",
    "nbsp": "\u00a0",
    "backslash": "a\\b",
    "quotes": "a'b\"c",
    "dash": "-rf",
    "format": "%s%n{0}",
    "bom": "\ufeffname",
    "ansi": "\x1b[31mred",
    "zero_width": "a\u200bb",
    "slash": "a/b",
    "dot": ".",
    "glob": "*",
}
HOSTILE_ALWAYS = {"surrogate", "nul"}

OTHERS: dict[str, Any] = {
    "int": 1,
    "negative": -1,
    "huge_int": 10**100,
    "float": 1.5,
    "true": True,
    "null": None,
    "list": ["a"],
    "dict": {"a": 1},
    "empty_list": [],
    "nested_list": [[["x"]]],
    "deep": None,  # filled below: 100 levels
}
_deep: Any = "x"
for _ in range(100):
    _deep = [_deep]
OTHERS["deep"] = _deep

VALUES: dict[str, Any] = {**STRINGS, **OTHERS}


def dump(data: Any, fmt: str) -> bytes:
    """A spec-like document as bytes. JSON escapes lone surrogates (\\ud800), as a
    hostile producer would write them."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=True).encode()
    return yaml.safe_dump(data, allow_unicode=False, width=1 << 20).encode("utf-8")


def alias_bomb(levels: int, fanout: int = 9) -> bytes:
    """The billion-laughs YAML: `levels` anchors, each a list of `fanout` aliases."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * fanout) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]")
    return ("\n".join(lines) + "\n").encode()


def deep_yaml(depth: int, flow: bool = True) -> bytes:
    if flow:
        return ("x: " + "[" * depth + "1" + "]" * depth + "\n").encode()
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)).encode() + b"  " * depth + b"v\n"


def deep_json(depth: int) -> bytes:
    return ('{"x": ' + "[" * depth + "1" + "]" * depth + "}").encode()


def corrupt(data: bytes, rng: random.Random) -> bytes:
    """Insert bytes that are not UTF-8 at a random place."""
    pos = rng.randrange(len(data) + 1)
    bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
    return data[:pos] + bad + data[pos:]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, max(2, len(data)))]
