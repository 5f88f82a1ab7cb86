"""The expression the shared evaluator runs (fleet_eval.py), and what it evaluates.

Every target in turn, each result leaving as a trace line. A target may take its
package set from another target's configuration (`--share-pkgs`, fleet_pkgs.py
says which): its own configuration is evaluated again through `extendModules`
with `nixpkgs.pkgs` set to the other's `pkgs` and its overlays emptied (that
`pkgs` already has them), as Colmena's `meta.nixpkgs` and clan-core's
`pkgsForSystem` give their machines one package set. It does so only when its
own nixpkgs settings are the other's as far as the evaluator can tell: as many
overlays, no `nixpkgs.config` on either (NixOS refuses it beside an outside
`nixpkgs.pkgs`), no `nixpkgs.pkgs` of their own. Otherwise it is evaluated
alone, as without the flag, and its trace line says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nixlayer.nix import nixlang


@dataclass(frozen=True)
class Target:
    """One system to evaluate and build: `attr` of the locked flake `flake`.
    `pkgs_from`: the locked flake whose configuration (at `config`, as this
    target's own) lends it its package set."""

    name: str
    flake: str
    attr: tuple[str, ...]
    out_link: Path
    config: tuple[str, ...] = ()
    pkgs_from: str | None = None


@dataclass(frozen=True)
class Evaluated:
    name: str
    drv_path: str | None = None
    out_path: str | None = None
    error: str | None = None
    cached: bool = False
    shared: bool = False  # evaluated on another target's package set (`pkgs_from`)


# The result of one target: its toplevel `t`, and whether it used a lent package set.
_OWN = "own = vm: { t = at flakes.${vm.flake} vm.attr; shared = false; };\n"
_SHARED = """\
  np = c: c.config.nixpkgs;
  # Its own nixpkgs.pkgs: undefined throws in NixOS (no default), null in the stand-ins;
  # `options.*.isDefined` would not do, a default counts as a definition there.
  ownPkgs = c: let r = builtins.tryEval ((np c).pkgs or null); in r.success && r.value != null;
  alone = c: (np c).config or { } == { } && !(ownPkgs c);
  lent = vm:
    let
      c = at flakes.${vm.flake} vm.config;
      l = at flakes.${vm.pkgsFrom} vm.config;
      same = alone c && alone l
        && builtins.length (np c).overlays == builtins.length (np l).overlays;
      ext = c.extendModules {
        modules = [ ({ lib, ... }: {
          nixpkgs.pkgs = l.config._module.args.pkgs;
          nixpkgs.overlays = lib.mkForce [ ];
        }) ];
      };
    in if same then { t = ext.config.system.build.toplevel; shared = true; } else own vm;
  get = vm: if vm ? pkgsFrom then lent vm else own vm;
"""


def fleet_expr(targets: Sequence[Target]) -> str:
    """The expression one evaluator runs: every target in order, each result traced."""
    if not any(t.pkgs_from for t in targets):
        return _plain_expr(targets)
    vms = nixlang.value([_vm(t) for t in targets])
    refs = sorted({t.flake for t in targets} | {t.pkgs_from for t in targets if t.pkgs_from})
    return (
        f"let vms = {vms};\n"
        # One getFlake per flake: a target and those it lends its pkgs see one value.
        "  flakes = builtins.listToAttrs (map (r: { name = r; value = builtins.getFlake r; })"
        f" {nixlang.value(refs)});\n"
        "  at = builtins.foldl' (v: a: v.${a});\n"
        f"  {_OWN}{_SHARED}"
        '  one = vm: let g = get vm; in builtins.trace ("nixlayer-done " + builtins.toJSON'
        " { inherit (vm) name; drv = g.t.drvPath; out = g.t.outPath; inherit (g) shared; })"
        " null;\n"
        f"{_LOOP}"
    )


_LOOP = (
    "in builtins.foldl' (acc: vm: builtins.seq"
    ' (builtins.trace ("nixlayer-begin " + vm.name) null)'
    " (builtins.seq (one vm) acc)) null vms\n"
)


def _vm(t: Target) -> dict[str, nixlang.NixValue]:
    vm: dict[str, nixlang.NixValue] = {"name": t.name, "flake": t.flake, "attr": list(t.attr)}
    if t.pkgs_from:
        vm |= {"config": list(t.config), "pkgsFrom": t.pkgs_from}
    return vm


def _plain_expr(targets: Sequence[Target]) -> str:
    vms = nixlang.value([{"name": t.name, "flake": t.flake, "attr": list(t.attr)} for t in targets])
    return (
        f"let vms = {vms};\n"
        "  get = vm: builtins.foldl' (v: a: v.${a}) (builtins.getFlake vm.flake) vm.attr;\n"
        '  one = vm: let t = get vm; in builtins.trace ("nixlayer-done " + builtins.toJSON'
        " { inherit (vm) name; drv = t.drvPath; out = t.outPath; }) null;\n"
        f"{_LOOP}"
    )
