"""Step 3: build the toplevel and read init and initrd from its bootspec.

Kept free of pydantic so `nixlayer build` starts fast.
"""

from __future__ import annotations

from pathlib import Path

from nixlayer.closure.bootspec import read_bootspec
from nixlayer.closure.lock import check_config_dir
from nixlayer.closure.results import BuildResult
from nixlayer.errors import InputError, NixlayerError, NixOutputError
from nixlayer.fsutil import state_dir, target_lock
from nixlayer.nix import commands
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
    configuration: str = "vm",
    nix: Nix | None = None,
    progress: ProgressCallback | None = None,
) -> BuildResult:
    cdir = check_config_dir(config_dir)
    link = check_out_link(cdir, out_link)
    with target_lock(cdir.parent, cdir.name):
        return build_unlocked(
            cdir,
            out_link=link,
            system=system,
            configuration=configuration,
            nix=nix,
            progress=progress,
        )


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
    system: str | None,
    configuration: str = "vm",
    nix: Nix | None = None,
    progress: ProgressCallback | None = None,
) -> BuildResult:
    nix = nix or Nix()
    attr = f"packages.{system}.toplevel" if system else "toplevel"
    out_link.parent.mkdir(parents=True, exist_ok=True)
    argv = commands.build(f"path:{cdir}#{attr}", out_link=out_link, progress_json=bool(progress))
    proc = nix.run(argv, progress=progress)
    toplevel = _out_path(proc.stdout, out_link)
    spec = read_bootspec(Path(toplevel))
    init = spec.init if spec else f"{toplevel}/init"
    initrd = spec.initrd if spec else None
    if initrd is None:
        initrd = _evaluated_initrd(nix, cdir, configuration)
    return BuildResult(
        toplevel=toplevel, init=init, initrd=initrd, config_dir=cdir, out_link=out_link
    )


def _out_path(stdout: str, out_link: Path) -> str:
    try:
        return build_json.out_path(stdout)
    except NixOutputError:
        if out_link.exists():
            return str(out_link.resolve())
        raise NixlayerError(f"nix build printed no output path: {stdout[:200]!r}") from None


def _evaluated_initrd(nix: Nix, cdir: Path, configuration: str) -> str | None:
    """No initrd in the bootspec: build the configuration's initial ramdisk."""
    base = f"path:{cdir}#nixosConfigurations.{configuration}.config.system"
    file_name = evaluate.string(
        nix.run(commands.eval_json(f"{base}.boot.loader.initrdFile")).stdout
    )
    proc = nix.run(
        commands.build(f"{base}.build.initialRamdisk", out_link=None, progress_json=False)
    )
    ramdisk = _out_path(proc.stdout, Path("/nonexistent"))
    return f"{ramdisk}/{file_name}"
