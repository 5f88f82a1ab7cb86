"""Edit gitlab-runner's config.toml in place: comments, other runners and unrelated
keys stay byte-for-byte (tomlkit), a second run changes nothing."""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Array, Table

from nixlayer.errors import InputError
from nixlayer.fsutil import write_files_atomically
from nixlayer.safeload import check_data, read_text

log = logging.getLogger("nixlayer")

DOCKER_EXECUTORS = ("docker", "docker-autoscaler", "docker+machine", "docker-windows")
# Container paths nixlayer manages; any other mount of them is replaced.
MANAGED = ("/nix/store", "/nix/var/nix/db", "/nix/var/nix/daemon-socket", "/nix")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
COPY_RISKS = (
    "copy mode shares one store read-write between jobs: a job's garbage collection "
    "can delete paths other jobs are using (GC roots are not shared)",
    "concurrent jobs write one SQLite database: 'database is busy', schema races, and "
    "corruption when Nix versions with different locking meet",
    "any job can write into store paths that other projects then trust",
    "the job image must be exactly the image the store was seeded from (its own /nix is hidden)",
    "prefer --mode daemon: a host nix-daemon, read-only mounts and NIX_REMOTE=daemon",
)


@dataclass(frozen=True)
class Change:
    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"{self.path} (current)",
                tofile=f"{self.path} (nixlayer)",
            )
        )


def mounts(mode: str, directory: str | None) -> list[str]:
    prefix = (directory or "").rstrip("/")
    if mode == "daemon":
        return [
            f"{prefix}/nix/store:/nix/store:ro",
            f"{prefix}/nix/var/nix/db:/nix/var/nix/db:ro",
            f"{prefix}/nix/var/nix/daemon-socket:/nix/var/nix/daemon-socket:ro",
        ]
    return [f"{prefix}/nix/store:/nix/store:rw", f"{prefix}/nix/var/nix/db:/nix/var/nix/db:rw"]


def container_path(volume: str) -> str | None:
    parts = volume.split(":")
    return parts[1] if len(parts) >= 2 else None


def load(path: Path) -> tomlkit.TOMLDocument:
    text = read_text(path, "--config")
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise InputError("--config", f"{path} is not valid TOML: {exc}") from exc
    except (RecursionError, ValueError) as exc:  # deep nesting, a 5000-digit number
        raise InputError("--config", f"{path} is not valid TOML: {type(exc).__name__}") from exc
    check_data(doc.unwrap(), "--config", str(path))
    return doc


def runner_tables(doc: tomlkit.TOMLDocument, path: Path) -> list[Table]:
    runners = doc.get("runners")
    if runners is None:
        return []
    if not isinstance(runners, AoT | list):
        raise InputError("--config", f"{path}: `runners` is not an array of tables ([[runners]])")
    return [r for r in runners if isinstance(r, Table)]


def select(tables: list[Table], names: list[str], path: Path) -> list[Table]:
    by_name = {str(t.get("name", "")): t for t in tables}
    if not names:
        chosen = [t for t in tables if str(t.get("executor", "")) in DOCKER_EXECUTORS]
        if not chosen:
            raise InputError("--runner", f"{path} has no docker runner")
        return chosen
    out = []
    for n in names:
        t = by_name.get(n)
        if t is None:
            raise InputError(
                "--runner", f"no runner named {n!r} in {path} (have: {', '.join(sorted(by_name))})"
            )
        if str(t.get("executor", "")) not in DOCKER_EXECUTORS:
            raise InputError(
                "--runner", f"runner {n!r} uses the {t.get('executor')!r} executor, not docker"
            )
        out.append(t)
    return out


def _add_key(table: Table, key: str, value: Any) -> None:
    """Add a key with the indentation its sibling keys use."""
    indent = next(
        (
            item.trivia.indent
            for k, item in table.value.body
            if k is not None and not isinstance(item, Table | AoT)
        ),
        "",
    )
    table.add(key, value)
    table[key].trivia.indent = indent


