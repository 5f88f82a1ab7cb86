"""config.toml on disk: read and replace it the way its owner set it up.

- A symlinked config.toml is edited at its target; the link stays.
- The new file and the backup keep the target's owner; the config keeps its mode,
  the backup is 0600 (config.toml holds runner tokens).
- Bytes are kept: a file whose every line ends in CRLF is edited as LF and written
  back as CRLF; anything else is edited as it is.
- Runs on one file serialize on an flock of the directory holding the target, taken
  before the file is read (a lock file would be a write even when the input is refused).
- Diffs shown to people (and CI logs) have tokens and secrets masked (tomlmask).
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.runner_store import tomlmask
from nixlayer.safeload import read_bytes

log = logging.getLogger("nixlayer")


@dataclass(frozen=True)
class TomlFile:
    path: Path  # as given
    target: Path  # the regular file it names (symlinks resolved)
    raw: bytes
    crlf: bool

    @property
    def text(self) -> str:
        text = self.raw.decode()
        return text.replace("\r\n", "\n") if self.crlf else text

    def encode(self, text: str) -> bytes:
        return (text.replace("\n", "\r\n") if self.crlf else text).encode()

    def diff(self, after: str) -> str:
        """Unified diff of the masked renderings of both documents (tomlmask): a
        secret is masked however it is spelled, multi-line strings included."""
        lines = difflib.unified_diff(
            tomlmask.masked(self.text).splitlines(keepends=True),
            tomlmask.masked(after).splitlines(keepends=True),
            fromfile=f"{self.path} (current)",
            tofile=f"{self.path} (nixlayer)",
        )
        return "".join(
            ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines
        )

    @property
    def backup(self) -> Path:
        return self.target.with_name(self.target.name + ".nixlayer.bak")


def _target(path: Path) -> Path:
    target = Path(os.path.realpath(path))
    if not target.is_file():
        raise InputError("--config", f"{path} is not a regular file")
    return target


def _read(path: Path, target: Path) -> TomlFile:
    try:
        raw = read_bytes(target, "--config")  # bounded, never blocks on a FIFO
        raw.decode()
    except UnicodeDecodeError as exc:
        raise InputError("--config", f"{path} is not UTF-8 text") from exc
    lines = raw.count(b"\n")
    return TomlFile(path, target, raw, crlf=lines > 0 and raw.count(b"\r\n") == lines)


def read(path: Path) -> TomlFile:
    """The file as it is now, without the lock: for validating input first."""
    return _read(path, _target(path))


@contextlib.contextmanager
def locked(path: Path, *, write: bool = True) -> Iterator[TomlFile]:
    """Hold the lock while the file is read, edited and written. The lock is an flock of
    the directory holding the target, so taking it creates nothing; `--check`
    (`write=False`) takes it shared, so it never reads a half-finished edit."""
    target = _target(path)
    try:
        fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError("--config", f"cannot lock {target.parent}: {exc.strerror}") from exc
    how = fcntl.LOCK_EX if write else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another nixlayer run on %s", target)
            fcntl.flock(fd, how)
        yield _read(path, target)
    finally:
        os.close(fd)


def _atomic(dest: Path, data: bytes, uid: int, gid: int, mode: int) -> None:
    """Write a temp file beside `dest` (private until owner and mode are set), then
    rename it over `dest`: a symlink at `dest` is replaced, never followed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)  # after chown, which clears set-id bits
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def replace(tf: TomlFile, after: str) -> None:
    """Back the current bytes up (0600, the file's owner), then write `after` with the
    file's owner and mode."""
    st = os.stat(tf.target)
    _atomic(tf.backup, tf.raw, st.st_uid, st.st_gid, 0o600)
    _atomic(tf.target, tf.encode(after), st.st_uid, st.st_gid, st.st_mode & 0o7777)
    dfd = os.open(tf.target.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
