"""`runner-store seed`: take /nix/store and its database out of an image into DIR,
incrementally, resumably, and without writing anywhere else.

1. DIR is checked (absolute, plain, not a system directory) before anything is made.
2. The archive's manifests and every layer's headers are read and checked
   (plan.py) before anything is created in DIR's store.
3. The image's database is extracted into a work directory and read with Nix;
   its paths must be what the layers hold, their references inside the image.
4. The paths DIR lacks are extracted into a staging tree through fds only
   (safefs.py), hard links made as they come, each path hashed (NAR) on a second
   core and checked against the image's narHash and narSize.
5. In chunks, references first: Nix's lock on each path taken, the names
   journalled, renamed into place, registered with `nix-store --load-db`.
A killed seed leaves its work directory (removed by the next seed; SIGTERM/SIGINT
remove it at once) and at worst journalled, unregistered names (removed next time
unless a build holds their lock).
"""

from __future__ import annotations

import datetime
import errno
import logging
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError, NixlayerError
from nixlayer.nix import commands
from nixlayer.nix.confine import ConfinedNix, confine
from nixlayer.nix.nixjson.pathinfo import PathInfo, parse
from nixlayer.nix.runner import Nix
from nixlayer.runner_store import record, statedir, store
from nixlayer.runner_store.archive import FIELD, ImageArchive
from nixlayer.runner_store.extract import Extractor
from nixlayer.runner_store.layerio import Limits
from nixlayer.runner_store.nar import nar_hash_at
from nixlayer.runner_store.plan import ImageView, stack
from nixlayer.runner_store.safefs import Tree, UnsafePathError, canonicalise_dirs, open_dir, remove
from nixlayer.runner_store.store import check_store_dir
from nixlayer.runner_store.verify import order_by_references, verify

log = logging.getLogger("nixlayer")
CHUNK = 200


@dataclass
class SeedResult:
    dir: str
    image_paths: int
    copied: list[str]
    removed_partial: list[str]
    verified: int
    image: dict[str, Any] = field(default_factory=dict)
    copy_fallback: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def seed(
    directory: Path | str,
    *,
    image: str | None = None,
    image_archive: Path | str | None = None,
    full_verify: bool = False,
    nix: Nix | None = None,
    limits: Limits | None = None,
) -> SeedResult:
    if bool(image) == bool(image_archive):
        raise InputError("--image", "give exactly one of --image and --image-archive")
    d = check_store_dir(directory)
    if image_archive is not None and not os.path.lexists(image_archive):
        raise InputError(FIELD, f"{image_archive}: no such file")
    nix = nix or Nix()
    nix.prefetch_version()  # beside the archive's checks: the first Nix call needs it
    opened = None
    try:
        if image_archive is not None:  # a hostile archive is refused before DIR is touched
            opened = _checked_archive(Path(image_archive), limits)
        d.mkdir(parents=True, exist_ok=True)
        state_fd = statedir.open_state(d)
        try:
            with statedir.seed_lock(d, state_fd):
                return _locked(
                    d,
                    state_fd,
                    image=image,
                    image_archive=image_archive,
                    opened=opened,
                    full_verify=full_verify,
                    dnix=confine(nix, d),
                    limits=limits,
                )
        finally:
            os.close(state_fd)
    except UnsafePathError as exc:
        raise NixlayerError(f"refused: {exc} (a symlink planted where nixlayer writes)") from exc
    except OSError as exc:
        raise NixlayerError(_os_message(exc)) from exc
    finally:
        if opened is not None:
            opened[0].close()


def _checked_archive(path: Path, limits: Limits | None) -> tuple[ImageArchive, ImageView]:
    """The archive opened, its manifests and layer headers checked. A compressed one is
    unpacked to a temporary file, unlinked at once (the archive keeps it open)."""
    with tempfile.TemporaryDirectory(prefix="nixlayer-archive-") as tmp:
        archive = ImageArchive(path, Path(tmp), limits)
    try:
        view = stack(archive)
        if view.db_layer is None:
            raise InputError(FIELD, f"{path}: the image has no /nix/var/nix/db/db.sqlite")
    except BaseException:
        archive.close()
        raise
    return archive, view


