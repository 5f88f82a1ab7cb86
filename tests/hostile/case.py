"""One hostile-input case: a command line, the files it reads, what may happen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    target: str  # may hold {S}, the case's sandbox


@dataclass(frozen=True)
class Dir:
    pass


@dataclass(frozen=True)
class Fifo:
    pass


Entry = bytes | Link | Dir | Fifo
DIR = Dir()
FIFO = Fifo()

# What a case may end with. "reject": exit 2, one line, nothing written. "any": the
# input may be valid (exit 0) or not (exit 2). "nix": it may also get as far as the
# corpus's stand-in nix, which refuses to do real work (exit 1, error kind nix).
REJECT, ANY, NIX = "reject", "any", "nix"


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    files: Mapping[str, Entry] = field(default_factory=dict)
    expect: str = REJECT
    mention: tuple[str, ...] = ()  # the one error line names one of these
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    guard_ok: bool = False  # exit 3 (a guard refused) is also fine
