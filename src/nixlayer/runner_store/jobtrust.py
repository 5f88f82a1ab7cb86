"""Would a runner's jobs be trusted clients of the host nix-daemon, or build unsandboxed?

The daemon decides trust from the peer credentials of the socket connection
(SO_PEERCRED: the job process's uid and primary gid as the host kernel sees them),
names them with the host's user and group databases, and matches `trusted-users`
like this (Nix's `matchUser`): `*`; the user name; `@group` where group is the
peer's primary group, or a group whose member list names the user.

What fixes a job's uid, as gitlab-runner (>= 16.8) applies it:
- `user` in [runners.docker] takes precedence over a job's own `image: docker: user:`,
  and a job's user must be in `allowed_users` (default: just `user`). Only a
  numeric `UID:GID` counts: a user *name*, or a uid without a gid, is resolved in
  the image's /etc/passwd, which the job chooses (`image:`), so it may be root.
- Without `user`, the job runs as whatever its image or `.gitlab-ci.yml` says:
  root, unless the engine remaps users (userns-remap) and the runner does not
  turn that off (`userns_mode = "host"`).
"""

from __future__ import annotations

import grp
import logging
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass

from nixlayer.nix.nixjson.config import NixSettings

log = logging.getLogger("nixlayer")

_UID_GID = re.compile(r"^(\d+):(\d+)$")


@dataclass(frozen=True)
class JobIdentity:
    uid: int
    gid: int
    why: str  # how the uid is fixed, for messages


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)  # what the daemon calls a uid without a passwd entry


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def trusted_by(settings: NixSettings, uid: int, gid: int) -> str | None:
    """The trusted-users entry that trusts uid:gid, or None."""
    user, group = user_name(uid), group_name(gid)
    for entry in settings.trusted_users:
        if entry in ("*", user):
            return entry
        if entry.startswith("@"):
            if entry[1:] == group:
                return entry
            try:
                if user in grp.getgrnam(entry[1:]).gr_mem:
                    return entry
            except KeyError:
                continue
    return None


def engine_remaps_users(docker_host: str | None) -> bool:
    """Does the runner's Docker engine run with userns-remap? (`docker info`)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    argv = [docker, *(["-H", docker_host] if docker_host else []), "info", "--format"]
    try:
        proc = subprocess.run(
            [*argv, "{{json .SecurityOptions}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "name=userns" in proc.stdout


def job_identity(docker: dict[str, object]) -> JobIdentity | None:
    """The uid:gid every job of this runner runs as, if the runner fixes it. The
    runner's `user` wins over the job's; `allowed_users` alone fixes nothing (a job
    that names no user gets its image's default user, root in most images)."""
    user = str(docker.get("user") or "").strip()
    m = _UID_GID.match(user)
    if m is None:
        return None
    return JobIdentity(int(m.group(1)), int(m.group(2)), f'user = "{user}" in [runners.docker]')


def trust_problem(
    settings: NixSettings, docker: dict[str, object], remapped_engine: bool
) -> str | None:
    """Why this runner's jobs would be trusted clients, or None if they cannot be."""
    ident = job_identity(docker)
    if ident is not None:
        entry = trusted_by(settings, ident.uid, ident.gid)
        if entry is None:
            return None
        return (
            f"its jobs run as {ident.uid}:{ident.gid} ({ident.why}), which the host "
            f"nix-daemon trusts through trusted-users entry {entry!r}: remove that from "
            "trusted-users, or set user to an untrusted UID:GID"
        )
    # Remapped root is an unprivileged host uid without a passwd entry: only `*` trusts it.
    if (
        remapped_engine
        and str(docker.get("userns_mode") or "") != "host"
        and "*" not in settings.trusted_users
    ):
        return None
    root = trusted_by(settings, 0, 0)
    if root is None:
        return None
    user = str(docker.get("user") or "").strip()
    how = (
        f'user = "{user}" is resolved in the job\'s image (it may be root)'
        if user
        else "no user in [runners.docker], so a job runs as root (or any user it asks for)"
    )
    return (
        f"{how}, and the host nix-daemon trusts root through trusted-users entry {root!r}: "
        "set trusted-users without root (nor @root, @wheel or * if they cover root) in the "
        'daemon\'s nix.conf, or set user = "UID:GID" (an untrusted account) in [runners.docker]'
    )


def sandbox_problem(settings: NixSettings) -> str | None:
    if settings.sandbox == "true":
        if settings.sandbox_fallback:
            log.warning(
                "the host nix-daemon has sandbox-fallback = true: on a kernel without "
                "namespaces builds would run unsandboxed; set sandbox-fallback = false"
            )
        return None
    return (
        f"the host nix-daemon has sandbox = {settings.sandbox}: job builds would run "
        "outside the sandbox (as a build user, seeing the host's /tmp and more); set "
        "sandbox = true in the daemon's nix.conf (with sandbox-paths giving /bin/sh)"
    )
