"""`nix path-info --json`, in every shape Nix has printed it.

- Nix <= 2.18 (2.8 here): a JSON list of objects, each with a `"path"`; an invalid
  path is `{"path": ..., "valid": false}`.
- Nix 2.19 .. 2.32, and 2.33+ with `--json-format 1`: an object keyed by store path,
  whose value is `null` for an invalid path (absent fields are `null` since 2.23).
- Nix 2.33+ warns when `--json` comes without `--json-format`; older Nix rejects
  the flag, so the argv builder (`nix/commands.py`) asks for format 1 only where it
  exists. Keys and references given as base names (format 2's habit) are accepted.

Hashes are normalised to SRI (`sha256-<base64>`), whether Nix printed SRI or the
older `sha256:<nix base32>`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

STORE_DIR = "/nix/store"
_NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"
_DIGEST_BYTES = {"sha256": 32, "sha512": 64, "sha1": 20, "md5": 16}


class PathInfoFormatError(ValueError):
    """Nix printed something that is not path-info JSON of any known shape."""


@dataclass(frozen=True)
class PathInfo:
    path: str  # full store path
    nar_hash: str  # SRI
    nar_size: int
    references: tuple[str, ...]  # full store paths
    deriver: str | None = None
    registration_time: int | None = None
    ca: str | None = None
    signatures: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The store path's base name (hash-name)."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PathInfoResult:
    valid: dict[str, PathInfo]
    invalid: tuple[str, ...]


def _nix32_decode(text: str, size: int) -> bytes:
    """Nix's base32: least significant 5-bit group last in the string."""
    out = bytearray(size)
    for n, ch in enumerate(reversed(text)):
        digit = _NIX32.find(ch)
        if digit < 0:
            raise PathInfoFormatError(f"{text!r}: not Nix base32")
        b = n * 5
        i, j = divmod(b, 8)
        out[i] |= (digit << j) & 0xFF
        carry = digit >> (8 - j)
        if carry:
            if i + 1 >= size:
                raise PathInfoFormatError(f"{text!r}: too long for the hash")
            out[i + 1] |= carry
    return bytes(out)


def to_sri(value: str) -> str:
    """`sha256-<b64>` stays; `sha256:<nix32|hex|b64>` becomes SRI."""
    sep_char = ":" if ":" in value else "-"
    algo, sep, digest = value.partition(sep_char)
    size = _DIGEST_BYTES.get(algo)
    if not sep or size is None:
        raise PathInfoFormatError(f"{value!r}: not a hash Nix prints")
    try:
        if len(digest) == size * 2:
            raw = bytes.fromhex(digest)
        elif len(digest) == (size * 8 + 4) // 5:
            raw = _nix32_decode(digest, size)
        else:
            raw = base64.b64decode(digest, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise PathInfoFormatError(f"{value!r}: {exc}") from exc
    if len(raw) != size:
        raise PathInfoFormatError(f"{value!r}: wrong length for {algo}")
    return f"{algo}-{base64.b64encode(raw).decode()}"


def _full(path: str) -> str:
    return path if path.startswith("/") else f"{STORE_DIR}/{path}"


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    return v if isinstance(v, str) and v else None


def _one(path: str, obj: dict[str, Any]) -> PathInfo:
    try:
        nar_hash = obj["narHash"]
        nar_size = obj["narSize"]
        refs = obj.get("references") or []
    except (KeyError, TypeError) as exc:
        raise PathInfoFormatError(f"{path}: missing {exc}") from exc
    if not isinstance(nar_hash, str) or not isinstance(nar_size, int) or isinstance(nar_size, bool):
        raise PathInfoFormatError(f"{path}: narHash/narSize of the wrong type")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise PathInfoFormatError(f"{path}: references is not a list of paths")
    reg = obj.get("registrationTime")
    sigs = obj.get("signatures") or []
    deriver = _opt_str(obj, "deriver")
    return PathInfo(
        path=_full(path),
        nar_hash=to_sri(nar_hash),
        nar_size=nar_size,
        references=tuple(_full(r) for r in refs),
        deriver=_full(deriver) if deriver else None,
        registration_time=reg if isinstance(reg, int) else None,
        ca=_opt_str(obj, "ca"),
        signatures=tuple(s for s in sigs if isinstance(s, str)),
    )


def parse(text: str) -> PathInfoResult:
    """Parse any known shape of `nix path-info --json` output."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PathInfoFormatError(f"not JSON: {exc}") from exc
    valid: dict[str, PathInfo] = {}
    invalid: list[str] = []
    if isinstance(data, list):  # Nix <= 2.18
        for obj in data:
            if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
                raise PathInfoFormatError("a list entry without a path")
            if obj.get("valid") is False:
                invalid.append(_full(obj["path"]))
                continue
            info = _one(obj["path"], obj)
            valid[info.path] = info
    elif isinstance(data, dict):  # Nix >= 2.19
        for key, obj in data.items():
            if obj is None:
                invalid.append(_full(key))
                continue
            if not isinstance(obj, dict):
                raise PathInfoFormatError(f"{key}: not an object")
            info = _one(key, obj)
            valid[info.path] = info
    else:
        raise PathInfoFormatError(f"unexpected JSON {type(data).__name__}")
    return PathInfoResult(valid=valid, invalid=tuple(invalid))
