"""flake.lock, as Nix writes it (lock version 7 in Nix 2.8, 2.26 and 2.34).

`{"nodes": {name: node}, "root": name, "version": 7}`; a node has `inputs` (name ->
node name, or a `follows` path as a list of input names), and `locked`/`original`
for every node but the root. What differs per version lives inside `locked`: Nix 2.26+
records `lastModified` for `path:` inputs where 2.8 also does, and the flake ref text
of an input is escaped differently (nixlayer never compares refs as text).

Parsed once per file and handed around: lock and fleet read the same `FlakeLock`.
A lock file is user-editable, so a malformed one is bad input (`InputError`), named.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError, NixOutputError
from nixlayer.nix.nixjson._json import expect, load

FIELD = "flake.lock"
Input = str | list[str]  # a node name, or a `follows` path


@dataclass(frozen=True)
class FlakeLock:
    root: str
    nodes: dict[str, dict[str, Any]]
    version: int

    def inputs(self, node: str) -> dict[str, Input]:
        found: dict[str, Input] = self.nodes[node].get("inputs", {})
        return found

    def root_inputs(self) -> dict[str, Input]:
        return self.inputs(self.root)

    def locked(self, root_input: str) -> dict[str, Any]:
        """The `locked` attributes of a root input's node ({} for a follows)."""
        target = self.root_inputs().get(root_input)
        if not isinstance(target, str):
            return {}
        found: dict[str, Any] = self.nodes[target].get("locked", {})
        return found

    def shared(self, keep: Iterable[str]) -> dict[str, Any]:
        """A lock document holding only the `keep` root inputs and the nodes they reach:
        one library pin, shared by every VM built on the same library."""
        wanted = set(keep)
        root_inputs = {k: v for k, v in self.root_inputs().items() if k in wanted}
        reached: set[str] = set()
        todo = [v for v in root_inputs.values() if isinstance(v, str)]
        while todo:
            n = todo.pop()
            if n not in reached:
                reached.add(n)
                todo += [v for v in self.inputs(n).values() if isinstance(v, str)]
        nodes: dict[str, Any] = {n: self.nodes[n] for n in sorted(reached)}
        nodes[self.root] = {"inputs": root_inputs}
        return {"nodes": nodes, "root": self.root, "version": self.version}

    def to_text(self) -> str:
        doc = {"nodes": self.nodes, "root": self.root, "version": self.version}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def parse(text: str, where: str = FIELD) -> FlakeLock:
    try:
        data = expect(load(text, where), dict, where)
        nodes = expect(data.get("nodes"), dict, f"{where}: nodes")
        root = expect(data.get("root"), str, f"{where}: root")
        version = expect(data.get("version"), int, f"{where}: version")
        for name, node in nodes.items():
            inputs = expect(expect(node, dict, f"nodes.{name}").get("inputs", {}), dict, name)
            for key, target in inputs.items():
                _check_input(target, f"nodes.{name}.inputs.{key}")
                if isinstance(target, str) and target not in nodes:
                    raise NixOutputError(where, f"nodes.{name}.inputs.{key}: no node {target!r}")
            expect(node.get("locked", {}), dict, f"nodes.{name}.locked")
        if root not in nodes:
            raise NixOutputError(where, f"root {root!r} is not a node")
    except NixOutputError as exc:
        raise InputError(FIELD, f"{where} is not a flake lock file: {exc.detail}") from exc
    return FlakeLock(root=root, nodes=nodes, version=version)


def _check_input(target: Any, what: str) -> None:
    if isinstance(target, list):
        for part in target:
            expect(part, str, what)
    else:
        expect(target, str, what)


def read(path: Path) -> FlakeLock | None:
    """The lock file at `path`, or None when there is none yet."""
    if not path.is_file():
        return None
    from nixlayer.safeload import read_text  # bounded, UTF-8, regular files only

    return parse(read_text(path, FIELD), str(path))


def empty() -> FlakeLock:
    """The lock of a flake that has none yet."""
    return FlakeLock(root="root", nodes={"root": {}}, version=7)