def _locked(
    d: Path,
    state_fd: int,
    *,
    image: str | None,
    image_archive: Path | str | None,
    opened: tuple[ImageArchive, ImageView] | None,
    full_verify: bool,
    dnix: ConfinedNix,
    limits: Limits | None,
) -> SeedResult:
    store.check_layout(d)
    valid = store.registered(dnix)  # Nix makes DIR's store and db if new
    store_fd = store.open_store(d)
    try:
        removed = store.remove_own_leftovers(
            d, state_fd, store_fd, {os.path.basename(p) for p in valid}
        )
        work = statedir.make_work(d, state_fd)
        try:
            return _seed(
                d,
                work,
                store_fd,
                valid=valid,
                removed=removed,
                image=image,
                image_archive=image_archive,
                opened=opened,
                full_verify=full_verify,
                dnix=dnix,
                limits=limits,
            )
        finally:
            _remove_work(state_fd, work)
    finally:
        os.close(store_fd)


def _os_message(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, "")
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc} ({code}, errno {exc.errno})"


def _remove_work(state_fd: int, work: Path) -> None:
    remove(state_fd, work.name)


def _seed(
    d: Path,
    work: Path,
    store_fd: int,
    *,
    valid: dict[str, PathInfo],
    removed: list[str],
    image: str | None,
    image_archive: Path | str | None,
    opened: tuple[ImageArchive, ImageView] | None,
    full_verify: bool,
    dnix: ConfinedNix,
    limits: Limits | None,
) -> SeedResult:
    nix = dnix.nix
    inspected = None
    if opened is None:
        inspected = record.inspect_image(str(image))
        archive_path = record.docker_save(inspected.image_id, work)
        opened = _checked_archive(archive_path, limits)
    else:
        archive_path = Path(str(image_archive))
    state = record.load(d)
    _refuse_rewritten(d, state, valid)
    archive, view = opened
    with archive:
        if full_verify:
            archive.verify_digests()
        image_root = work / "image"
        image_root.mkdir()
        img_tree = Tree(open_dir(_fd(work), "image"), "image")
        try:
            Extractor(archive, view, img_tree).extract_db(img_tree)
        finally:
            img_tree.close()
        image_store = dnix.store(image_root)  # under DIR: confined too
        info = parse(
            nix.run(commands.path_info_json(image_store, nix.version(), all_paths=True)).stdout
        ).valid
        _check_image_db(info, view, archive_path)
        missing = order_by_references([p for p in info if p not in valid], info)
        log.info(
            "image has %d valid paths; %s already holds %d; copying %d",
            len(info), d, len(info) - len(missing), len(missing),
        )  # fmt: skip
        installer = _Installer(
            d,
            work=work,
            store_fd=store_fd,
            archive=archive,
            view=view,
            info=info,
            dnix=dnix,
            image_store=image_store,
        )
        if missing:
            installer.install(missing, state)
    meta = archive.meta
    state.image = record.ImageRecord(
        reference=image or str(Path(str(image_archive)).resolve()),
        image_id=inspected.image_id if inspected else None,
        config_digest=meta.config_digest,
        repo_tags=(inspected.repo_tags if inspected else []) or meta.repo_tags,
        repo_digests=inspected.repo_digests if inspected else [],
        layers_verified=full_verify,
        seeded_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        path_count=len(info),
    )
    state.paths = {p: i.nar_hash for p, i in info.items()}
    record.save(d, state)
    verified = verify(d, state, set(info), full_verify, dnix, now=None if missing else valid)
    return SeedResult(
        dir=str(d),
        image_paths=len(info),
        copied=missing,
        removed_partial=removed,
        verified=verified,
        image=asdict(state.image),
        copy_fallback=installer.copy_fallback,
    )


def _fd(p: Path) -> int:
    return os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _refuse_rewritten(d: Path, state: record.SeedState, valid: dict[str, PathInfo]) -> None:
    changed = sorted(p for p, h in state.installed.items() if p in valid and valid[p].nar_hash != h)
    if changed:
        raise NixlayerError(
            f"{d}: {len(changed)} paths nixlayer installed are now registered with another "
            f"hash (rewritten by a job?), e.g. {changed[0]}; with the runners stopped, "
            "remove DIR and seed again"
        )


def _check_image_db(info: dict[str, PathInfo], view: ImageView, archive: Path) -> None:
    absent = sorted(p for p in info if os.path.basename(p) not in view.store_paths)
    if absent:
        raise InputError(
            FIELD,
            f"{archive}: the image's database lists {len(absent)} paths its layers do not "
            f"hold, e.g. {absent[0]}",
        )
    for p, i in info.items():
        outside = [r for r in i.references if r not in info]
        if outside:
            raise InputError(FIELD, f"{archive}: {p} refers to {outside[0]}, not in the image")


