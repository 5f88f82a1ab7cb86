"""What each step returns. Plain frozen dataclasses: cheap to import, easy to JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nixlayer.closure.manifest import Manifest


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
    system: str = "x86_64-linux"
    manifest: Manifest | None = field(default=None, repr=False)

    def with_changed(self, changed: tuple[str, ...]) -> RenderResult:
        return replace(self, changed=changed)

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in _RENDER_PRIVATE}
        return _jsonable(d)  # type: ignore[no-any-return]

    def files(self) -> dict[str, str]:
        return {str(self.flake_nix): self.flake_text, str(self.default_nix): self.default_text}


_RENDER_PRIVATE = ("flake_text", "default_text", "manifest")


@dataclass(frozen=True)
class LockResult:
    """`moved`: inputs whose pin changed; `added`: inputs pinned for the first time;
    `requested`: the inputs nixlayer asked Nix to re-pin."""

    config_dir: Path
    lock_file: Path
    moved: tuple[str, ...]
    added: tuple[str, ...] = ()
    requested: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = []
        if self.moved:
            parts.append("moved " + ", ".join(self.moved))
        if self.added:
            parts.append("pinned " + ", ".join(self.added))
        return "; ".join(parts) or "no pin moved"

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class BuildResult:
    toplevel: str
    init: str
    initrd: str | None
    config_dir: Path
    out_link: Path
    # For the launcher's kernel command line (a host name set at boot).
    kernel_params: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]

    def closure(self) -> dict[str, Any]:
        """The flow's contract: {toplevel, init, initrd, config_dir}, and
        kernel_params when the VM needs any."""
        out: dict[str, Any] = {
            "toplevel": self.toplevel,
            "init": self.init,
            "initrd": self.initrd,
            "config_dir": str(self.config_dir),
        }
        if self.kernel_params:
            out["kernel_params"] = list(self.kernel_params)
        return out
