"""Edits of one runner's tables in config.toml (tomlkit): each keeps comments,
indentation and unrelated keys, and changes nothing when the value is already there."""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.items import AoT, Array, InlineTable, Table

from nixlayer.runner_store import jobtrust

# Container paths nixlayer manages; any other mount of them is replaced.
MANAGED = ("/nix/store", "/nix/var/nix/db", "/nix/var/nix/daemon-socket", "/nix")
PROFILES = "/nix/var/nix/profiles/per-user"
PROFILES_TMPFS = "rw,exec,mode=1777"


def container_path(volume: str) -> str | None:
    parts = volume.split(":")
    return parts[1] if len(parts) >= 2 else None


def add_key(table: Table, key: str, value: Any) -> None:
    """Add a key with the indentation its sibling keys use."""
    indent = next(
        (
            item.trivia.indent
            for k, item in table.value.body
            if k is not None and not isinstance(item, Table | AoT)
        ),
        "",
    )
    # Before the table's trailing blank lines and comments (which belong to what follows).
    body = table.value.body
    tail: list[Any] = []
    while body and body[-1][0] is None:
        tail.insert(0, body.pop())
    table.add(key, value)
    table[key].trivia.indent = indent
    body.extend(tail)


def set_volumes(docker: Table, wanted: list[str]) -> None:
    existing = docker.get("volumes")
    if not isinstance(existing, Array):
        arr = tomlkit.array()
        arr.extend(wanted)
        arr.multiline(True)
        add_key(docker, "volumes", arr)
        return
    # Replace managed mounts in place (first occurrence), drop the rest of them, append.
    placed: set[str] = set()
    i = 0
    while i < len(existing):
        item = str(existing[i])
        cp = container_path(item)
        if cp in MANAGED:
            want = next((w for w in wanted if container_path(w) == cp), None)
            if want is not None and cp not in placed:
                if item != want:
                    existing[i] = want
                placed.add(cp)
                i += 1
                continue
            del existing[i]
            continue
        i += 1
    for w in wanted:
        if container_path(w) not in placed:
            existing.append(w)


def set_environment(runner: Table, mode: str) -> None:
    env = runner.get("environment")
    if mode == "daemon":
        if not isinstance(env, Array):
            arr = tomlkit.array()
            arr.append("NIX_REMOTE=daemon")
            add_key(runner, "environment", arr)
            return
        idx = [i for i, e in enumerate(env) if str(e).startswith("NIX_REMOTE=")]
        if not idx:
            env.append("NIX_REMOTE=daemon")
            return
        if str(env[idx[0]]) != "NIX_REMOTE=daemon":
            env[idx[0]] = "NIX_REMOTE=daemon"
        for i in reversed(idx[1:]):
            del env[i]
    elif isinstance(env, Array):
        for i in reversed([i for i, e in enumerate(env) if str(e) == "NIX_REMOTE=daemon"]):
            del env[i]


def set_group(docker: Table, gid: int | None) -> None:
    if gid is None:
        return
    groups = docker.get("group_add")
    if isinstance(groups, Array):
        if str(gid) not in [str(g) for g in groups]:
            groups.append(str(gid))
        return
    arr = tomlkit.array()
    arr.append(str(gid))
    add_key(docker, "group_add", arr)


def profiles_tmpfs(docker: Table) -> str:
    """Options of the per-user profiles tmpfs. Docker gives a tmpfs over a directory
    the image has (nixos/nix has per-user/) that directory's mode, so `mode=1777`
    only holds where the image lacks it; a uid:gid the runner fixes owns it."""
    ident = jobtrust.job_identity(dict(docker))
    if ident is None:
        return PROFILES_TMPFS
    return f"{PROFILES_TMPFS},uid={ident.uid},gid={ident.gid}"


def set_profiles_tmpfs(docker: Table, mode: str) -> None:
    """nix-env and nix profile need a writable per-user profiles directory."""
    tmpfs = docker.get("tmpfs")
    if mode != "daemon":
        if isinstance(tmpfs, Table | InlineTable) and str(tmpfs.get(PROFILES, "")).startswith(
            PROFILES_TMPFS
        ):
            del tmpfs[PROFILES]
        return
    opts = profiles_tmpfs(docker)
    if isinstance(tmpfs, Table | InlineTable):
        if str(tmpfs.get(PROFILES, "")) != opts:
            tmpfs[PROFILES] = opts
        return
    inline = tomlkit.inline_table()
    inline[PROFILES] = opts
    add_key(docker, "tmpfs", inline)


def docker_table(runner: Table) -> Table:
    docker = runner.get("docker")
    if not isinstance(docker, Table):
        docker = tomlkit.table()
        runner.add("docker", docker)
    return docker


def set_image(docker: Table, image: str) -> None:
    if str(docker.get("image", "")) == image:
        return
    if "image" in docker:
        docker["image"] = image
    else:
        add_key(docker, "image", image)
