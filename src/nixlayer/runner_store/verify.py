"""Does DIR hold what was seeded? Against DIR's database, and against the hashes
the image itself declared (which a job cannot rewrite)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nixlayer.errors import NixlayerError
from nixlayer.nix import commands
from nixlayer.nix.confine import ConfinedNix
from nixlayer.nix.nixjson.pathinfo import PathInfo
from nixlayer.runner_store import record, store
from nixlayer.runner_store.nar import nar_hash_at


def order_by_references(paths: Iterable[str], info: dict[str, PathInfo]) -> list[str]:
    """References before referrers (a killed seed never leaves a registered path
    whose references are not), otherwise sorted."""
    todo = set(paths)
    out: list[str] = []
    placed: set[str] = set()

    def visit(p: str, stack: set[str]) -> None:
        if p in placed or p not in todo or p in stack:
            return
        stack.add(p)
        for r in sorted(info[p].references):
            if r != p:
                visit(r, stack)
        stack.discard(p)
        placed.add(p)
        out.append(p)

    for p in sorted(todo):
        visit(p, set())
    return out


@dataclass
class Findings:
    absent: list[str] = field(default_factory=list)  # registered, not on disk
    lost: list[str] = field(default_factory=list)  # image paths not valid
    rewritten: list[str] = field(default_factory=list)  # db hash != what was installed
    tampered: list[str] = field(default_factory=list)  # content hash != the image's
    checked: int = 0

    def problem(self) -> str | None:
        if self.rewritten:
            return (
                f"{len(self.rewritten)} paths are registered with another hash than the "
                f"image's (rewritten by a job?), e.g. {self.rewritten[0]}"
            )
        if self.tampered:
            return (
                f"{len(self.tampered)} paths do not hash to the image's narHash "
                f"(modified by a job?), e.g. {self.tampered[0]}"
            )
        if self.absent:
            return f"{len(self.absent)} registered paths are missing on disk, e.g. {self.absent[0]}"
        if self.lost:
            return f"{len(self.lost)} image paths are not valid, e.g. {self.lost[0]}"
        return None


def inspect(
    d: Path,
    state: record.SeedState,
    now: dict[str, PathInfo],
    image_paths: set[str],
    full: bool,
) -> Findings:
    f = Findings()
    store_fd = store.open_store(d)
    try:
        for p in sorted(now):
            try:
                os.stat(os.path.basename(p), dir_fd=store_fd, follow_symlinks=False)
            except FileNotFoundError:
                f.absent.append(p)
        f.lost = sorted(image_paths - set(now))
        f.rewritten = sorted(
            p for p, h in state.installed.items() if p in now and now[p].nar_hash != h
        )
        if full:
            for p in sorted(set(now) & (set(state.installed) | image_paths)):
                want = state.installed.get(p) or state.paths.get(p)
                if want is None or p in f.absent:
                    continue
                if nar_hash_at(store_fd, os.path.basename(p))[0] != want:
                    f.tampered.append(p)
                f.checked += 1
    finally:
        os.close(store_fd)
    return f


def verify(
    d: Path,
    state: record.SeedState,
    image_paths: set[str],
    full: bool,
    dnix: ConfinedNix,
    *,
    now: dict[str, PathInfo] | None = None,
) -> int:
    """After a seed: raise unless DIR agrees with its database and the image.
    `full` re-hashes every path: with Nix against DIR's database, and here against
    the hashes nixlayer installed (the image's own). `now`: DIR's registrations,
    when nothing was registered since they were read."""
    now = now if now is not None else store.registered(dnix)
    found = inspect(d, state, now, image_paths, full)
    problem = found.problem()
    if problem:
        raise NixlayerError(f"{d}: {problem}")
    if full:
        dnix.nix.run(commands.verify_all(dnix.store()))
        return len(now)
    return 0
