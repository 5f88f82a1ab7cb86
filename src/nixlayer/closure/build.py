"""Step 3: build the toplevel and read init and initrd from its bootspec.

What to build (system, configuration) comes from render's manifest. Kept free of
pydantic so `nixlayer build` starts fast.
"""

from __future__ import annotations

import json
from pathlib import Path

from nixlayer.closure.bootspec import read_bootspec
from nixlayer.closure.lock import check_config_dir
from nixlayer.closure.manifest import Manifest, read_manifest
from nixlayer.closure.paths import prepare_root
from nixlayer.closure.results import BuildResult
from nixlayer.errors import InputError, NixlayerError, NixOutputError
from nixlayer.fsutil import state_dir, target_lock
from nixlayer.nix import commands, nixlang
from nixlayer.nix.nixjson import build as build_json
from nixlayer.nix.nixjson import evaluate
from nixlayer.nix.runner import Nix, ProgressCallback


def default_out_link(config_dir: Path) -> Path:
    """Outside the config dir: an out-link inside it would change the `path:`
    flake's hash on every build."""
    return state_dir(config_dir.parent) / "results" / config_dir.name


def build_closure(
    config_dir: Path | str,
    *,
    out_link: Path | str | None = None,
    system: str | None = None,
    configuration: str | None = None,
    nix: Nix | None = None,
    progress: ProgressCallback | None = None,
) -> BuildResult:
    """`system` and `configuration`, when given (a Windmill flow passes render's),
    must be what render wrote; by default they are read from its manifest."""
    cdir = check_config_dir(config_dir)
    manifest = read_manifest(cdir)
    for name, given, rendered in (
        ("system", system, manifest.system),
        ("configuration", configuration, manifest.configuration),
    ):
        if given not in (None, rendered):
            raise InputError(name, f"{given!r} differs from the rendered {rendered!r} in {cdir}")
    link = check_out_link(cdir, out_link)
    prepare_root(cdir.parent)
    with target_lock(cdir.parent, cdir.name):
        return build_unlocked(cdir, out_link=link, nix=nix, progress=progress)


def check_out_link(cdir: Path, out_link: Path | str | None) -> Path:
    if out_link is None:
        return default_out_link(cdir)
    link = Path(out_link).absolute()
    if link == cdir or cdir in link.parents:
        raise InputError(
            "out_link", f"{link} is inside the config dir {cdir}; keep out-links outside it"
        )
    return link


def build_unlocked(
    cdir: Path,
    *,
    out_link: Path,
    nix: Nix | None = None,
    progress: ProgressCallback | None = None,
) -> BuildResult:
    nix = nix or Nix()
    manifest = read_manifest(cdir)
    kernel_params = manifest.kernel_params(cdir)
    flake = f"path:{cdir}"
    if manifest.overrides:
        check_overrides(nix, flake, manifest)
    out_link.parent.mkdir(parents=True, exist_ok=True)
    argv = commands.build(
        f"{flake}#{manifest.installable}", out_link=out_link, progress_json=bool(progress)
    )
    proc = nix.run(argv, progress=progress)
    toplevel = out_path(proc.stdout) or str(out_link.resolve())
    spec = read_bootspec(Path(toplevel))
    init = spec.init if spec else f"{toplevel}/init"
    initrd = spec.initrd if spec else None
    if initrd is None:
        initrd = _evaluated_initrd(nix, flake, manifest.configuration)
    return BuildResult(
        toplevel=toplevel,
        init=init,
        initrd=initrd,
        config_dir=cdir,
        out_link=out_link,
        kernel_params=kernel_params,
    )


def check_overrides(nix: Nix, flake: str, manifest: Manifest) -> None:
    """Every override must name a package of the VM's package set that its closure
    uses; otherwise the overlay would be silently ignored."""
    names = nixlang.string(json.dumps([o.pkg for o in manifest.overrides]))
    # The rendered overlay throws for a name the package set lacks; tryEval turns
    # that into null.
    apply = (
        "c: map (n: let r = builtins.tryEval (c.pkgs.${n}.drvPath or null); in "
        f"if r.success then r.value else null) (builtins.fromJSON {names})"
    )
    config = f"{flake}#nixosConfigurations.{nixlang.attr_name(manifest.configuration)}"
    drvs = evaluate.strings_or_null(nix.run(commands.eval_json(config, apply)).stdout)
    closure = set(
        nix.run(commands.derivation_closure(f"{flake}#{manifest.installable}")).stdout.split()
    )
    for i, (o, drv) in enumerate(zip(manifest.overrides, drvs, strict=True)):
        if drv is None:
            raise InputError(
                f"overrides[{i}].pkg", f"{o.pkg!r} is not a package of this VM's package set"
            )
        if drv not in closure:
            raise InputError(
                f"overrides[{i}].pkg",
                f"{o.pkg!r} is not in this VM's closure (no selected profile or test suite "
                "uses it), so overriding it would change nothing",
            )


def out_path(stdout: str) -> str | None:
    """The `out` output in `nix build --json`'s report (every dialect prints one)."""
    try:
        return build_json.out_path(stdout)
    except NixOutputError:
        return None


def _evaluated_initrd(nix: Nix, flake: str, configuration: str) -> str | None:
    """No initrd in the bootspec: build the configuration's initial ramdisk."""
    base = f"{flake}#nixosConfigurations.{nixlang.attr_name(configuration)}.config.system"
    file_name = evaluate.string(
        nix.run(commands.eval_json(f"{base}.boot.loader.initrdFile")).stdout
    )
    proc = nix.run(
        commands.build(f"{base}.build.initialRamdisk", out_link=None, progress_json=False)
    )
    ramdisk = out_path(proc.stdout)
    if ramdisk is None:
        raise NixlayerError(f"nix build printed no output path: {proc.stdout[:200]!r}")
    return f"{ramdisk}/{file_name}"
