"""`nix eval --json`: whatever the expression returns, the same in every version.

nixlayer evaluates only names (attribute names, input names) and single strings (a file
name); these check that shape instead of trusting it.
"""

from __future__ import annotations

from nixlayer.nix.nixjson._json import expect, load

WHAT = "nix eval --json"


def names(text: str) -> list[str]:
    items = expect(load(text, WHAT), list, WHAT)
    return [expect(item, str, f"{WHAT}[{i}]") for i, item in enumerate(items)]


def strings_or_null(text: str) -> list[str | None]:
    items = expect(load(text, WHAT), list, WHAT)
    return [
        None if item is None else expect(item, str, f"{WHAT}[{i}]") for i, item in enumerate(items)
    ]


def string(text: str) -> str:
    return expect(load(text, WHAT), str, WHAT)
