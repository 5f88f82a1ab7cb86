"""Byte ranges of an open file, and decompression that stops at a limit."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from dataclasses import dataclass
from typing import IO, cast

from nixlayer.errors import InputError


@dataclass(frozen=True)
class Limits:
    """How far a compressed layer may expand: past `floor` bytes, no more than
    `ratio` times its compressed size. Nix store layers compress 3-10x; a bomb
    compresses 1000x."""

    floor: int = 256 << 20
    ratio: int = 200

    def for_size(self, compressed: int) -> int:
        return max(self.floor, self.ratio * compressed)


def compression_of(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return None


class RangeFile(io.RawIOBase):
    """[offset, offset+size) of an fd, read with pread: seekable, never past the end,
    and independent of the fd's own position (several may share one fd)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self.fd, self.offset, self.size, self.pos = fd, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + pos)
        return self.pos

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self.size - self.pos)
        if n <= 0:
            return 0
        data = os.pread(self.fd, n, self.offset + self.pos)
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)


def decompressor(kind: str, raw: RangeFile) -> IO[bytes]:
    src = cast(IO[bytes], raw)
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=src, mode="rb"))
    if kind == "bzip2":
        return cast(IO[bytes], bz2.BZ2File(src))
    if kind == "xz":
        return cast(IO[bytes], lzma.LZMAFile(src))
    raise InputError("--image-archive", f"{kind} compression is not supported")


class Bounded(io.RawIOBase):
    """A read-only stream that refuses to yield more than the limit allows."""

    def __init__(self, inner: IO[bytes], limits: Limits, compressed: int, what: str) -> None:
        self.inner = inner
        self.limit = limits.for_size(compressed)
        self.what = what
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self.inner.read(len(buf))
        except (OSError, EOFError, lzma.LZMAError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # a real I/O error, reported with its errno
            raise InputError(
                "--image-archive", f"{self.what}: corrupt compressed data ({exc})"
            ) from exc
        self.count += len(data)
        if self.count > self.limit:
            raise InputError(
                "--image-archive",
                f"{self.what} expands past {self.limit} bytes (a decompression bomb?)",
            )
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()
