"""Step 1: write <root>/<vm_name>/{flake.nix,default.nix} from a spec."""

from __future__ import annotations

import os
from pathlib import Path

from nixlayer.closure.catalog import Catalog
from nixlayer.closure.flake_nix import render_flake
from nixlayer.closure.library import resolve_library
from nixlayer.closure.module_nix import render_module
from nixlayer.closure.paths import config_dir_for, config_root
from nixlayer.closure.results import RenderResult
from nixlayer.closure.spec import Override, VMSpec, resolve_spec
from nixlayer.errors import InputError
from nixlayer.fsutil import target_lock, write_files_atomically
from nixlayer.nix.runner import Nix


def render_config(
    spec: VMSpec,
    *,
    root: Path | str | None = None,
    library: str | None = None,
    catalog: Catalog | None = None,
    nix: Nix | None = None,
) -> RenderResult:
    """Render the per-VM config directory. Validates everything before writing anything.

    `library` overrides `spec.library`; `catalog` is used when the spec carries none
    (else the library's own, else nixos-flake's).
    """
    planned = plan_render(spec, root=root, library=library, catalog=catalog, nix=nix)
    with target_lock(planned.config_dir.parent, spec.vm_name):
        return commit_render(planned)


def plan_render(
    spec: VMSpec,
    *,
    root: Path | str | None = None,
    library: str | None = None,
    catalog: Catalog | None = None,
    nix: Nix | None = None,
) -> RenderResult:
    """Everything render does except writing: the texts and where they go."""
    config_dir = config_dir_for(config_root(root), spec.vm_name)
    ref = library or spec.library or os.environ.get("NIXLAYER_LIBRARY")
    if not ref:
        raise InputError("library", "no library: set `library` in the spec or pass --library REF")
    lib = resolve_library(ref, nix=nix, catalog=spec.catalog or catalog)
    resolved = resolve_spec(spec, lib.catalog)
    overrides = tuple(_local_override(i, o) for i, o in enumerate(spec.overrides))
    flake_text = render_flake(
        lib.template,
        origin=lib.template_origin,
        library_ref=lib.ref,
        library_input=lib.catalog.library_input,
        overrides=overrides,
        system=spec.system,
    )
    default_text = render_module(resolved)
    return RenderResult(
        config_dir=config_dir,
        flake_nix=config_dir / "flake.nix",
        default_nix=config_dir / "default.nix",
        library=lib.ref,
        changed=(),
        flake_text=flake_text,
        default_text=default_text,
        configuration=resolved.catalog.configuration,
    )


def commit_render(planned: RenderResult) -> RenderResult:
    """Write a planned render (the caller holds the VM's lock)."""
    changed = write_files_atomically(
        {planned.flake_nix: planned.flake_text, planned.default_nix: planned.default_text}
    )
    return RenderResult(
        config_dir=planned.config_dir,
        flake_nix=planned.flake_nix,
        default_nix=planned.default_nix,
        library=planned.library,
        changed=tuple(p.name for p in changed),
        flake_text=planned.flake_text,
        default_text=planned.default_text,
        configuration=planned.configuration,
    )


def _local_override(index: int, o: Override) -> Override:
    """Expand `~` in a local source and check that it exists."""
    if not o.src.startswith(("/", "~")):
        return o
    path = Path(os.path.expanduser(o.src))
    if not path.is_absolute():
        raise InputError(f"overrides[{index}].src", f"{o.src!r} is not an absolute path")
    if not path.exists():
        raise InputError(f"overrides[{index}].src", f"{o.src!r}: no such file or directory")
    if o.ref is not None:
        raise InputError(f"overrides[{index}].ref", "a local path source takes no ref")
    return o.model_copy(update={"src": str(path)})
