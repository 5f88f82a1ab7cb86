"""Nix confined to a directory others can write into: no symlink under it is followed.

A check before a Nix call cannot protect a directory that others write into (the
runner store: copy-mode jobs have its database read-write): between the check and
Nix's open, a symlink can be renamed over a file Nix opens by path (db/reserved,
which Nix grows; db/big-lock, which it creates), and Nix running as root follows it.
So every such call runs in a private mount namespace where the directory is
bind-mounted onto itself with `nosymfollow` (Linux 5.10): the kernel itself then
refuses to follow any symlink in a path on that mount (ELOOP), for the whole call,
however late the symlink appears. readlink(2) still works, so Nix reads and dumps
the store's own symlinks as before. The wrapper is a prefix of the logged command
(commands.nosymfollow), which pastes into a root shell as it is.
"""

from __future__ import annotations

import copy
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import NixlayerError
from nixlayer.nix import commands
from nixlayer.nix.runner import Nix

_PROBE_TIMEOUT = 60


@dataclass(frozen=True)
class ConfinedNix:
    """A Nix whose every call sees `root` mounted nosymfollow. Only `confine` makes
    one, so a function that takes it cannot run Nix on `root` unprotected."""

    nix: Nix
    root: Path

    def store(self, root: Path | None = None) -> str:
        """The store URI of `root` (by default the confined directory itself), which
        must lie inside the confined directory."""
        where = root if root is not None else self.root
        if where != self.root and self.root not in where.parents:
            raise ValueError(f"{where} is not under the confined {self.root}")
        return commands.chroot_store(where)


def confine(nix: Nix, root: Path) -> ConfinedNix:
    """`nix` with every call wrapped so that no symlink under `root` is followed.
    Refuses (NixlayerError, exit 1) rather than run unprotected: not root, no
    unshare/mount, or a kernel that ignores nosymfollow (checked in mountinfo)."""
    real = Path(os.path.realpath(root))
    wrapper = commands.nosymfollow(real)
    _probe(real, wrapper)
    confined = copy.copy(nix)  # keeps the caller's binary, options, env (and a fake's log)
    confined.wrapper = wrapper
    return ConfinedNix(confined, real)


def _refuse(root: Path, why: str) -> NixlayerError:
    return NixlayerError(
        f"{root}: Nix runs on this directory only where it cannot follow a symlink "
        f"planted there (a private nosymfollow mount), and {why}; refusing to run it unprotected"
    )


def _probe(root: Path, wrapper: list[str]) -> None:
    if os.geteuid() != 0:
        raise _refuse(root, "making that mount needs root")
    argv = [*wrapper, "cat", "/proc/self/mountinfo"]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _refuse(root, f"`unshare` failed ({exc})") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise _refuse(root, f"making it failed: {last}")
    if not nosymfollow_mounted(proc.stdout, root):
        raise _refuse(root, "this kernel ignored nosymfollow (it needs Linux 5.10 or later)")


def nosymfollow_mounted(mountinfo: str, root: Path) -> bool:
    """Is the last mount on `root` in this /proc/self/mountinfo text nosymfollow?"""
    # mountinfo escapes space, tab, newline and backslash as octal.
    escaped = str(root)
    for ch in "\\ \t\n":
        escaped = escaped.replace(ch, f"\\{ord(ch):03o}")
    options: list[str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == escaped:
            options = fields[5].split(",")
    return options is not None and "nosymfollow" in options
