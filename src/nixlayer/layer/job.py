"""The job's flake: where it is, how Nix can address it, which configuration to build."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import InputError, NixError
from nixlayer.layer.base import BaseRef
from nixlayer.nix import commands
from nixlayer.nix.nixjson import evaluate
from nixlayer.nix.nixlang import attr_name
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")

# Characters a `path:` flake ref carries verbatim in every Nix we support. Nix 2.8 does
# not percent-decode, and `?`/`#` cannot be expressed at all.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/+~@=,-]+$")

KINDS = {
    # kind -> (output attribute set, attribute path under one configuration)
    "nixos": ("nixosConfigurations", ".config.system.build.toplevel"),
    "darwin": ("darwinConfigurations", ".system"),
    "system-manager": ("systemConfigs", ""),
}


@dataclass(frozen=True)
class JobFlake:
    directory: Path
    flake_dir: Path  # what Nix reads: the directory, or a staged copy of it

    @property
    def ref(self) -> str:
        return f"path:{self.flake_dir}"


def open_job(directory: Path | str, nix: Nix) -> JobFlake:
    d = Path(directory).absolute()
    if not (d / "flake.nix").is_file():
        raise InputError("FLAKE_DIR", f"{d} has no flake.nix")
    try:
        inputs = evaluate.names(
            nix.run(
                commands.eval_file_json(d / "flake.nix", "f: builtins.attrNames (f.inputs or { })")
            ).stdout
        )
    except NixError as exc:
        raise InputError(
            "FLAKE_DIR", f"{d}/flake.nix does not evaluate: {exc.first_error()}"
        ) from exc
    if "base" not in inputs:
        raise InputError(
            "FLAKE_DIR",
            f"{d}/flake.nix has no `base` input (start from "
            "`nix flake init -t github:nixlayer/nixlayer?dir=nixlib#job`)",
        )
    return JobFlake(directory=d, flake_dir=_addressable(d))


def _addressable(d: Path) -> Path:
    """The job directory itself, or a staged copy at a path every Nix can parse."""
    if _SAFE_PATH.match(str(d)):
        return d
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nixlayer" / "jobs"
    staged = cache / hashlib.sha256(str(d).encode()).hexdigest()[:16]
    if not _SAFE_PATH.match(str(staged)):
        raise InputError("FLAKE_DIR", f"cannot stage {d}: {staged} is not a plain path either")
    log.info("staging %s at %s (its path cannot be written as a flake ref)", d, staged)
    if staged.exists():
        shutil.rmtree(staged)
    shutil.copytree(d, staged, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    return staged


def configuration_name(
    job: JobFlake, base: BaseRef, kind: str, explicit: str | None, nix: Nix
) -> str:
    """The configuration to build: as the rebuild tools pick it (host name, then
    `default`), unless given."""
    attr = KINDS[kind][0]
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
    wanted = [explicit] if explicit else [socket.gethostname().split(".")[0], "default"]
    for name in wanted:
        if name in names:
            return name
    have = ", ".join(names) or "none"
    raise InputError(
        "--name" if explicit else "base",
        f"the base {base.ref} has no {attr}.{' or '.join(wanted)} (it has: {have})",
    )


def installable(job: JobFlake, kind: str, name: str) -> str:
    attr, tail = KINDS[kind]
    return f"{job.ref}#{attr}.{attr_name(name)}{tail}"
