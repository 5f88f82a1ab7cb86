"""The library a VM is built on: its flake ref, its imageless template, its catalog."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nixlayer.closure.catalog import NIXOS_FLAKE_CATALOG, Catalog, load_catalog
from nixlayer.errors import InputError
from nixlayer.nix import commands
from nixlayer.nix.flakeref import normalize_ref
from nixlayer.nix.nixjson import metadata
from nixlayer.nix.runner import Nix

TEMPLATE_PATH = "templates/imageless/flake.nix"
CATALOG_FILE = "nixlayer-catalog.json"


@dataclass(frozen=True)
class Library:
    ref: str  # the flake ref written into flake.nix
    source: Path | None  # where its files can be read (local checkout or store copy)
    template: str
    template_origin: str
    catalog: Catalog


def resolve_library(
    raw: str,
    nix: Nix | None = None,
    catalog: Catalog | None = None,
    fetched: dict[str, Path] | None = None,
) -> Library:
    """Find the library's template and catalog. Local refs are read from disk; others
    are fetched into the store with `nix flake metadata`, once per ref when the caller
    keeps `fetched` (ref -> store path) across calls, as a fleet does."""
    ref, path = normalize_ref(raw)
    if path is not None:
        if not path.is_dir():
            raise InputError("library", f"{raw!r}: no such directory {path}")
        if not (path / "flake.nix").is_file():
            raise InputError("library", f"{raw!r}: {path} has no flake.nix")
        source = path
    elif fetched is not None and ref in fetched:
        source = fetched[ref]
    else:
        meta = metadata.parse((nix or Nix()).run(commands.flake_metadata(ref)).stdout)
        source = Path(meta.path)
        if fetched is not None:
            fetched[ref] = source
    template_file = source / TEMPLATE_PATH
    if template_file.is_file():
        try:
            template, origin = template_file.read_text(), str(template_file)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError("library", f"cannot read {template_file}: {exc}") from None
    else:
        template = resources.files("nixlayer").joinpath("data/imageless-flake.nix").read_text()
        origin = "nixlayer built-in template"
    return Library(
        ref=ref,
        source=source,
        template=template,
        template_origin=origin,
        catalog=catalog or _library_catalog(source),
    )


def _library_catalog(source: Path) -> Catalog:
    file = source / CATALOG_FILE
    if not file.is_file():
        return NIXOS_FLAKE_CATALOG
    return load_catalog(file, "library catalog")