class _Installer:
    def __init__(
        self,
        d: Path,
        *,
        work: Path,
        store_fd: int,
        archive: ImageArchive,
        view: ImageView,
        info: dict[str, PathInfo],
        dnix: ConfinedNix,
        image_store: str,
    ) -> None:
        self.d, self.work, self.store_fd = d, work, store_fd
        self.archive, self.view, self.info = archive, view, info
        self.dnix, self.nix, self.image_store = dnix, dnix.nix, image_store
        self.copy_fallback: str | None = None

    def _free_space_check(self, names: set[str]) -> None:
        need = sum(m.size for n in names for m in self.view.members(n))
        st = os.statvfs(self.d)
        free = st.f_bavail * st.f_frsize
        if need > free:
            raise NixlayerError(
                f"{self.d}: the missing paths need {need} bytes, the filesystem has {free} "
                f"free ({errno.errorcode[errno.ENOSPC]})"
            )

    def install(self, missing: list[str], state: record.SeedState) -> None:
        names = {os.path.basename(p) for p in missing}
        self._free_space_check(names)
        # Staged where jobs cannot reach (DIR/.nixlayer), on DIR's filesystem for rename.
        if os.fstat(self.store_fd).st_dev != os.stat(self.work).st_dev:
            raise NixlayerError(
                f"{self.d}/nix/store and {self.d}/.nixlayer are on different filesystems; "
                "nixlayer renames paths into place and needs them on one"
            )
        os.mkdir(self.work / "stage", 0o700)
        stage_fd = _fd(self.work / "stage")
        stage = Tree(stage_fd, "stage")
        hashed: dict[str, Future[tuple[str, int]]] = {}
        try:
            with ThreadPoolExecutor(max_workers=1) as hasher:

                def done(name: str) -> None:
                    top = stage.dir(name) if self._is_dir(name) else None
                    if top is not None:
                        canonicalise_dirs(top, keep_writable=True)
                    hashed[name] = hasher.submit(nar_hash_at, stage_fd, name)

                extractor = Extractor(self.archive, self.view, stage)
                extractor.extract(names, done)
                got = {n: f.result() for n, f in hashed.items()}
            self.copy_fallback = extractor.copier.fallback_reason
            for p in missing:
                h, size = got.get(os.path.basename(p), ("", -1))
                want = self.info[p]
                if h != want.nar_hash or size != want.nar_size:
                    raise NixlayerError(
                        f"{p}: extracted content does not match the image's database "
                        f"({h}, {size} bytes != {want.nar_hash}, {want.nar_size} bytes); "
                        "nothing was registered"
                    )
            for part in commands.chunks(missing, CHUNK):
                self._put_in_place(list(part), stage, stage_fd, state)
        finally:
            stage.close()

    def _is_dir(self, name: str) -> bool:
        """The path's top is a directory (declared, or implied by members under it)."""
        top = f"nix/store/{name}"
        declared = [m for m in self.view.members(name) if m.name == top]
        return not declared or declared[0].kind == "dir"

    def _put_in_place(
        self, part: list[str], stage: Tree, stage_fd: int, state: record.SeedState
    ) -> None:
        names = [os.path.basename(p) for p in part]
        with store.path_locks(self.store_fd, names):
            now = store.registered(self.dnix)
            now_names = {os.path.basename(p) for p in now}
            todo = [n for n in names if n not in now_names]
            store.journal(self.d, todo)
            for name in todo:
                store.ensure_gone(self.store_fd, name, now_names)
                top = stage.dir(name) if self._is_dir(name) else None
                stage.forget(name)
                os.rename(name, name, src_dir_fd=stage_fd, dst_dir_fd=self.store_fd)
                if top is not None:  # read-only once moved (a move needs it writable)
                    fd = open_dir(self.store_fd, name)
                    try:
                        os.fchmod(fd, 0o555)
                        os.utime(fd, ns=(1_000_000_000, 1_000_000_000))
                    finally:
                        os.close(fd)
            full = [f"/nix/store/{n}" for n in todo]
            for p in full:
                state.installed[p] = self.info[p].nar_hash
            record.save(self.d, state)
            if full:
                registration = self.nix.run(
                    commands.dump_db(self.image_store, full), tool="nix-store"
                ).stdout
                self.nix.run(
                    commands.load_db(self.dnix.store()),
                    tool="nix-store",
                    stdin=registration,
                )
            store.clear_journal(self.d)
