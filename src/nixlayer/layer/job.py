"""The job's flake: where it is, how Nix can address it, which configuration to build.

A git checkout is addressed as `git+file:` (Nix copies only its tracked files, as
`nixos-rebuild --flake .` does): `.git` and untracked build artefacts never reach the
store. The flake is only ever evaluated purely (flake mode), never with `--file`/`--impure`,
so it cannot read the runner's files before the guard has looked at the switch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import InputError, NixError
from nixlayer.layer.base import BaseRef
from nixlayer.layer.kinds import KINDS, Kind
from nixlayer.nix import commands
from nixlayer.nix.nixjson import evaluate, metadata
from nixlayer.nix.nixlang import attr_name
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")

# Characters a flake ref carries verbatim in every Nix we support. Nix 2.8 does not
# percent-decode, and `?`/`#` cannot be expressed at all.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/+~@=,-]+$")
# git must not run anything the checkout's own config names (core.fsmonitor is a command).
_GIT = ("git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null")
GIT_TIMEOUT = 60


@dataclass(frozen=True)
class JobFlake:
    directory: Path
    ref: str  # path:DIR, git+file://ROOT?dir=SUB, or path: of a staged copy
    staged: Path | None = None  # the staged copy, when the path cannot be a flake ref


def open_job(directory: Path | str, nix: Nix, base: BaseRef) -> JobFlake:
    d = Path(directory).absolute()
    if not (d / "flake.nix").is_file():
        raise InputError("FLAKE_DIR", f"{d} has no flake.nix")
    job = _addressable(d)
    try:
        meta = metadata.parse(
            nix.run(
                [
                    *commands.flake_metadata(job.ref),
                    "--no-write-lock-file",
                    *commands.override_input("base", base.ref),
                ],
                # Only a probe: its warnings are about our own flags (a job without `base`
                # "does not match" the override); the job's evaluation relays the flake's own.
                warning_level=logging.DEBUG,
            ).stdout
        )
    except NixError as exc:
        raise InputError(
            "FLAKE_DIR", f"{d}/flake.nix does not evaluate: {exc.first_error()}"
        ) from exc
    if "base" not in meta.root_inputs:
        raise InputError(
            "FLAKE_DIR",
            f"{d}/flake.nix has no `base` input (start from "
            "`nix flake init -t github:nixlayer/nixlayer?dir=nixlib#job`)",
        )
    return job


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*_GIT, *args], cwd=cwd, capture_output=True, check=False, timeout=GIT_TIMEOUT
    )


def git_root(d: Path) -> Path | None:
    """The work tree `d` lies in, or None (not a checkout, or no git)."""
    try:
        proc = _git("rev-parse", "--show-toplevel", cwd=d)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return Path(os.fsdecode(proc.stdout.strip()))


def tracked_files(root: Path, sub: Path) -> list[Path]:
    """Tracked files under `sub` (relative to the work tree root)."""
    proc = _git("ls-files", "-z", "--cached", "--", str(sub), cwd=root)
    if proc.returncode != 0:
        raise InputError("FLAKE_DIR", f"git ls-files failed in {root}: {proc.stderr.decode()}")
    return [Path(os.fsdecode(p)) for p in proc.stdout.split(b"\0") if p]


def _addressable(d: Path) -> JobFlake:
    """How Nix reads the job: a checkout's tracked files, else the directory; staged
    at a plain path when its own path cannot be written as a flake ref."""
    root = git_root(d)
    if root is None:
        if _SAFE_PATH.match(str(d)):
            return JobFlake(d, f"path:{d}")
        return _stage(d, None)
    sub = d.relative_to(root) if d != root else Path()
    files = tracked_files(root, sub)
    if sub / "flake.nix" not in files:
        raise InputError(
            "FLAKE_DIR",
            f"{d}/flake.nix is not tracked by git: `git add` it (Nix reads only the tracked "
            "files of a git checkout)",
        )
    if (d / "flake.lock").exists() and sub / "flake.lock" not in files:
        log.warning("%s/flake.lock is not tracked by git, so Nix ignores it: `git add` it", d)
    if _SAFE_PATH.match(str(root)) and _SAFE_PATH.match(str(sub)):
        query = f"?dir={sub}" if str(sub) != "." else ""
        return JobFlake(d, f"git+file://{root}{query}")
    return _stage(d, [f.relative_to(sub) for f in files])


def _stage(d: Path, files: list[Path] | None) -> JobFlake:
    """A copy at a plain path: of `files` (a checkout's tracked files), else of all of `d`."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nixlayer" / "jobs"
    staged = cache / hashlib.sha256(str(d).encode()).hexdigest()[:16]
    if not _SAFE_PATH.match(str(staged)):
        raise InputError("FLAKE_DIR", f"cannot stage {d}: {staged} is not a plain path either")
    log.info("staging %s at %s (its path cannot be written as a flake ref)", d, staged)
    if staged.is_symlink():
        staged.unlink()
    elif staged.exists():
        shutil.rmtree(staged)
    if files is None:
        shutil.copytree(d, staged, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        return JobFlake(d, f"path:{staged}", staged)
    staged.mkdir(parents=True)
    for rel in files:
        src, dst = d / rel, staged / rel
        if ".git" in rel.parts:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    return JobFlake(d, f"path:{staged}", staged)


def configuration_name(
    job: JobFlake, base: BaseRef, kind: Kind, explicit: str | None, nix: Nix
) -> str:
    """The configuration to build: as the rebuild tools pick it (host name, then
    `default`), unless given."""
    attr = KINDS[kind].outputs
    try:
        out = nix.run(
            [
                *commands.eval_json(f"{job.ref}#{attr}", "builtins.attrNames"),
                *commands.override_input("base", base.ref),
            ]
        ).stdout
    except NixError as exc:
        raise InputError(
            "base", f"cannot evaluate the job over {base.ref}: {exc.first_error()}"
        ) from exc
    names = evaluate.names(out)
    wanted = [explicit] if explicit else [host_name(), "default"]
    for name in wanted:
        if name in names:
            return name
    have = ", ".join(names) or "none"
    raise InputError(
        "--name" if explicit else "base",
        f"the base {base.ref} has no {attr}.{' or '.join(wanted)} (it has: {have})",
    )


def host_name() -> str:
    """This machine's short host name: the configuration the rebuild tools pick first."""
    import socket  # only here: a named configuration needs no host name

    return socket.gethostname().split(".")[0]


def installable(job: JobFlake, kind: Kind, name: str) -> str:
    spec = KINDS[kind]
    return f"{job.ref}#{spec.outputs}.{attr_name(name)}{spec.attr_tail}"
