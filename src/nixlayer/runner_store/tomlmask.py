"""config.toml with its secrets masked, for diffs shown to people and CI logs.

Masking works on the parsed document (tomlkit), not on lines: a key is judged by
its unescaped name (`"VAULT_TOK\\u0045N"` is VAULT_TOKEN), a multi-line string is
one value, an inline table's keys are keys. Masked:

- every value under a secret-looking key (token, password, secret, key, auth,
  credential, ...), tables and arrays under it included;
- `NAME=VALUE` entries (environment arrays, scripts) whose NAME is secret-looking,
  DOCKER_AUTH_CONFIG with it;
- credentials in URLs (`scheme://user:pass@host`) and GitLab tokens anywhere;
- the same in comments (a commented-out `# token = "..."` is still a token).

A masked multi-line string keeps its line count, so the diff's context stays put.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Array, InlineTable, Item, String, StringType, Table

MASK = "[MASKED]"
_SECRET_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "key",
    "auth",
    "cred",
    "cookie",
    "private",
    "session",
)
# Userinfo in a URL: everything between `scheme://` and the last `@` before the host.
_URL_CREDS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s\"']+@")
# GitLab token prefixes (runner auth, personal, deploy, CI job, registration, ...).
_GITLAB_TOKEN = re.compile(
    r"\b(?:glrt|glpat|gldt|glcbt|glptt|glft|glimt|glsoat|glagent|GR1348941)[-_]?[\w-]+"
)
# `NAME=VALUE` or `"name": "value"` inside a longer string or a comment.
# The name starts a word (not inside a path or a URL: `/srv/keys:/keys` is a volume).
_ASSIGN = re.compile(
    r"""(?<![\w/.@:-])(["']?)([A-Za-z_][\w.-]*)\1(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"',;{}\[\]]+)"""
)
_ENV_ENTRY = re.compile(r"""^([^=\s"'{}\[\]:,]+)=(.*)$""", re.S)


def secret_name(name: str) -> bool:
    """Does a key or variable name look like it holds a secret? Judged on its
    letters and digits only (case, width and invisible characters don't hide it)."""
    plain = "".join(c for c in unicodedata.normalize("NFKC", name).casefold() if c.isalnum())
    return any(w in plain for w in _SECRET_WORDS)


def mask_text(text: str) -> str:
    """Secrets inside free text: URL credentials, GitLab tokens, secret assignments."""
    text = _URL_CREDS.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _GITLAB_TOKEN.sub(MASK, text)

    def assign(m: re.Match[str]) -> str:
        if not secret_name(m.group(2)):
            return m.group(0)
        value = m.group(4)
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{quote}{MASK}{quote}"

    return _ASSIGN.sub(assign, text)


def mask_entry(value: str) -> str:
    """An environment-style `NAME=VALUE`: the whole value when NAME is secret-looking
    (DOCKER_AUTH_CONFIG's JSON included), else the secrets inside it."""
    m = _ENV_ENTRY.match(value)
    if m and secret_name(m.group(1)):
        return f"{m.group(1)}={MASK}"
    return mask_text(value)


def _string(old: Any, value: str, *, whole: bool) -> Item:
    """A string item of `old`'s kind holding `value`; a wholly masked multi-line
    string keeps its number of lines."""
    kind = old.type if isinstance(old, String) else StringType.SLB
    if whole and kind.is_multiline():
        raw = old.as_string()[3:-3] if isinstance(old, String) else ""
        return String(kind, value, "\n" * raw.count("\n") + value, old.trivia)
    literal = kind in (StringType.SLL, StringType.MLL) and "'" not in value
    new = tomlkit.string(value, literal=literal, multiline=kind.is_multiline())
    if isinstance(old, String) and kind.is_multiline() and old.as_string()[3:4] == "\n":
        # TOML drops a newline right after the opening quotes: put it back.
        new = String(new.type, value, "\n" + new.as_string()[3:-3], new.trivia)
    if isinstance(old, Item):  # keep its indent and comment
        new.trivia.__dict__.update(old.trivia.__dict__)
    return new


def _masked(item: Any, secret: bool, in_array: bool) -> Item | None:
    """The masked replacement of a scalar, or None when it stays as it is."""
    if secret:
        return _string(item, MASK, whole=True)
    if isinstance(item, str):
        new = mask_entry(item) if in_array else mask_text(item)
        if new != item:
            return _string(item, new, whole=False)
    return None


def _walk_array(arr: Array, secret: bool) -> None:
    for i, value in enumerate(list(arr)):
        if isinstance(value, InlineTable | Table):
            _walk_table(value, secret)
        elif isinstance(value, Array):
            _walk_array(value, secret)
        else:
            new = _masked(value, secret, in_array=True)
            if new is not None:
                arr[i] = new


def _walk_table(table: Container | Table | InlineTable, secret: bool) -> None:
    for key in list(table.keys()):
        value = table[key]
        inner = secret or secret_name(str(key))
        if isinstance(value, Table | InlineTable):
            _walk_table(value, inner)
        elif isinstance(value, AoT):
            for t in value:
                _walk_table(t, inner)
        elif isinstance(value, Array):
            _walk_array(value, inner)
        else:
            new = _masked(value, inner, in_array=False)
            if new is not None:
                table[key] = new


def _mask_comments(text: str) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        head, sep, comment = line.partition("#")
        out.append(head + sep + mask_text(comment) if sep else line)
    return "".join(out)


def masked(text: str) -> str:
    """`text` (valid TOML) rendered with every secret masked."""
    doc = tomlkit.parse(text)
    _walk_table(doc, False)
    return _mask_comments(mask_text_urls(tomlkit.dumps(doc)))


def mask_text_urls(text: str) -> str:
    """Last line of defence on the rendering: URL credentials and GitLab tokens left
    anywhere (a key name, a value tomlkit could not replace)."""
    return _GITLAB_TOKEN.sub(MASK, _URL_CREDS.sub(lambda m: m.group(1) + MASK + "@", text))
