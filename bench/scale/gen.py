# ruff: noqa: E501  (Nix templates keep their own line length)
"""Generate the scale stand-in: a nixpkgs-shaped tree that costs what nixpkgs costs.

    python bench/scale/gen.py [--out .cache/scale-nixpkgs] [--size full|tiny] [--revision R]

The small stand-in in tests/fixtures/nixpkgs evaluates a system in ~5 ms, so every
figure measured on it is start-up noise. This tree has the same outputs
(`lib.nixosSystem`, `legacyPackages`, an importable default.nix), so it plugs in
wherever the small one does, but at nixpkgs' shape and cost:

- lib: the fixture's functions plus generated sub-libraries and licenses
  (hundreds of KB of Nix, as nixpkgs' lib), and a module system that
  type-checks every definition (bench/scale/modules.nix);
- pkgs: tens of thousands of package attributes across thousands of files
  (all-packages.nix + callPackage, a readDir'd by-name tree, a python package
  set), each package a `stdenv.mkDerivation` with a fixed-output `fetchurl`
  source and build inputs, over a stdenv booted in four stages, each stage
  instantiating the whole package set again, as nixpkgs' stdenv does;
- nixos: ~1,500 modules declaring options (services, programs, hardware),
  about one in twelve on by default, each contributing units, /etc files,
  packages, users and assertions; base.nix is the fixture's, so the toplevel
  has the same layout (bootspec, configuration.json, switch-to-configuration).

Everything is generated from a seeded RNG: the same parameters give the same tree.
A stamp file records them, and an unchanged tree is not rewritten. Derivations
need only /bin/sh, as the fixture's do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "nixpkgs"
DEFAULT_OUT = REPO / ".cache" / "scale-nixpkgs"

# Packages the fixture library and tests name; they must exist here too.
FIXTURE_NAMES = [
    "gdb", "strace", "vim", "bc", "sysstat", "fastfetch", "libvirt", "qemu", "virtiofsd",
    "socat", "git", "openssh", "fio", "xfsprogs", "xfstests", "blktests", "ltp", "mmtests",
    "gitr", "kselftests", "sysbench", "mariadb", "postgresql", "systemd", "dbus", "nix",
    "hello", "bison", "flex",
]  # fmt: skip
TOOLCHAIN = [
    "bash", "coreutils", "gcc", "binutils", "glibc", "gnumake", "gnused", "gnugrep", "gawk",
    "findutils", "diffutils", "patch",
]  # fmt: skip
SYLLABLES = [
    "ab", "ar", "ba", "bel", "cor", "da", "del", "en", "fa", "fin", "ga", "gor", "ha", "hel",
    "in", "ja", "ka", "kor", "la", "lin", "ma", "mor", "na", "nel", "or", "pa", "pel", "qu",
    "ra", "ril", "sa", "sel", "ta", "tor", "u", "va", "vel", "wa", "xi", "ya", "zel", "zo",
]  # fmt: skip
LICENSES = 400


@dataclass(frozen=True)
class Size:
    core: int  # low-level packages everything depends on
    top: int  # packages in all-packages.nix (core included)
    by_name: int  # packages found by readDir under pkgs/by-name
    python: int  # python3Packages
    modules: int  # NixOS modules declaring options
    lib_files: int
    lib_functions: int  # per lib file
    on_every: int  # one module in `on_every` is enabled by default


SIZES = {
    "full": Size(
        core=500,
        top=12_000,
        by_name=8_000,
        python=4_000,
        modules=1_500,
        lib_files=40,
        lib_functions=120,
        on_every=12,
    ),
    "tiny": Size(
        core=60,
        top=150,
        by_name=60,
        python=40,
        modules=30,
        lib_files=3,
        lib_functions=10,
        on_every=3,
    ),
}


def names(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        n = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        n = f"{n}-{rng.randint(1, 99)}" if rng.random() < 0.3 else n
        if n not in taken and n[0].isalpha():
            taken.add(n)
            out.append(n)
    return out


def src_text(name: str) -> str:
    return f"stand-in source of {name}\n"


def package_nix(rng: random.Random, name: str, deps: list[str], python: bool = False) -> str:
    version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
    full = f"{name}-{version}"
    sha = hashlib.sha256(src_text(full).encode()).hexdigest()
    args = ", ".join(["lib", "stdenv", "fetchurl", *deps])
    inputs = " ".join(deps[::2])
    prop = " ".join(deps[1::2])
    lic = f"l{rng.randrange(LICENSES)}"
    kind = "Python module" if python else "Tool"
    return f"""{{ {args} }}:

