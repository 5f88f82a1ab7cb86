"""What the shared evaluator need not evaluate: targets whose content another
target has (one evaluation answers them all), and targets evaluated before (the
eval cache). Both key a target by what its evaluation reads, by content, as Nix's
own eval cache keys a locked flake by its narHash."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from nixlayer.closure.fleet_nix import Evaluated, Target
from nixlayer.fsutil import target_lock, write_files_atomically
from nixlayer.nix.runner import Nix


def source(ref: str) -> str:
    """A locked `path:` flake by its content: directories with one narHash are one
    store path, and a pure evaluation of it reads nothing else."""
    path, sep, query = ref.partition("?")
    if path.startswith("path:") and sep and "narHash=" in query:
        return f"path:?{query}"
    return ref


def content_key(t: Target) -> str:
    """What a target's evaluation reads: its source by content, its attribute, and
    the package set it is lent (none when the lender is the same source: a
    configuration lent its own package set evaluates to itself)."""
    raw = f"{source(t.flake)}\0{'.'.join(t.attr)}"
    if t.pkgs_from and source(t.pkgs_from) != source(t.flake):
        raw += f"\0{source(t.pkgs_from)}\0{'.'.join(t.config)}"
    return raw


def alike(targets: Sequence[Target]) -> tuple[list[Target], dict[str, str]]:
    """The targets to evaluate, and those (by name) that the first target with the
    same content answers: VMs that differ only in a host name set at boot render one
    config dir content, so one evaluation serves them all."""
    firsts: dict[str, Target] = {}
    copies: dict[str, str] = {}
    for t in targets:
        first = firsts.setdefault(content_key(t), t)
        if first is not t:
            copies[t.name] = first.name
    return list(firsts.values()), copies


class EvalCache:
    """drvPath and outPath per (locked flake, attribute, Nix, options): a key that
    changes whenever anything the evaluation reads can change."""

    def __init__(self, path: Path, nix: Nix) -> None:
        self.path = path
        self.salt = f"{nix.version().text}\0{shlex.join(nix.options)}"
        try:
            self.data: dict[str, dict[str, str]] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def key(self, t: Target) -> str | None:
        if "narHash=" not in t.flake and "rev=" not in t.flake:
            return None  # not content-addressed: never cached
        raw = f"{content_key(t)}\0{self.salt}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, t: Target) -> Evaluated | None:
        k = self.key(t)
        hit = self.data.get(k) if k else None
        if not isinstance(hit, dict) or not {"drvPath", "outPath"} <= hit.keys():
            return None
        return Evaluated(t.name, hit["drvPath"], hit["outPath"], cached=True)

    def put(self, t: Target, e: Evaluated) -> None:
        k = self.key(t)
        if k and e.drv_path and e.out_path:
            self.data[k] = {"drvPath": e.drv_path, "outPath": e.out_path}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with target_lock(self.path.parent, ".eval-cache"):
            try:
                current = json.loads(self.path.read_text())
            except (OSError, ValueError):
                current = {}
            merged = {**(current if isinstance(current, dict) else {}), **self.data}
            write_files_atomically({self.path: json.dumps(merged, sort_keys=True) + "\n"})
