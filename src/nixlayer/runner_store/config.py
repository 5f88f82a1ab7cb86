"""Edit gitlab-runner's config.toml in place: comments, other runners and unrelated
keys stay byte-for-byte (tomlkit), a second run changes nothing.

DIR (`--dir`) is a store *root*: the directory that contains `nix/store`, as in
Nix's `local?root=DIR`. The host's own store is `--dir /` (daemon mode's default);
`seed --dir /srv/nix` fills /srv/nix/nix/store. `--dir /nix` is refused (it would
mean /nix/nix/store).

Daemon mode is safe by construction: before writing, nixlayer reads the host
nix-daemon's effective settings (runner_store/daemon.py) and refuses (exit 3) a
runner whose jobs would be trusted clients or whose builds would run unsandboxed
(runner_store/jobtrust.py).
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Table

from nixlayer.errors import GuardRefusedError, InputError
from nixlayer.runner_store import jobtrust, tomledit, tomlfile
from nixlayer.runner_store.tomledit import MANAGED, container_path
from nixlayer.safeload import check_data, read_text

if TYPE_CHECKING:
    from nixlayer.runner_store.daemon import DaemonInfo

log = logging.getLogger("nixlayer")

DOCKER_EXECUTORS = ("docker", "docker-autoscaler", "docker+machine", "docker-windows")
EXACT_IMAGE = re.compile(r"(@sha256:[0-9a-f]{64}|^sha256:[0-9a-f]{64})$")
_PLAIN_DIR = re.compile(r"^/(?:[A-Za-z0-9._+@-]+(?:/[A-Za-z0-9._+@-]+)*)?$")
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
    diff_text: str  # secrets masked
    runners: list[str] = field(default_factory=list)
    # daemon mode --image: the image's store paths, now valid on the host
    image_paths: int | None = None
    backup: Path | None = None  # beside the file (a symlink's target)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return self.diff_text


def check_dir(directory: str, flag: str = "--dir") -> str:
    """A store root that fits in a volume spec unambiguously."""
    if not directory.startswith("/"):
        raise InputError(flag, f"{directory!r} is not an absolute path")
    if not _PLAIN_DIR.match(directory) or any(p in ("..", ".") for p in directory.split("/")):
        raise InputError(
            flag,
            f"{directory!r}: use a plain normalised path (letters, digits, . _ + @ -; no "
            "':', ',', whitespace, '..' or trailing '/')",
        )
    root = Path(directory)
    if directory == "/nix" or (
        root.name == "nix" and (root / "store").is_dir() and not (root / "nix/store").exists()
    ):
        raise InputError(
            flag,
            f"{directory} holds the store itself; DIR is the directory that contains "
            f"nix/store (for {directory}/store pass --dir {root.parent})",
        )
    return directory


def mounts(mode: str, directory: str) -> list[str]:
    prefix = directory.rstrip("/")
    if mode == "daemon":
        # No database mount: the daemon owns the database; jobs only need the store
        # (read-only) and the socket.
        return [
            f"{prefix}/nix/store:/nix/store:ro",
            f"{prefix}/nix/var/nix/daemon-socket:/nix/var/nix/daemon-socket:ro",
        ]
    return [f"{prefix}/nix/store:/nix/store:rw", f"{prefix}/nix/var/nix/db:/nix/var/nix/db:rw"]


def load(path: Path) -> tomlkit.TOMLDocument:
    return parse(read_text(path, "--config").replace("\r\n", "\n"), path)


def parse(text: str, path: Path) -> tomlkit.TOMLDocument:
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
    """Every docker runner by default; else every runner carrying one of `names`
    (gitlab-runner does not make names unique: all runners of a name are chosen)."""
    if not names:
        chosen = [t for t in tables if str(t.get("executor", "")) in DOCKER_EXECUTORS]
        if not chosen:
            raise InputError("--runner", f"{path} has no docker runner")
        return chosen
    have = sorted({str(t.get("name", "")) for t in tables})
    out: list[Table] = []
    for n in dict.fromkeys(names):
        matches = [t for t in tables if str(t.get("name", "")) == n]
        if not matches:
            raise InputError(
                "--runner", f"no runner named {n!r} in {path} (have: {', '.join(have)})"
            )
        for t in matches:
            if str(t.get("executor", "")) not in DOCKER_EXECUTORS:
                raise InputError(
                    "--runner", f"runner {n!r} uses the {t.get('executor')!r} executor, not docker"
                )
        if len(matches) > 1:
            log.warning("%d runners are named %r: configuring all of them", len(matches), n)
        out += matches
    return out


def socket_group(directory: str) -> int | None:
    """The group a non-root job needs to reach the daemon's socket, if others can't."""
    sock_dir = Path(directory) / "nix/var/nix/daemon-socket"
    try:
        st_dir = os.stat(sock_dir)
        st_sock = os.stat(sock_dir / "socket")
    except OSError:
        return None
    if not st_dir.st_mode & stat.S_IXOTH:
        return st_dir.st_gid
    if not st_sock.st_mode & stat.S_IWOTH:
        return st_sock.st_gid
    return None


def _guard_daemon(info: DaemonInfo, chosen: list[Table]) -> None:
    problem = jobtrust.sandbox_problem(info.settings)
    if problem:
        raise GuardRefusedError(f"daemon mode refused: {problem}")
    for runner in chosen:
        docker = runner.get("docker")
        table: dict[str, Any] = dict(docker) if isinstance(docker, Table) else {}
        remapped = False
        if jobtrust.job_identity(table) is None and jobtrust.trusted_by(info.settings, 0, 0):
            host = table.get("host")
            remapped = jobtrust.engine_remaps_users(str(host) if host else None)
        problem = jobtrust.trust_problem(info.settings, table, remapped)
        if problem:
            raise GuardRefusedError(
                f"daemon mode refused for runner {runner.get('name')!r}: {problem}"
            )


@dataclass(frozen=True)
class _Edit:
    mode: str
    root: str
    runners: list[str]
    image: str | None
    info: DaemonInfo | None  # the host daemon's settings (daemon mode)

    def apply(self, text: str, p: Path) -> tuple[str, list[Table]]:
        """The edited text and the runners chosen; raises on any rejected input."""
        doc = parse(text, p)
        chosen = select(runner_tables(doc, p), self.runners, p)
        if self.info is not None:
            _guard_daemon(self.info, chosen)
        gid = socket_group(self.root) if self.mode == "daemon" else None
        for runner in chosen:
            docker = tomledit.docker_table(runner)
            if self.image is not None:
                tomledit.set_image(docker, self.image)
            if self.mode == "copy" and not EXACT_IMAGE.search(str(docker.get("image", ""))):
                raise InputError(
                    "--image",
                    f"runner {runner.get('name')!r}: copy mode needs the exact image (pass "
                    "--image NAME@sha256:DIGEST or --image sha256:IMAGEID)",
                )
            tomledit.set_volumes(docker, mounts(self.mode, self.root))
            tomledit.set_environment(runner, self.mode)
            tomledit.set_group(docker, gid)
            tomledit.set_profiles_tmpfs(docker, self.mode)
        return tomlkit.dumps(doc), chosen


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
    if mode == "copy" and not directory:
        raise InputError("--dir", "copy mode needs --dir (where `runner-store seed` put the store)")
    root = check_dir(directory or "/")
    if mode == "copy":
        if not (Path(root) / "nix/var/nix/db/db.sqlite").is_file():
            raise InputError("--dir", f"{root} holds no seeded store (run `runner-store seed`)")
        if image is not None and not EXACT_IMAGE.search(image):
            raise InputError(
                "--image",
                f"{image!r} is neither NAME@sha256:DIGEST nor an image ID sha256:...; "
                "copy mode needs the exact image the store was seeded from",
            )
    # Every rejection happens on this unlocked read, before a lock file exists; the
    # edit is made again under the lock on what the file holds then.
    first = tomlfile.read(p).text
    info = None
    if mode == "daemon":
        from nixlayer.runner_store.daemon import daemon_info

        select(runner_tables(parse(first, p), p), runners or [], p)  # the file's errors first
        info = daemon_info(root)
    edit = _Edit(mode, root, runners or [], image, info)
    edit.apply(first, p)
    with tomlfile.locked(p, write=not check) as tf:
        after, chosen = edit.apply(tf.text, p)
        imported = None
        if mode == "daemon" and image is not None and not check:
            from nixlayer.runner_store.jobimage import import_image

            imported = len(import_image(image, root))
        elif mode == "daemon" and image is None:
            log.warning(
                "a job image that keeps its own Nix or shell in /nix/store (nixos/nix) "
                "needs its store paths in the host store: pass --image to import them"
            )
        change = Change(
            p,
            tf.text,
            after,
            tf.diff(after),
            runners=[str(r.get("name", "")) for r in chosen],
            image_paths=imported,
            backup=tf.backup,
        )
        if mode == "copy":
            for risk in COPY_RISKS:
                log.warning("%s", risk)
        if change.changed and not check:
            tomlfile.replace(tf, after)
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
            {"/nix/store", "/nix/var/nix/daemon-socket"} <= set(managed)
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
