"""The closure diff: which packages a switch adds, removes, changes in version or in
size (as nvd and dix show it), read from the Nix store. Names and versions come from
store path names (Nix's `parseDrvName` rule: the version starts at the first dash not
followed by a letter); sizes are NAR sizes from `nix path-info`.

`closure_diff` is what `plan` and `switch` call; `diff_closures` is the pure part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from nixlayer.nix import commands
from nixlayer.nix.runner import Nix
from nixlayer.planner.pathinfo_view import nar_sizes

STORE_NAME = re.compile(r"^/[^\0]*/[0-9a-df-np-sv-z]{32}-(.+)$")
VERSION_START = re.compile(r"-(?![A-Za-z])")
# Output names Nix appends to a package's name (`openssl-3.0.13-bin`), and fetched sources.
OUTPUTS = ("bin", "dev", "lib", "out", "man", "doc", "info", "debug", "data", "dev-doc", "source")
PackageChangeKind = Literal["added", "removed", "version", "size"]


def split_name(store_path: str) -> tuple[str, str]:
    """`/nix/store/<hash>-openssl-3.0.13-bin` -> ("openssl", "3.0.13")."""
    m = STORE_NAME.match(store_path)
    name = m.group(1) if m else store_path.rsplit("/", 1)[-1]
    v = VERSION_START.search(name)
    if v is None:
        return name, ""
    pname, version = name[: v.start()], name[v.end() :]
    for out in OUTPUTS:
        if version.endswith(f"-{out}"):
            version = version[: -len(out) - 1]
            break
    return pname, version


@dataclass(frozen=True)
class PackageChange:
    name: str
    change: PackageChangeKind
    old_versions: list[str]
    new_versions: list[str]
    old_size: int
    new_size: int

    @property
    def size_delta(self) -> int:
        return self.new_size - self.old_size


@dataclass(frozen=True)
class ClosureDiff:
    old_paths: int
    new_paths: int
    old_size: int
    new_size: int
    added: list[PackageChange] = field(default_factory=list)
    removed: list[PackageChange] = field(default_factory=list)
    version: list[PackageChange] = field(default_factory=list)
    size: list[PackageChange] = field(default_factory=list)

    @property
    def size_delta(self) -> int:
        return self.new_size - self.old_size

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Side:
    versions: set[str] = field(default_factory=set)
    size: int = 0


def _group(paths: Mapping[str, int]) -> dict[str, _Side]:
    out: dict[str, _Side] = {}
    for path, size in paths.items():
        name, version = split_name(path)
        side = out.setdefault(name, _Side())
        if version:
            side.versions.add(version)
        side.size += size
    return out


def _versions(vs: set[str]) -> list[str]:
    return sorted(vs)


def diff_closures(old: Mapping[str, int], new: Mapping[str, int]) -> ClosureDiff:
    """Two closures ({store path: NAR size}) compared package by package."""
    a, b = _group(old), _group(new)
    diff = ClosureDiff(len(old), len(new), sum(old.values()), sum(new.values()))
    for name in sorted(set(a) | set(b), key=lambda n: (n.lower(), n)):
        x, y = a.get(name), b.get(name)
        if x is None and y is not None:
            diff.added.append(PackageChange(name, "added", [], _versions(y.versions), 0, y.size))
        elif y is None and x is not None:
            diff.removed.append(
                PackageChange(name, "removed", _versions(x.versions), [], x.size, 0)
            )
        elif x is not None and y is not None:
            kind: PackageChangeKind | None = (
                "version" if x.versions != y.versions else "size" if x.size != y.size else None
            )
            if kind is not None:
                change = PackageChange(
                    name, kind, _versions(x.versions), _versions(y.versions), x.size, y.size
                )
                (diff.version if kind == "version" else diff.size).append(change)
    return diff


def closure_of(toplevel: str, nix: Nix) -> dict[str, int]:
    return nar_sizes(nix.run(commands.path_info_closure([toplevel])).stdout)


def closure_diff(old_toplevel: str, new_toplevel: str, nix: Nix | None = None) -> ClosureDiff:
    """What switching from `old_toplevel` to `new_toplevel` changes in the closure.
    Both must be valid in the store `nix` talks to."""
    nix = nix or Nix()
    return diff_closures(closure_of(old_toplevel, nix), closure_of(new_toplevel, nix))