def _set_volumes(docker: Table, wanted: list[str]) -> None:
    existing = docker.get("volumes")
    if existing is not None and not isinstance(existing, Array):
        raise InputError("--config", f"`volumes` of a runner is not an array: {existing!r:.60}")
    if not isinstance(existing, Array):
        arr = tomlkit.array()
        arr.extend(wanted)
        arr.multiline(True)
        _add_key(docker, "volumes", arr)
        return
    targets = {container_path(w) for w in wanted}
    # Replace managed mounts in place (first occurrence), drop duplicates, append the rest.
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
        if container_path(w) not in placed and container_path(w) in targets:
            existing.append(w)


def _set_environment(runner: Table, mode: str) -> None:
    env = runner.get("environment")
    if mode == "daemon":
        if not isinstance(env, Array):
            arr = tomlkit.array()
            arr.append("NIX_REMOTE=daemon")
            _add_key(runner, "environment", arr)
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


def configure(
    path: Path | str,
    *,
    mode: str,
    runners: list[str] | None = None,
    directory: str | None = None,
    image: str | None = None,
    check: bool = False,
) -> Change:
    p = Path(path)
    if mode not in ("daemon", "copy"):
        raise InputError("--mode", f"{mode!r} is not daemon or copy")
    if directory is not None and not directory.startswith("/"):
        raise InputError("--dir", f"{directory} is not an absolute path")
    if mode == "copy" and not directory:
        raise InputError("--dir", "copy mode needs --dir (where `runner-store seed` put the store)")
    if image is not None and mode == "copy" and not DIGEST.search(image):
        raise InputError(
            "--image", f"{image!r} has no @sha256: digest; copy mode needs the exact image"
        )
    doc = load(p)
    before = tomlkit.dumps(doc)
    chosen = select(runner_tables(doc, p), runners or [], p)
    wanted = mounts(mode, directory)
    for runner in chosen:
        docker = runner.get("docker")
        if not isinstance(docker, Table):
            docker = tomlkit.table()
            runner.add("docker", docker)
        if image is not None and str(docker.get("image", "")) != image:
            if "image" in docker:
                docker["image"] = image
            else:
                _add_key(docker, "image", image)
        if mode == "copy" and not DIGEST.search(str(docker.get("image", ""))):
            raise InputError(
                "--image",
                f"runner {runner.get('name')!r}: copy mode needs an image pinned "
                "by digest (pass --image nixos/nix@sha256:...)",
            )
        _set_volumes(docker, wanted)
        _set_environment(runner, mode)
    change = Change(p, before, tomlkit.dumps(doc))
    if mode == "copy":
        for risk in COPY_RISKS:
            log.warning("%s", risk)
    if change.changed and not check:
        backup = p.with_name(p.name + ".nixlayer.bak")
        write_files_atomically({backup: change.before})
        write_files_atomically({p: change.after})
    return change


def runner_modes(doc: tomlkit.TOMLDocument, path: Path) -> list[dict[str, Any]]:
    """How each runner is set up, for `runner-store status`."""
    out = []
    for t in runner_tables(doc, path):
        docker = t.get("docker") if isinstance(t.get("docker"), Table) else {}
        assert isinstance(docker, dict)
        vols = [str(v) for v in docker.get("volumes", [])]
        env = [str(e) for e in t.get("environment", [])]
        managed = {
            container_path(v): v.rsplit(":", 1)[-1] for v in vols if container_path(v) in MANAGED
        }
        if (
            {"/nix/store", "/nix/var/nix/db", "/nix/var/nix/daemon-socket"} <= set(managed)
            and "NIX_REMOTE=daemon" in env
            and managed["/nix/store"] == "ro"
        ):
            mode = "daemon"
        elif {"/nix/store", "/nix/var/nix/db"} <= set(managed):
            mode = "copy"
        elif managed:
            mode = "partial"
        else:
            mode = "none"
        out.append(
            {
                "name": str(t.get("name", "")),
                "executor": str(t.get("executor", "")),
                "mode": mode,
                "image": str(docker.get("image", "")) or None,
                "volumes": [v for v in vols if container_path(v) in MANAGED],
            }
        )
    return out
