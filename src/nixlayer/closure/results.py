"""What each step returns. Plain frozen dataclasses: cheap to import, easy to JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class RenderResult:
    config_dir: Path
    flake_nix: Path
    default_nix: Path
    library: str
    changed: tuple[str, ...]
    flake_text: str = field(repr=False)
    default_text: str = field(repr=False)
    configuration: str = "vm"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("flake_text")
        d.pop("default_text")
        return _jsonable(d)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class LockResult:
    config_dir: Path
    lock_file: Path
    updated_inputs: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class BuildResult:
    toplevel: str
    init: str
    initrd: str | None
    config_dir: Path
    out_link: Path

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]

    def closure(self) -> dict[str, Any]:
        """The flow's contract: {toplevel, init, initrd, config_dir}."""
        return {
            "toplevel": self.toplevel,
            "init": self.init,
            "initrd": self.initrd,
            "config_dir": str(self.config_dir),
        }
