"""The unit-file grammar of switch-to-configuration-ng (rust-ini 0.21 with
`inline-comment`; quotes on, escapes off, no indented multi-line values).

`parse_entries` returns (section, key, value) in file order, with key None for a
section header (an empty section still exists). Keys before the first section are
dropped, as upstream does. A fast line-based path handles the files
that use none of the grammar's special cases; the full tokenizer handles the rest,
and tests check that the two agree wherever the fast path applies.
"""

from __future__ import annotations

import re

from nixlayer.errors import InputError

Entry = tuple[str, str | None, str]


class IniError(InputError):
    """The text cannot be parsed (an unclosed section header or quote, a key without '=').
    Callers that know the file re-raise it as a UnitFileError naming the file."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


# Anything that makes a file need the full tokenizer: a continuation, a quote at a
# value start (checked per line), an inline comment, a key line without = or :.
_SPECIAL = re.compile(r"\\\r?\n|[ \t][#;]")
_KEY_SPLIT = re.compile(r"[=:]")


def parse_entries(text: str) -> list[Entry]:
    if _SPECIAL.search(text) is None:
        fast = _parse_fast(text)
        if fast is not None:
            return fast
    return _Tokenizer(text).run()


def _parse_fast(text: str) -> list[Entry] | None:
    out: list[Entry] = []
    section: str | None = None
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            end = line.find("]")
            if end < 0:
                return None
            section = line[1:end].strip()
            if line[end + 1 :].strip():
                return None
            out.append((section, None, ""))
            continue
        m = _KEY_SPLIT.search(line)
        if m is None:
            return None
        value = line[m.end() :].lstrip(" \t")
        if "\\" in value:
            return None
        if value[:1] in ('"', "'"):
            # A quoted value closed on its own line: the quoted text, then the rest.
            end = value.find(value[0], 1)
            if end < 0:
                return None
            value = value[1:end] + value[end + 1 :]
        if section is not None:
            out.append((section, line[: m.start()].strip(), value.strip()))
    return out


_WS = " \t\n\r\f\v"


class _Tokenizer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)

    def run(self) -> list[Entry]:
        out: list[Entry] = []
        section: str | None = None
        s = self.s
        while True:
            while self.i < self.n and s[self.i] in _WS:
                self.i += 1
            if self.i >= self.n:
                return out
            c = s[self.i]
            if c in "#;":
                self._skip_line()
            elif c == "[":
                end = s.find("]", self.i)
                if end < 0:
                    raise IniError("unclosed section header")
                section = s[self.i + 1 : end].strip()
                out.append((section, None, ""))
                self.i = end + 1
            else:
                key = self._key()
                value = self._value()
                if section is not None:
                    out.append((section, key, value))

    def _skip_line(self) -> None:
        nl = self.s.find("\n", self.i)
        self.i = self.n if nl < 0 else nl + 1

    def _key(self) -> str:
        start = self.i
        while self.i < self.n and self.s[self.i] not in "=:":
            self.i += 1
        if self.i >= self.n:
            raise IniError(f"expected '=' after {self.s[start : self.i].strip()[:40]!r}")
        key = self.s[start : self.i].strip()
        self.i += 1
        return key

    def _value(self) -> str:
        s = self.s
        while self.i < self.n and s[self.i] in " \t":
            self.i += 1
        buf: list[str] = []
        if self.i < self.n and s[self.i] in "\"'":
            quote = s[self.i]
            end = s.find(quote, self.i + 1)
            if end < 0:
                raise IniError("unclosed quote")
            buf.append(s[self.i + 1 : end])
            self.i = end + 1
        in_cont = False
        while self.i < self.n:
            c = s[self.i]
            nxt = s[self.i + 1] if self.i + 1 < self.n else ""
            if c == "\\":
                if nxt == "\n":
                    self.i += 2
                    in_cont = True
                    continue
                if nxt == "\r" and s[self.i + 2 : self.i + 3] == "\n":
                    self.i += 3
                    in_cont = True
                    continue
                buf.append(s[self.i : self.i + 2])
                self.i += 2
                continue
            if c in " \t" and nxt in ("#", ";") and nxt:
                if not in_cont:
                    self._skip_line()
                    break
                buf.append(c)
                self.i += 1
                self._skip_line()
                continue
            if in_cont and c in "#;":
                self._skip_line()
                continue
            if c == "\n":
                self.i += 1
                break
            buf.append(c)
            self.i += 1
        return "".join(buf).strip()