stdenv.mkDerivation rec {{
  pname = "{name}";
  version = "{version}";
  src = fetchurl {{
    url = "https://example.invalid/{name}/${{pname}}-${{version}}.tar.gz";
    sha256 = "{sha}";
    text = "stand-in source of ${{pname}}-${{version}}";
  }};
  buildInputs = [ {inputs} ];
  propagatedBuildInputs = [ {prop} ];
  meta = with lib; {{
    description = "{kind} {name}, generated for the nixlayer scale stand-in";
    homepage = "https://example.invalid/{name}";
    license = licenses.{lic};
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  }};
}}
"""


def lib_file(rng: random.Random, index: int, count: int) -> str:
    body = []
    for j in range(count):
        k = rng.randrange(4)
        if k == 0:
            body.append(f'  fmt{j} = x: "f{index}.{j}:" + toString x;')
        elif k == 1:
            body.append(f"  sum{j} = xs: builtins.foldl' (a: b: a + b) {j} xs;")
        elif k == 2:
            body.append(
                f'  pick{j} = set: lib.filterAttrs (n: _: lib.hasPrefix "{chr(97 + j % 26)}" n) set;'
            )
        else:
            body.append(f"  wrap{j} = xs: map (x: {{ value = x; tag = {j}; }}) xs;")
    return "# generated\nlib: {\n" + "\n".join(body) + "\n}\n"


def module_nix(  # noqa: PLR0917
    rng: random.Random, i: int, kind: str, name: str, pkg: str, on: bool, extras: list[str]
) -> str:
    enable = (
        'mkOption { type = types.bool; default = true; description = "Whether to enable '
        + name
        + '."; }'
        if on
        else f'mkEnableOption "{name}"'
    )
    ns = {"service": "services", "program": "programs", "hardware": "hardware"}[kind]
    settings = " ".join(f'k{j} = "{rng.randint(0, 999)}";' for j in range(rng.randint(2, 6)))
    extra = " ".join(f"pkgs.{p}" for p in extras)
    head = f"""# generated: {kind} module {i}
{{ config, lib, pkgs, ... }}:
let
  cfg = config.{ns}.{name};
  inherit (lib) mkOption mkEnableOption mkIf types;
