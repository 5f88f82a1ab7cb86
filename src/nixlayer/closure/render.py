"""Step 1: write <root>/<vm_name>/{flake.nix,default.nix} and the manifest of what
render decided, from a spec."""

from __future__ import annotations

import os
from pathlib import Path

from nixlayer.closure import configdir
from nixlayer.closure.catalog import Catalog
from nixlayer.closure.flake_nix import override_input_name, override_type, render_flake
from nixlayer.closure.library import resolve_library
from nixlayer.closure.manifest import MANIFEST, Manifest, OverrideInput
from nixlayer.closure.module_nix import library_gates, library_modules, render_module
from nixlayer.closure.paths import config_dir_for, config_root, prepare_root
from nixlayer.closure.results import RenderResult
from nixlayer.closure.spec import Override, VMSpec, resolve_spec
from nixlayer.errors import InputError
from nixlayer.fsutil import target_lock
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
    prepare_root(planned.config_dir.parent)
    with target_lock(planned.config_dir.parent, spec.vm_name):
        return commit_render(planned)


def plan_render(
    spec: VMSpec,
    *,
    root: Path | str | None = None,
    library: str | None = None,
    catalog: Catalog | None = None,
    nix: Nix | None = None,
    fetched: dict[str, Path] | None = None,
) -> RenderResult:
    """Everything render does except writing: the texts and where they go. `fetched`:
    libraries already fetched (ref -> store path), shared by the VMs of a fleet."""
    config_dir = config_dir_for(config_root(root), spec.vm_name)
    ref = library or spec.library or os.environ.get("NIXLAYER_LIBRARY")
    if not ref:
        raise InputError("library", "no library: set `library` in the spec or pass --library REF")
    lib = resolve_library(ref, nix=nix, catalog=spec.catalog or catalog, fetched=fetched)
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
    manifest = Manifest(
        vm_name=spec.vm_name if spec.hostname == "closure" else None,
        configuration=resolved.catalog.configuration,
        system=spec.system,
        library=lib.ref,
        library_input=lib.catalog.library_input,
        overrides=tuple(
            OverrideInput(
                pkg=o.pkg,
                input=override_input_name(o.pkg),
                type=override_type(o),
                src=o.src,
                ref=o.ref,
                attrs=dict(o.attrs),
            )
            for o in overrides
        ),
        shares={mount: share.tag for mount, share in resolved.shares.items()},
        home_dir=resolved.home_dir,
        # The gates default.nix sets decide what those modules do: `gate:<option>`.
        modules=tuple(f"{group}.{name}" for group, name in library_modules(resolved))
        + tuple(f"gate:{gate}" for gate in library_gates(resolved)),
    )
    return RenderResult(
        config_dir=config_dir,
        flake_nix=config_dir / "flake.nix",
        default_nix=config_dir / "default.nix",
        library=lib.ref,
        changed=(),
        flake_text=flake_text,
        default_text=default_text,
        configuration=resolved.catalog.configuration,
        system=spec.system,
        manifest=manifest,
    )


def commit_render(planned: RenderResult) -> RenderResult:
    """Write a planned render (the caller holds the VM's lock): the new flake.nix,
    default.nix and manifest replace the old ones together or not at all."""
    assert planned.manifest is not None
    changed = configdir.install(
        planned.config_dir,
        {
            "flake.nix": planned.flake_text,
            "default.nix": planned.default_text,
            MANIFEST: planned.manifest.text(),
        },
    )
    return planned.with_changed(changed)


def _local_override(index: int, o: Override) -> Override:
    """Make a local source absolute (`~` expanded; `./dir` from a spec file was
    resolved against the file, here it is against the working directory) and check
    that it exists."""
    if not o.is_path():
        return o
    path = Path(os.path.expanduser(o.src)).absolute()
    if not path.exists():
        raise InputError(f"overrides[{index}].src", f"{o.src!r}: no such file or directory")
    if o.ref is not None:
        raise InputError(f"overrides[{index}].ref", "a local path source takes no ref")
    return o.model_copy(update={"src": os.path.normpath(path)})
