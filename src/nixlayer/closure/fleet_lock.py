"""How a fleet locks its VMs: each library once, each distinct lock once.

What a VM's `nix flake lock` (lock.py) ends with depends on its flake.nix and on
the pins it carries over from its old lock, nothing else: every source override is
re-pinned on every run and Nix drops what flake.nix no longer names, so the only
pins that survive are the library's (and those of any input the template adds),
and those only when the library is not being re-pinned. So VMs whose flake.nix is
byte-identical and that carry the same library pins get the same lock: the fleet
runs `nix flake lock` for the first of them and writes its lock into the others.

A VM with a lock of its own that pins the library elsewhere keeps it (a library
moves only when asked, `--update-library`); it is locked on its own, as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixlayer.closure.lock import library_input_names, read_lock
from nixlayer.closure.results import RenderResult
from nixlayer.nix.nixjson.flakelock import FlakeLock


@dataclass(frozen=True)
class LockPlan:
    """Where a VM's lock starts: `seed` (the group's library pins) replaces its lock
    before `nix flake lock`, or None (it keeps its own pins). VMs with one `key` end
    with one lock."""

    seed: dict[str, Any] | None
    key: str


@dataclass(frozen=True)
class Locked:
    """A VM's lock as `nix flake lock` left it: its key, the file's text, parsed."""

    key: str
    text: str
    lock: FlakeLock
    portable: bool  # the same file is right in any other VM's directory


def plan_lock(r: RenderResult, template: FlakeLock | None, repin: bool) -> LockPlan:
    """VM `r` starts from the group's library pins (`template`: the fleet's first
    lock of its library) when it has no lock yet or the library is re-pinned, else
    from the pins of its own lock."""
    assert r.manifest is not None
    lock_file = r.config_dir / "flake.lock"
    if template is not None and (repin or not lock_file.exists()):
        seed = template.shared(library_input_names(template, r.manifest))
        return LockPlan(seed, _key(r.flake_text, seed))
    old = read_lock(lock_file)
    return LockPlan(None, _key(r.flake_text, old.shared(library_input_names(old, r.manifest))))


def locked(r: RenderResult, text: str, lock: FlakeLock) -> Locked:
    """What VM `r` ended with; its key is that of any VM this lock is right for."""
    assert r.manifest is not None
    key = _key(r.flake_text, lock.shared(library_input_names(lock, r.manifest)))
    return Locked(key, text, lock, _portable(lock, text, r.config_dir))


def _key(flake_text: str, pins: dict[str, Any]) -> str:
    raw = json.dumps([flake_text, pins], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def _portable(lock: FlakeLock, text: str, cdir: Path) -> bool:
    """No pin names the VM's own directory or a path relative to it (an input
    `path:./x` of a template would be that VM's own)."""
    if str(cdir) in text:
        return False
    paths = [
        node[part].get("path")
        for node in lock.nodes.values()
        for part in ("locked", "original")
        if isinstance(node.get(part), dict)
    ]
    return all(p is None or str(p).startswith("/") for p in paths)


LockVM = Callable[[str, FlakeLock | None, Locked | None], Locked | None]


def lock_fleet(
    groups: Mapping[str, Sequence[str]],
    *,
    plan: Callable[[str, FlakeLock | None], LockPlan | None],
    lock_vm: LockVM,
    pool: Executor,
) -> None:
    """Lock every VM of `groups` (library -> VM names). `lock_vm(name, template, copy)`
    renders and locks one VM: it writes `copy` when that VM's plan has copy's key,
    else runs `nix flake lock`; None when it failed (and was reported). `plan(name,
    template)` is None when the VM cannot be planned (reported).

    Each library is locked once, by the first VM of its group (in parallel across
    groups); then the first VM of each other key; then every other VM takes the lock
    made for its key."""
    leaders = {lib: pool.submit(lock_vm, names[0], None, None) for lib, names in groups.items()}
    made: dict[str, Locked] = {}
    waiting: dict[str, list[tuple[str, FlakeLock | None]]] = {}
    for lib, names in groups.items():
        first = leaders[lib].result()
        template = first.lock if first is not None else None
        if first is not None:
            made.setdefault(first.key, first)
        for name in names[1:]:
            p = plan(name, template)
            if p is not None:
                waiting.setdefault(p.key, []).append((name, template))
    firsts: dict[str, Future[Locked | None]] = {
        key: pool.submit(lock_vm, *vms.pop(0), None)
        for key, vms in waiting.items()
        if key not in made
    }
    for key, f in firsts.items():
        result = f.result()
        if result is not None:
            made[key] = result
    rest = [
        pool.submit(lock_vm, name, template, made.get(key))
        for key, vms in waiting.items()
        for name, template in vms
    ]
    for f in rest:
        f.result()