in
{{
  options.{ns}.{name} = {{
    enable = {enable};
    package = mkOption {{ type = types.package; default = pkgs.{pkg}; defaultText = "pkgs.{pkg.strip(chr(34))}"; description = "The {name} package."; }};
    extraArgs = mkOption {{ type = types.listOf types.str; default = [ ]; description = "Extra arguments."; }};
    settings = mkOption {{ type = types.attrsOf types.str; default = {{ {settings} }}; description = "Settings."; }};
    logLevel = mkOption {{ type = types.enum [ "debug" "info" "warn" "error" ]; default = "info"; description = "Log level."; }};
    dataDir = mkOption {{ type = types.str; default = "/var/lib/{name}"; description = "Where {name} keeps its state."; }};
    group = mkOption {{ type = types.str; default = "{name}"; description = "Group."; }};
    environmentFile = mkOption {{ type = types.nullOr types.path; default = null; description = "A file of environment variables."; }};
    extraPackages = mkOption {{ type = types.listOf types.package; default = [ {extra} ]; defaultText = "{len(extras)} packages"; description = "Packages added to the path."; }};
    restartSec = mkOption {{ type = types.ints.unsigned; default = {rng.randint(1, 30)}; description = "Seconds between restarts."; }};
"""
    if kind == "service":
        port = 1024 + i
        cmd = (
            "${cfg.package}/bin/${cfg.package.pname} --port ${toString cfg.port} "
            '--log ${cfg.logLevel} ${lib.concatStringsSep " " cfg.extraArgs}'
        )
        # Half the units run a start script: one derivation each, as NixOS' unit scripts.
        script = f"      script = ''\n        exec {cmd}\n      '';\n" if i % 2 == 0 else ""
        execline = f'        ExecStart = "{cmd}";\n' if i % 2 else ""
        return (
            head
            + f"""    port = mkOption {{ type = types.port; default = {port}; description = "Port."; }};
    user = mkOption {{ type = types.str; default = "{name}"; description = "User."; }};
    openFirewall = mkOption {{ type = types.bool; default = false; description = "Open the port."; }};
  }};

  config = mkIf cfg.enable {{
    assertions = [ {{ assertion = cfg.port != 0 && cfg.user != ""; message = "services.{name}: port and user must be set"; }} ];
    environment.systemPackages = [ cfg.package ] ++ cfg.extraPackages;
    environment.etc."{name}/{name}.conf".text = lib.concatStringsSep "\\n" (lib.mapAttrsToList (k: v: "${{k}} = ${{v}}") cfg.settings);
    users.users."{name}" = {{ isNormalUser = false; home = "/var/lib/{name}"; }};
    systemd.services."{name}" = {{
      description = "{name} daemon";
      wantedBy = [ "multi-user.target" ];
      unitConfig.After = "network.target";
      environment.{name.replace("-", "_").upper()}_PORT = toString cfg.port;
{script}      serviceConfig = {{
{execline}        User = cfg.user;
        Restart = "on-failure";
      }};
    }};
  }};
}}
"""
        )
    if kind == "program":
        return (
            head
            + f"""    extraConfig = mkOption {{ type = types.lines; default = ""; description = "Extra configuration."; }};
  }};

  config = mkIf cfg.enable {{
    environment.systemPackages = [ cfg.package ] ++ cfg.extraPackages;
    environment.etc."{name}/config".text = cfg.extraConfig + lib.concatStringsSep "\\n" (lib.mapAttrsToList (k: v: "${{k}}=${{v}}") cfg.settings);
  }};
}}
"""
        )
    return (
        head
        + f"""    level = mkOption {{ type = types.ints.unsigned; default = {rng.randint(0, 9)}; description = "Level."; }};
  }};

  config = mkIf cfg.enable {{
    boot.kernelParams = [ "{name}.level=${{toString cfg.level}}" ];
    environment.systemPackages = [ cfg.package ] ++ cfg.extraPackages;
  }};
}}
"""
    )


def lib_default() -> str:
    text = (FIXTURE / "lib" / "default.nix").read_text()
    anchor = "  self = base // import ./modules.nix self;"
    if anchor not in text:
        raise SystemExit(f"anchor missing in {FIXTURE}/lib/default.nix: {anchor!r}")
    return text.replace(
        anchor,
        "  self = base // import ./modules.nix self // import ./generated.nix self"
        " // { licenses = import ./licenses.nix; };",
    )


def base_module() -> str:
    text = (FIXTURE / "nixos" / "modules" / "base.nix").read_text()
    anchor = "    revision = cfg.system.nixos.revision;"
    if anchor not in text:
        raise SystemExit(f"anchor missing in the fixture's base.nix: {anchor!r}")
    # The toplevel forces every assertion, as NixOS' does.
    return text.replace(
        anchor,
        anchor + "\n    assertions = builtins.foldl' (n: a: if a.assertion then n + 1"
        ' else throw "Failed assertions:\\n- ${a.message}") 0 (cfg.assertions or [ ]);'
        "\n    manual = cfg.system.build.manual or null;"
        "\n    unitFiles = cfg.system.build.unitFiles or [ ];",
    )


FLAKE_NIX = """# The nixlayer scale stand-in (generated by bench/scale/gen.py): the outputs of
# tests/fixtures/nixpkgs at nixpkgs' size.
{
  description = "scale stand-in nixpkgs (generated)";

  outputs =
    { self }:
    let
      lib = import ./lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
    in
    {
      lib = lib // {
        nixosSystem =
          args:
          import ./nixos/eval-config.nix (
            args
            // {
              nixpkgs = self;
              revision = self.rev or self.narHash or "dirty";
            }
          );
      };
      legacyPackages = lib.genAttrs systems (system: import ./. { inherit system; });
    };
}
"""

EVAL_CONFIG = """# lib.nixosSystem: the fixture's base module, every generated module, the caller's.
{ modules ? [ ], specialArgs ? { }, system ? null, nixpkgs, revision, ... }:
let
  lib = import ../lib;
  pkgsModule =
    { config, ... }:
    {
      config._module.args.pkgs =
        if config.nixpkgs.pkgs != null then config.nixpkgs.pkgs
        else import ../pkgs { system = config.nixpkgs.system; overlays = config.nixpkgs.overlays; };
    };
  eval = lib.evalModules {
    specialArgs = { modulesPath = toString ./modules; } // specialArgs;
    modules =
      [ ./modules/base.nix pkgsModule { system.nixos.revision = revision; } ]
      ++ import ./modules/module-list.nix
      ++ lib.optional (system != null) { nixpkgs.system = lib.mkDefault system; }
      ++ modules;
  };
