"""Reading untrusted input files: one guarded way for every reader (specs, fleets,
catalogs, unit snapshots, flake.lock, registry.json, config.toml).

Every input is treated as hostile. A file must be a regular file of bounded size
holding UTF-8 text (a BOM is dropped). YAML is parsed in bounded passes: the event
stream first (depth), then the node graph (aliases expanded by count, never by
building them: a 600-byte alias bomb is refused in milliseconds), then duplicate
keys, and only then constructed. JSON refuses duplicate keys and NaN/Infinity. Every
string in the result is checked for NUL and lone surrogates. Each refusal is an
`InputError` naming the file (or field) and the value.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError

MAX_BYTES = 16 * 1024 * 1024  # far above any spec, lock file or config.toml
MAX_DEPTH = 64  # nesting of lists and mappings
MAX_NODES = 200_000  # values after expanding YAML aliases


def show(value: Any, limit: int = 60) -> str:
    """A value for a one-line message: repr, cut short, never raising."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_bytes(path: Path | str, field: str, *, max_bytes: int = MAX_BYTES) -> bytes:
    """A regular file's content; `-` reads standard input. Never blocks on a FIFO or
    a device, never reads a directory or an endless file."""
    if str(path) == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
    else:
        name = os.fspath(path)
        if "\0" in name:
            raise InputError(field, f"path contains a NUL character: {show(name)}")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(field, f"cannot read {name}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise InputError(field, f"cannot read {name}: Is a directory")
            if not stat.S_ISREG(st.st_mode):
                raise InputError(field, f"cannot read {name}: not a regular file")
            if st.st_size > max_bytes:
                raise InputError(field, f"{name} is too large ({st.st_size} bytes)")
            chunks = []
            total = 0
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:  # a file in /proc or /sys reports size 0
                    break
            data = b"".join(chunks)
        except OSError as exc:
            raise InputError(field, f"cannot read {name}: {exc.strerror}") from None
        finally:
            os.close(fd)
    if len(data) > max_bytes:
        raise InputError(field, f"{path} is too large (over {max_bytes} bytes)")
    return data


def decode(data: bytes, field: str, where: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1]
        raise InputError(
            field, f"{where} is not UTF-8 text (byte 0x{bad.hex()} at offset {exc.start})"
        ) from None
    if "\0" in text:
        raise InputError(field, f"{where} contains a NUL byte (at offset {text.index(chr(0))})")
    return text


def read_text(path: Path | str, field: str, *, max_bytes: int = MAX_BYTES) -> str:
    """A regular file's UTF-8 text, guarded as `read_bytes` and `decode` say."""
    return decode(read_bytes(path, field, max_bytes=max_bytes), field, str(path))


# --- structured data -------------------------------------------------------------


def check_data(data: Any, field: str, where: str = "") -> None:
    """Refuse values no reader should see: NUL, lone surrogates, NaN, over-deep nesting.

    The error names the value's own place (`shares['/mnt/x'].tag`), else `field`,
    and says `where` it came from (a file name)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    tail = f" (in {where})" if where else ""
    while stack:
        value, at, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(at or field, f"nested deeper than {MAX_DEPTH} levels{tail}")
        if isinstance(value, str):
            _check_str(value, at or field, tail)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InputError(at or field, f"not a finite number: {value}{tail}")
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str):
                    _check_str(k, f"{at}[key]" if at else f"{field} key", tail)
                stack.append((v, join_key(at, k), depth + 1))
        elif isinstance(value, list | tuple):
            stack.extend((v, f"{at}[{i}]", depth + 1) for i, v in enumerate(value))


def join_key(at: str, key: Any) -> str:
    """`at.key`, the key shown quoted unless it is an identifier (hostile keys stay one line)."""
    name = key if isinstance(key, str) and key.isidentifier() else show(key)
    return f"{at}.{name}" if at else str(name)


def _check_str(value: str, field: str, tail: str) -> None:
    if "\0" in value:
        raise InputError(field, f"contains a NUL character: {show(value)}{tail}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            field, f"is not valid Unicode (a lone surrogate): {show(value)}{tail}"
        ) from None


def where_prefix(where: str) -> str:
    return f"{where}: " if where else ""


def parse_json(text: str, field: str, where: str = "") -> Any:
    """JSON with duplicate keys, NaN/Infinity and over-deep nesting refused."""
    pre = where_prefix(where)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise InputError(field, f"{pre}duplicate key {show(k)}")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise InputError(field, f"{pre}not a finite number: {name}")

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            field, f"{pre}invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise InputError(field, f"{pre}nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer with thousands of digits
        raise InputError(field, f"{pre}invalid JSON: {exc}") from None
    check_data(data, field, where)
    return data


def parse_yaml(text: str, field: str, where: str = "") -> Any:
    """One YAML document, safely (nixlayer/safeyaml.py; imported on first use, so
    commands that read no YAML never load PyYAML)."""
    from nixlayer.safeyaml import parse_yaml as parse

    return parse(text, field, where)


def load_data(path: Path | str, field: str, *, fmt: str | None = None) -> Any:
    """A YAML or JSON file (by `fmt`, else by suffix: .json is JSON, the rest YAML,
    which also reads JSON)."""
    text = read_text(path, field)
    kind = fmt or ("json" if str(path).endswith(".json") else "yaml")
    where = "standard input" if str(path) == "-" else str(path)
    return parse_json(text, field, where) if kind == "json" else parse_yaml(text, field, where)


# --- where output goes ---------------------------------------------------------------

PSEUDO_FS = ("/proc", "/sys", "/dev")


def check_target_dir(path: Path | str, field: str) -> Path:
    """A directory nixlayer may create files under: an existing directory, or a path
    whose nearest existing ancestor is one; never inside /proc, /sys or /dev."""
    name = os.fspath(path)
    if not name or "\0" in name:
        raise InputError(field, f"not a usable directory path: {show(name)}")
    p = Path(os.path.abspath(os.path.expanduser(name)))
    real = Path(os.path.realpath(p))
    for pseudo in PSEUDO_FS:
        if real == Path(pseudo) or Path(pseudo) in real.parents:
            raise InputError(field, f"{name} is inside {pseudo}, not a place for files")
    probe = p
    while not os.path.lexists(probe):
        probe = probe.parent
    if not probe.is_dir():
        what = (
            "a broken symlink" if probe.is_symlink() and not probe.exists() else "not a directory"
        )
        raise InputError(field, f"{probe} is {what}")
    return p
