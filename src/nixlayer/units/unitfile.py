"""One unit as switch-to-configuration sees it: the base file plus drop-ins,
merged into section -> key -> values, with the [Install] section dropped."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nixlayer.units.ini import IniError, parse_entries

Unit = dict[str, dict[str, list[str]]]
TRUE_VALUES = frozenset({"1", "yes", "true", "on"})


class UnitFileError(ValueError):
    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


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

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        # A /dev/null symlink counts as existing; a dangling link does not.
        return os.path.exists(self.path / name)

    def masked(self, name: str) -> bool:
        return is_masked(self.path / name)

    def dropins(self, name: str) -> list[Path]:
        d = self.path / f"{name}.d"
        try:
            names = sorted(e for e in os.listdir(d) if e.endswith(".conf"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [d / e for e in names]

    def sources(self, unit: str, base: str) -> list[Path]:
        """The files that make up `unit`, in merge order."""
        files = [self.file(base), *self.dropins(base)]
        if unit != base:
            files += self.dropins(unit)
        return files

    def parse(self, unit: str, base: str, texts: list[str] | None = None) -> Unit:
        try:
            return parse_text(*(texts if texts is not None else self.texts(unit, base)))
        except IniError as exc:
            raise UnitFileError(self.file(base), f"cannot parse: {exc}") from exc

    def texts(self, unit: str, base: str) -> list[str]:
        out = []
        for path in self.sources(unit, base):
            if is_masked(path):
                out.append("")
                continue
            try:
                out.append(path.read_text(encoding="utf-8", errors="surrogateescape"))
            except FileNotFoundError:
                raise UnitFileError(path, "no such unit file") from None
            except OSError as exc:
                raise UnitFileError(path, f"cannot read: {exc.strerror}") from exc
        return out

    def fingerprint(self, unit: str, base: str) -> tuple[tuple[str, str], ...] | None:
        """Resolved paths of the unit's files: equal fingerprints mean equal units
        (NixOS links unchanged units to the same store path)."""
        try:
            return tuple((p.name, os.path.realpath(p)) for p in self.sources(unit, base))
        except OSError:
            return None
