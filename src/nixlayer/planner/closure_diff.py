"""The closure diff: which packages a switch adds, removes, changes in version or in
size (as nvd and dix show it), read from the Nix store. Names and versions come from
store path names (Nix's `parseDrvName` rule: the version starts at the first dash not
followed by a letter); NAR sizes and references (which make each closure) come from
one `nix path-info` of both systems.

`closure_diff` is what `plan` and `switch` call; `diff_closures` is the pure part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from nixlayer.errors import NixlayerError
from nixlayer.nix import commands
from nixlayer.nix.nixjson import pathinfo
from nixlayer.nix.runner import Nix

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

    def summary(self) -> str:
        """One line: paths, size and what kind of changes."""
        return (
            f"closure: {self.old_paths} -> {self.new_paths} paths, "
            f"{human_size(self.size_delta, True)}; {len(self.added)} added, "
            f"{len(self.removed)} removed, {len(self.version)} version changes, "
            f"{len(self.size)} size changes"
        )


def human_size(n: int, signed: bool = False) -> str:
    sign = ("+" if n > 0 else "-" if n < 0 else "±") if signed else ""
    value = float(abs(n))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


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


def closures_of(roots: Sequence[str], nix: Nix) -> list[dict[str, int]]:
    """The closure of each root, every path with its NAR size, from one `nix path-info`
    of them all (any Nix's shape): each is what the references reach from its root."""
    argv = commands.path_info_json(None, nix.version(), list(dict.fromkeys(roots)), recursive=True)
    try:
        found = pathinfo.parse(nix.run(argv).stdout)
    except pathinfo.PathInfoFormatError as exc:
        raise NixlayerError(f"nix path-info printed an unknown shape: {exc}") from None
    return [_reachable(root, found.valid) for root in roots]


def _reachable(root: str, infos: Mapping[str, pathinfo.PathInfo]) -> dict[str, int]:
    top = root if root in infos else "/".join(root.split("/")[:4])  # a path inside one
    closure: dict[str, int] = {}
    todo = [top]
    while todo:
        path = todo.pop()
        if path in closure:
            continue
        info = infos.get(path)
        if info is None:
            raise NixlayerError(f"nix path-info did not describe {path} (in the closure of {root})")
        closure[path] = info.nar_size
        todo.extend(ref for ref in info.references if ref not in closure)
    return closure


def closure_of(toplevel: str, nix: Nix) -> dict[str, int]:
    """Every path of `toplevel`'s closure with its NAR size."""
    return closures_of([toplevel], nix)[0]


def closure_diff(old_toplevel: str, new_toplevel: str, nix: Nix | None = None) -> ClosureDiff:
    """What switching from `old_toplevel` to `new_toplevel` changes in the closure.
    Both must be valid in the store `nix` talks to."""
    old, new = closures_of([old_toplevel, new_toplevel], nix or Nix())
    return diff_closures(old, new)
