"""`runner-store status`: how each runner is set up, and the store's health.

Healthy means: DIR's database and store agree; every path nixlayer installed is
still registered with the hash it verified; no interrupted seed is pending; and
every copy-mode runner mounting DIR uses the image recorded in DIR. A running
build (Nix holds the lock of an unregistered path) and Nix's own stale `.lock`
files are reported, never called leftovers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nixlayer.errors import GuardRefusedError, InputError, NixError
from nixlayer.fsutil import lock_path, state_dir
from nixlayer.nix.confine import confine
from nixlayer.nix.runner import Nix
from nixlayer.runner_store import config, record, store
from nixlayer.runner_store.verify import inspect


def _size(store_dir: Path) -> int:
    size = 0
    for root, _dirs, files in os.walk(store_dir):  # os.walk never follows symlinks here
        for f in files:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(root, f)).st_size
    return size


def _seed_running(d: Path) -> bool:
    p = lock_path(d, "seed")
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _runner_images(runners: list[dict[str, Any]], d: Path) -> list[dict[str, Any]]:
    """Copy-mode runners whose /nix/store mount comes from DIR."""
    want = f"{d}/nix/store"
    out = []
    for r in runners:
        sources = [str(v).split(":")[0].rstrip("/") for v in r.get("volumes", [])]
        if r.get("mode") == "copy" and want in sources:
            out.append({"runner": r["name"], "image": r.get("image")})
    return out


def _match_images(
    images: list[dict[str, Any]], state: record.SeedState | None, problems: list[str]
) -> None:
    """Does each copy-mode runner use the image DIR was seeded from? (`state` None:
    the record is damaged, nothing matches.)"""
    for entry in images:
        if state is None:
            entry["matches"] = False
        elif state.image is None:
            entry["matches"] = False
            problems.append(f"runner {entry['runner']!r}: DIR records no seeded image")
        else:
            entry["matches"] = bool(entry["image"]) and state.image.matches(entry["image"])
            if not entry["matches"]:
                problems.append(
                    f"runner {entry['runner']!r} uses {entry['image']!r} but DIR was seeded "
                    f"from {state.image.reference!r}: seed that image, or configure this one"
                )


def store_health(
    directory: Path, nix: Nix, runners: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    d = directory
    out: dict[str, Any] = {"dir": str(d), "bytes": 0, "valid_paths": 0, "problems": []}
    problems: list[str] = out["problems"]
    building: list[str] = []
    stale: list[str] = []
    state = record.SeedState()
    damaged = False
    try:
        state = record.load(d)
    except record.DamagedRecordError as exc:
        # A health check: a damaged record is an unhealthy store (exit 1), not bad input.
        problems.append(exc.message)
        damaged = True
    if not (d / "nix/var/nix/db/db.sqlite").is_file():
        problems.append("no database (run `nixlayer runner-store seed`)")
    else:
        try:
            now = store.registered(confine(nix, d))
            found = inspect(d, state, now, set(state.paths), full=False)
            store_fd = store.open_store(d)
            try:
                entries = store.unregistered(store_fd, {os.path.basename(p) for p in now})
            finally:
                os.close(store_fd)
        except GuardRefusedError as exc:
            problems.append(str(exc))
        except NixError as exc:
            problems.append(exc.first_error())
        else:
            out["valid_paths"] = len(now)
            out["bytes"] = _size(d / "nix/store")
            if not now:
                problems.append("no valid paths (run `nixlayer runner-store seed`)")
            if found.problem():
                problems.append(str(found.problem()))
            building = [e.name for e in entries if e.building]
            stale = [e.name for e in entries if not e.building]
    running = _seed_running(d)
    if not running:
        if store.pending_path(d).is_file():
            problems.append("a seed was interrupted while putting paths in place: seed again")
        work = state_dir(d)
        if work.is_dir() and any(e.startswith("seed-") for e in os.listdir(work)):
            problems.append("a killed seed left its work directory: seed again to remove it")
    images = _runner_images(runners or [], d)
    _match_images(images, None if damaged else state, problems)
    out.update(
        {
            "healthy": not problems,
            "problem": problems[0] if problems else None,
            "seed_running": running,
            "building": building,  # Nix holds their locks: jobs building right now
            "unregistered": stale,  # dead builds or junk: Nix deletes them when needed
            "image": None if state.image is None else asdict(state.image),
            "runner_images": images,
        }
    )
    return out


def status(
    path: Path | str, directory: Path | str | None, nix: Nix | None = None
) -> dict[str, Any]:
    if directory is not None and not Path(directory).is_absolute():
        raise InputError("--dir", f"{directory} is not an absolute path")
    p = Path(path)
    doc = config.load(p)
    runners = config.runner_modes(doc, p)
    out: dict[str, Any] = {"config": str(p), "runners": runners}
    if directory is not None:
        d = Path(os.path.normpath(directory))
        if not d.is_dir():
            raise InputError("--dir", f"{directory} is not a directory")
        out["store"] = store_health(d, nix or Nix(), runners)
    return out