in
eval // { pkgs = eval.config._module.args.pkgs; }
"""

DOCUMENTATION_MODULE = """# The options manual, on by default as in NixOS: every declared option's
# name, type, description and rendered default, into options.json.
{ config, lib, options, pkgs, ... }:
let
  render =
    o:
    if o ? defaultText then o.defaultText
    else if !(o ? default) then null
    else if lib.isDerivation o.default then "<derivation>"
    else if builtins.isFunction o.default then "<function>"
    else if builtins.isAttrs o.default || builtins.isList o.default then builtins.toJSON o.default
    else o.default;
  collect =
    path: o:
    if lib.isOption o then
      [ { name = lib.concatStringsSep "." path; description = o.description or null; type = o.type.name or null; default = render o; } ]
    else builtins.concatMap (n: collect (path ++ [ n ]) o.${n}) (builtins.attrNames o);
in
{
  options.documentation.nixos.enable = lib.mkOption { type = lib.types.bool; default = true; description = "Build the options manual."; };
  config.system.build.manual = lib.mkIf config.documentation.nixos.enable (
    pkgs.writeText "options.json" (builtins.toJSON (collect [ ] (removeAttrs options [ "_module" ])))
  );
}
"""

# systemd.services as NixOS declares it: one submodule evaluation per unit with
# its unit options (defaults matching what base.nix falls back to), and one
# unit-file derivation per unit rendering all of them, as NixOS' unit-*.service.
SYSTEMD_MODULE = """{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  list = mkOption { type = types.listOf types.str; default = [ ]; };
  str = mkOption { type = types.str; default = ""; };
  unitOptions =
    { name, ... }:
    {
      options = {
        enable = mkOption { type = types.bool; default = true; };
        description = mkOption { type = types.str; default = name; };
        wantedBy = list; requiredBy = list; after = list; before = list; requires = list;
        wants = list; bindsTo = list; partOf = list; conflicts = list; requisite = list;
        onFailure = list; onSuccess = list; upholds = list; documentation = list; aliases = list;
        path = mkOption { type = types.listOf types.raw; default = [ ]; };
        unitConfig = mkOption { type = types.attrsOf types.raw; default = { }; };
        serviceConfig = mkOption { type = types.attrsOf types.raw; default = { }; };
        environment = mkOption { type = types.attrsOf types.raw; default = { }; };
        restartTriggers = mkOption { type = types.listOf types.raw; default = [ ]; };
        reloadTriggers = mkOption { type = types.listOf types.raw; default = [ ]; };
        restartIfChanged = mkOption { type = types.bool; default = true; };
        reloadIfChanged = mkOption { type = types.bool; default = false; };
        stopIfChanged = mkOption { type = types.bool; default = true; };
        startLimitBurst = mkOption { type = types.int; default = 5; };
        startLimitIntervalSec = mkOption { type = types.int; default = 10; };
        preStart = str; postStart = str; preStop = str; postStop = str; reload = str;
        startAt = list;
        confinement.enable = mkOption { type = types.bool; default = false; };
      };
    };
  render =
    name: u:
    let
      v = x: if builtins.isList x then lib.concatStringsSep " " (map toString x) else toString x;
      plain = removeAttrs u [ "_module" "unitConfig" "serviceConfig" "environment" "confinement" "script" ];
    in
    "[Unit]\n"
    + lib.concatStringsSep "" (lib.mapAttrsToList (k: x: "X-${k}=${v x}\n") plain)
    + lib.concatStringsSep "" (lib.mapAttrsToList (k: x: "${k}=${v x}\n") u.unitConfig)
    + "[Service]\n"
    + lib.concatStringsSep "" (lib.mapAttrsToList (k: x: "Environment=${k}=${v x}\n") u.environment)
    + lib.concatStringsSep "" (lib.mapAttrsToList (k: x: "${k}=${v x}\n") u.serviceConfig);
in
{
  options.systemd.services = mkOption { type = types.attrsOfSubmodule unitOptions; default = { }; };
  config.system.build.unitFiles = map (n: pkgs.writeText "unit-${builtins.replaceStrings [ "@" ] [ "-" ] n}.service" (render n config.systemd.services.${n}))
    (builtins.attrNames (lib.filterAttrs (_: u: u.enable) config.systemd.services));
}
"""

ASSERTIONS_MODULE = """{ lib, ... }:
{
  options.assertions = lib.mkOption { type = lib.types.listOf lib.types.raw; default = [ ]; };
}
"""

PKGS_DEFAULT = """# The package set: all-packages.nix, by-name and python3Packages through
# callPackage, over a stdenv booted in stages, then the caller's overlays.
{ system, overlays ? [ ] }:
let
  lib = import ../lib;
  byNameDir = ./by-name;
  byName =
    callPackage:
    builtins.listToAttrs (builtins.concatMap (
      shard:
      map (n: { name = n; value = callPackage (byNameDir + "/${shard}/${n}/package.nix") { }; })
        (builtins.attrNames (builtins.readDir (byNameDir + "/${shard}")))
    ) (builtins.attrNames (builtins.readDir byNameDir)));
  packageSet =
    stdenv: extraOverlays:
    let
      base =
        final:
        let
          callPackageWith =
            scope: fn: args:
            let f = import fn; in f (builtins.intersectAttrs (builtins.functionArgs f) scope // args);
          callPackage = callPackageWith final;
        in
        import ./top-level/all-packages.nix { inherit callPackage; }
        // byName callPackage
        // {
          inherit lib system stdenv callPackage;
          inherit (stdenv) mkDerivation;
          fetchurl = import ./build-support/fetchurl.nix { inherit system; };
          python3Packages = import ./top-level/python-packages.nix {
            callPackage = callPackageWith (final // final.python3Packages);
          };
          writeText = name: text: stdenv.mkDerivation { inherit name text; passAsFile = [ "text" ]; buildCommand = "cp \\"$textPath\\" \\"$out\\""; };
          writeShellScript = name: text: stdenv.mkDerivation { inherit name text; passAsFile = [ "text" ]; buildCommand = "{ echo '#!/bin/sh'; cat \\"$textPath\\"; } > \\"$out\\"; chmod +x \\"$out\\""; };
        };
      # nixpkgs' own overlays, each a `//` over the whole set, in every stage.
      internal = [
        (final: prev: import ./top-level/aliases.nix final)
        (final: prev: { pkgsStatic = prev; buildPackages = prev; __splicedPackages = prev // { recurseForDerivations = false; }; })
        (final: prev: { config = { allowUnfree = false; }; })
        (final: prev: builtins.mapAttrs (_: v: v) (builtins.intersectAttrs { python3 = null; perl = null; } prev))
      ];
    in
    lib.fix (lib.foldl' (f: overlay: lib.extends overlay f) base (internal ++ extraOverlays));
  stdenv = import ./stdenv { inherit lib system packageSet; };
in
packageSet stdenv overlays
"""

FETCHURL = """# A fixed-output "download": the builder writes the text whose hash the package pins.
{ system }:
{ url, sha256, text }:
derivation {
  name = baseNameOf url;
  inherit system url text;
  builder = "/bin/sh";
  args = [ "-c" "printf '%s\\\\n' \\"$text\\" > \\"$out\\"" ];
  outputHashMode = "flat";
  outputHashAlgo = "sha256";
  outputHash = sha256;
}
"""

STDENV = """# stdenv booted in stages, as nixpkgs does: each stage builds its toolchain with
# the previous stage, instantiating the whole package set again.
{ lib, system, packageSet }:
let
  mkDerivationWith = import ./mk-derivation.nix { inherit lib system; };
  toolchain = TOOLCHAIN;
  mkStdenv = drv: { inherit drv; mkDerivation = mkDerivationWith drv; hostPlatform.system = system; };
  bootstrap = mkStdenv (derivation {
    name = "bootstrap-tools";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "PATH=/usr/bin:/bin; mkdir -p $out/bin" ];
    nixpkgsRevision = builtins.readFile ../revision;
  });
  stage =
    prev: i:
    let pkgs = packageSet prev [ ]; in
    mkStdenv (prev.mkDerivation {
      name = "stdenv-stage${toString i}";
      buildInputs = map (n: pkgs.${n}) toolchain;
    });
in
builtins.foldl' stage bootstrap [ 1 2 3 4 ]
"""

MK_DERIVATION = """# stdenv.mkDerivation in miniature, doing what makes nixpkgs' one cost: a
# finalAttrs fixpoint, a meta check against a schema (license, platforms),
# propagated inputs closed over with genericClosure, per-input environment
# strings, and overrideAttrs; a /bin/sh builder over the stage's stdenv.
{ lib, system }:
stdenvDrv:
let
  metaSchema = {
    description = builtins.isString; homepage = builtins.isString; license = builtins.isAttrs;
    platforms = builtins.isList; broken = builtins.isBool; maintainers = builtins.isList;
    mainProgram = builtins.isString; longDescription = builtins.isString; priority = builtins.isInt;
  };
  checkMeta =
    name: meta:
    let
      bad = builtins.filter (k: !(metaSchema ? ${k}) || !(metaSchema.${k} meta.${k})) (builtins.attrNames meta);
      license = meta.license or { free = true; };
    in
    if bad != [ ] then throw "${name}: invalid meta attributes ${builtins.concatStringsSep ", " bad}"
    else if meta.broken or false then throw "${name} is marked as broken"
    else if !(license.free or true) && !(builtins.elem system [ ]) then true
    else if !(builtins.any (p: p == system || p == "all") (meta.platforms or [ "all" ])) then throw "${name} is not supported on ${system}"
    else true;
  mkDerivation =
    attrsOrFn:
    let
      attrs = if builtins.isFunction attrsOrFn then lib.fix attrsOrFn else attrsOrFn;
      pname = attrs.pname or null;
      version = attrs.version or "1.0";
      name = attrs.name or "${pname}-${version}";
      meta = attrs.meta or { };
      buildInputs = attrs.buildInputs or [ ];
      propagated = map (x: x.drv) (builtins.genericClosure {
        startSet = map (d: { key = d.outPath; drv = d; }) (attrs.propagatedBuildInputs or [ ]);
        operator = i: map (d: { key = d.outPath; drv = d; }) (i.drv.propagatedBuildInputs or [ ]);
      });
      allInputs = buildInputs ++ propagated;
      defaultBuild = ''
        mkdir -p "$out/bin" "$out/share/${name}"
        printf '#!/bin/sh\\necho %s\\n' '${name}' > "$out/bin/${if pname == null then name else pname}"
        chmod +x "$out/bin/"*
        printf '%s\\n' "$src" > "$out/share/${name}/src"
      '';
      drvAttrs =
        removeAttrs attrs [ "buildCommand" "meta" "passthru" "pname" "version" "propagatedBuildInputs" ]
        // {
          inherit name system;
          src = attrs.src or "";
          stdenv = stdenvDrv;
          buildInputs = allInputs;
          NIX_CFLAGS_COMPILE = builtins.concatStringsSep " " (map (d: "-isystem ${d}/include") allInputs);
          NIX_LDFLAGS = builtins.concatStringsSep " " (map (d: "-L${d}/lib -rpath ${d}/lib") allInputs);
          nixpkgsRevision = builtins.readFile ../revision;
          builder = "/bin/sh";
          args = [ "-c" ("PATH=/usr/bin:/bin\\nset -e\\n" + (attrs.buildCommand or defaultBuild)) ];
        };
      drv = builtins.seq (checkMeta name meta) (derivation drvAttrs);
      applyOverride =
        f:
        let
          r = if builtins.isFunction f then f attrs else f;
          r' = if builtins.isFunction r then r attrs else r;
        in
        mkDerivation (attrs // r');
    in
    drv
    // (attrs.passthru or { })
    // {
      inherit pname version meta;
      propagatedBuildInputs = attrs.propagatedBuildInputs or [ ];
      src = attrs.src or "";
      overrideAttrs = applyOverride;
    };
in
mkDerivation
"""


def generate(out: Path, size: Size, revision: str, seed: int = 15) -> bool:  # noqa: PLR0915
    """Write the tree under `out`; False when an identical one is already there."""
    sources = [Path(__file__), HERE / "modules.nix", *sorted(FIXTURE.rglob("*.nix"))]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    stamp = {"size": asdict(size), "revision": revision, "seed": seed, "sources": digest}
    stamp_file = out / ".stamp.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        return False
    if out.exists():
        shutil.rmtree(out)
    rng = random.Random(seed)
    files: dict[str, str] = {}
    taken = set(FIXTURE_NAMES) | set(TOOLCHAIN)

    # Packages: toolchain first, then core (the fixture's names among them), then the rest.
    extra_core = names(rng, size.core - len(TOOLCHAIN) - len(FIXTURE_NAMES), taken)
    core = TOOLCHAIN + FIXTURE_NAMES + extra_core
    top = core + names(rng, size.top - len(core), taken)
    by_name = names(rng, size.by_name, taken)
    python = names(rng, size.python, taken)

    def deps_for(i: int, pool: list[str], lo: int, hi: int, most: int) -> list[str]:
        if hi <= lo:
            return []
        return sorted({pool[rng.randrange(lo, hi)] for _ in range(rng.randint(0, most))})

    entries = []
    for i, n in enumerate(top):
        if i < len(TOOLCHAIN):
            deps = deps_for(i, top, 0, i, 2)  # toolchain depends only on toolchain
        elif i < len(core):
            deps = deps_for(i, top, 0, i, 3)
        else:
            deps = deps_for(i, top, 0, len(core), 3)
        cat = ["tools", "development", "servers", "applications", "os-specific"][i % 5]
        files[f"pkgs/{cat}/{n}/default.nix"] = package_nix(rng, n, deps)
        entries.append(f"  {json.dumps(n)} = callPackage ../{cat}/{n} {{ }};")
    files["pkgs/top-level/all-packages.nix"] = (
        "# generated\n{ callPackage }:\n{\n" + "\n".join(entries) + "\n}\n"
    )
    for n in by_name:
        deps = deps_for(0, top, 0, len(core), 3)
        files[f"pkgs/by-name/{n[:2]}/{n}/package.nix"] = package_nix(rng, n, deps)
    py_entries = []
    for i, n in enumerate(python):
        deps = deps_for(i, python, 0, i, 2) + deps_for(0, top, 0, len(core), 1)
        files[f"pkgs/development/python-modules/{n}/default.nix"] = package_nix(
            rng, n, sorted(set(deps)), python=True
        )
        py_entries.append(
            f"  {json.dumps(n)} = callPackage ../development/python-modules/{n} {{ }};"
        )
    files["pkgs/top-level/python-packages.nix"] = (
        "# generated\n{ callPackage }:\n{\n" + "\n".join(py_entries) + "\n}\n"
    )
    aliases = names(rng, size.top // 4, taken)
    files["pkgs/top-level/aliases.nix"] = (
        "# generated: old names kept as aliases\nfinal: {\n"
        + "\n".join(
            f"  {json.dumps(a)} = final.{json.dumps(top[rng.randrange(len(top))])};"
            for a in aliases
        )
        + "\n}\n"
    )
    files["pkgs/default.nix"] = PKGS_DEFAULT
    files["pkgs/build-support/fetchurl.nix"] = FETCHURL
    files["pkgs/stdenv/default.nix"] = STDENV.replace(
        "TOOLCHAIN", "[ " + " ".join(json.dumps(t) for t in TOOLCHAIN) + " ]"
    )
    files["pkgs/stdenv/mk-derivation.nix"] = MK_DERIVATION
    files["pkgs/revision"] = revision + "\n"

    # lib
    files["lib/default.nix"] = lib_default()
    files["lib/modules.nix"] = (HERE / "modules.nix").read_text()
    files["lib/generated.nix"] = (
        "# generated\nlib: {\n"
        + "\n".join(f"  gen{i} = import ./gen/gen{i}.nix lib;" for i in range(size.lib_files))
        + "\n}\n"
    )
    for i in range(size.lib_files):
        files[f"lib/gen/gen{i}.nix"] = lib_file(rng, i, size.lib_functions)
    files["lib/licenses.nix"] = (
        "# generated\n{\n"
        + "\n".join(
            f'  l{i} = {{ shortName = "L-{i}"; fullName = "License {i}"; free = {"true" if i % 7 else "false"}; }};'
            for i in range(LICENSES)
        )
        + "\n}\n"
    )

    # nixos
    files["nixos/eval-config.nix"] = EVAL_CONFIG
    files["nixos/modules/base.nix"] = base_module()
    files["nixos/modules/misc/assertions.nix"] = ASSERTIONS_MODULE
    files["nixos/modules/misc/documentation.nix"] = DOCUMENTATION_MODULE
    files["nixos/modules/system/systemd.nix"] = SYSTEMD_MODULE
    module_names = names(rng, size.modules, set())
    paths = ["./misc/assertions.nix", "./misc/documentation.nix", "./system/systemd.nix"]
    for i, n in enumerate(module_names):
        kind = "service" if i % 20 < 12 else "program" if i % 20 < 17 else "hardware"
        pool = top if rng.random() < 0.7 else by_name
        pkg = pool[rng.randrange(len(pool))]
        on = i % size.on_every == 0
        rel = {"service": "services", "program": "programs", "hardware": "hardware"}[kind]
        rel = f"{rel}/{n[:2]}/{n}.nix"
        extras = [json.dumps(top[rng.randrange(len(top))]) for _ in range(rng.randint(0, 2))]
        files[f"nixos/modules/{rel}"] = module_nix(rng, i, kind, n, json.dumps(pkg), on, extras)
        paths.append(f"./{rel}")
    files["nixos/modules/module-list.nix"] = (
        "# generated\n[\n" + "\n".join(f"  {p}" for p in paths) + "\n]\n"
    )

    files["flake.nix"] = FLAKE_NIX
    files["default.nix"] = (FIXTURE / "default.nix").read_text()

    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    stamp_file.write_text(json.dumps(stamp, sort_keys=True) + "\n")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--revision", default="scale-a")
    args = parser.parse_args()
    wrote = generate(args.out, SIZES[args.size], args.revision)
    count = sum(1 for p in args.out.rglob("*") if p.is_file())
    print(f"{'wrote' if wrote else 'unchanged'}: {args.out} ({count} files)")


if __name__ == "__main__":
    main()
