"""One unit as switch-to-configuration sees it: the base file plus drop-ins,
merged into section -> key -> values, with the [Install] section dropped."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from nixlayer.errors import InputError
from nixlayer.planner.ini import IniError, parse_entries
from nixlayer.safeload import read_bytes

Unit = dict[str, dict[str, list[str]]]
TRUE_VALUES = frozenset({"1", "yes", "true", "on"})


class UnitFileError(InputError):
    """A unit file that cannot be read or parsed; the field is the file."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(str(path), message)


def parse_text(*texts: str) -> Unit:
    """Merge files in order: an empty value clears the key (which stays, empty);
    other values append. [Install] is dropped."""
    unit: Unit = {}
    for text in texts:
        for section, key, value in parse_entries(text):
            if section == "Install":
                continue
            sect = unit.setdefault(section, {})
            if key is None:
                continue
            values = sect.setdefault(key, [])
            if value:
                values.append(value)
            else:
                values.clear()
    return unit


def get_bool(unit: Unit, section: str, key: str, default: bool) -> bool:
    """The last value decides; only 1, yes, true and on (exactly) are true."""
    values = unit.get(section, {}).get(key)
    if not values:
        return default
    return values[-1] in TRUE_VALUES


def is_masked(path: Path) -> bool:
    return os.path.islink(path) and os.path.realpath(path) == "/dev/null"


@dataclass(frozen=True)
class UnitTree:
    """A directory of unit files, e.g. <root>/etc/systemd/system."""

    path: Path
    # Parsed units by (unit, base): the main pass and the startup model read the same ones.
    _parsed: dict[tuple[str, str], Unit] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    @cached_property
    def _dir(self) -> str:
        return str(self.path)

    @cached_property
    def _names(self) -> frozenset[str]:
        # One listing instead of a failed lookup per unit for every missing drop-in dir.
        try:
            return frozenset(os.listdir(self.path))
        except OSError:
            return frozenset()

    def listed(self, name: str) -> bool:
        """Whether the directory has an entry of that name (no stat)."""
        return name in self._names

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        # A /dev/null symlink counts as existing; a dangling link does not.
        return name in self._names and os.path.exists(os.path.join(self._dir, name))

    def masked(self, name: str) -> bool:
        return is_masked(self.path / name)

    def dropins(self, name: str) -> list[Path]:
        return [Path(p) for p in self._dropin_paths(name)]

    def _dropin_paths(self, name: str) -> list[str]:
        if f"{name}.d" not in self._names:
            return []
        d = os.path.join(self._dir, f"{name}.d")
        try:
            names = sorted(e for e in os.listdir(d) if e.endswith(".conf"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [os.path.join(d, e) for e in names]

    def _source_paths(self, unit: str, base: str) -> list[str]:
        files = [os.path.join(self._dir, base), *self._dropin_paths(base)]
        if unit != base:
            files += self._dropin_paths(unit)
        return files

    def texts(self, unit: str, base: str) -> list[str]:
        out = []
        for path in self._source_paths(unit, base):
            if os.path.islink(path) and os.path.realpath(path) == "/dev/null":
                out.append("")
                continue
            if not os.path.exists(path):
                raise UnitFileError(Path(path), "no such unit file")
            try:  # guarded: a FIFO, a device or a directory is refused, not read
                data = read_bytes(path, "unit file")
            except InputError as exc:
                reason = exc.message.rpartition(": ")[2]
                raise UnitFileError(Path(path), f"cannot read: {reason}") from None
            out.append(data.decode("utf-8", errors="surrogateescape"))
        return out

    def parse(self, unit: str, base: str, texts: list[str] | None = None) -> Unit:
        cached = self._parsed.get((unit, base))
        if cached is not None:
            return cached
        try:
            parsed = parse_text(*(texts if texts is not None else self.texts(unit, base)))
        except IniError as exc:
            raise UnitFileError(self.file(base), f"cannot parse: {exc.message}") from exc
        self._parsed[(unit, base)] = parsed
        return parsed

    def fingerprint(self, unit: str, base: str) -> tuple[tuple[str, int, int], ...] | None:
        """The identity of the unit's files: equal fingerprints mean equal units
        (NixOS links an unchanged unit to the same store file)."""
        try:
            out = []
            for p in self._source_paths(unit, base):
                st = os.stat(p)
                out.append((os.path.basename(p), st.st_dev, st.st_ino))
            return tuple(out)
        except OSError:
            return None
