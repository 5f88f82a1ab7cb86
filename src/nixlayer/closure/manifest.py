"""What render decided, written beside the files it rendered.

Lock, build, fleet and the Windmill steps read this instead of working it out
again from flake.nix: which inputs are source overrides, which is the library,
the configuration name and the system. It lives in the config dir so that the
rename that installs a new pair installs its manifest with it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nixlayer.closure.paths import BOOT_NAME_RE
from nixlayer.errors import InputError
from nixlayer.safeload import parse_json, read_text

MANIFEST = ".nixlayer-manifest.json"
VERSION = 1


@dataclass(frozen=True)
class OverrideInput:
    pkg: str
    input: str  # the flake input name, `<pkg>-src`
    type: str  # "path" or "git"
    src: str
    ref: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    # The host name written into the system; None when it is set at boot (spec
    # `hostname: boot`), so that every VM of one design renders the same files.
    vm_name: str | None
    configuration: str
    system: str
    library: str  # the flake ref written into flake.nix
    library_input: str
    overrides: tuple[OverrideInput, ...] = ()
    shares: dict[str, str] = field(default_factory=dict)  # mount -> tag, automatic ones included
    home_dir: str | None = None
    # The library's nixosModules default.nix imports, "group.name" (profiles.devel,
    # testSuites.ltp, mounts.shares), then the options it sets for gated profiles
    # ("gate:nixos-flake.monitoring.enable"); None in a manifest from before they were written.
    modules: tuple[str, ...] | None = None
    version: int = VERSION

    @property
    def override_inputs(self) -> tuple[str, ...]:
        return tuple(o.input for o in self.overrides)

    @property
    def installable(self) -> str:
        return f"packages.{self.system}.toplevel"

    def kernel_params(self, cdir: Path) -> tuple[str, ...]:
        """What the launcher adds to the VM's kernel command line: its host name when
        that is set at boot. The VM is then named by its config dir, as render named it."""
        if self.vm_name is not None:
            return ()
        if not BOOT_NAME_RE.fullmatch(cdir.name):
            raise InputError(
                "config_dir",
                f"{cdir.name!r} is not a host name systemd takes (letters, digits, -), and "
                "this VM's host name, set at boot, is its config dir's name",
            )
        return (f"systemd.hostname={cdir.name}",)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


def read_manifest(cdir: Path) -> Manifest:
    path = cdir / MANIFEST
    if not path.is_file():
        raise InputError(
            "config_dir", f"{cdir} has no {MANIFEST}: render it with `nixlayer render` first"
        )
    # The config dir is the user's: its manifest is input like any other (bounded, UTF-8).
    data = parse_json(read_text(path, "config_dir"), "config_dir", str(path))
    try:
        if not isinstance(data, dict):
            raise TypeError("not an object")
        if not isinstance(data.get("vm_name"), str | None):
            raise TypeError("vm_name: not a name or null")
        modules = data.get("modules")
        if modules is not None and not (
            isinstance(modules, list) and all(isinstance(m, str) for m in modules)
        ):
            raise TypeError("modules: not a list of names")
        return Manifest(
            **{k: v for k, v in data.items() if k not in ("overrides", "modules")},
            overrides=tuple(OverrideInput(**o) for o in data.get("overrides", ())),
            modules=None if modules is None else tuple(modules),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError("config_dir", f"{path} is damaged ({exc}); render again") from None
