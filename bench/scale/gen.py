# ruff: noqa: E501  (Nix templates keep their own line length)
"""Generate the scale stand-in: a nixpkgs-shaped tree that costs what nixpkgs costs.

    python bench/scale/gen.py [--out .cache/scale-nixpkgs] [--size full|tiny] [--revision R]

The small stand-in in tests/fixtures/nixpkgs evaluates a system in ~5 ms, so every
figure measured on it is start-up noise. This tree has the same outputs
(`lib.nixosSystem`, `legacyPackages`, an importable default.nix), so it plugs in
wherever the small one does, but at nixpkgs' shape and cost:

- lib: the fixture's functions plus generated sub-libraries, licenses and
  platforms (hundreds of KB of Nix, as nixpkgs' lib), and a module system that
  keeps nixpkgs' per-option bookkeeping (bench/scale/tree/lib/modules.nix);
- pkgs: tens of thousands of package attributes across thousands of files
  (all-packages.nix + callPackage, a readDir'd by-name tree, a python package
  set), each package a `stdenv.mkDerivation` (meta checked against an elaborated
  platform, hardening flags, a third with dev and man outputs) with a
  fixed-output `fetchurl` source and build inputs, over a stdenv booted in four
  stages, each stage instantiating the whole package set again, as nixpkgs does;
- nixos: 2,000 modules of a dozen and a half options each, with descriptions
  and examples (services, programs, hardware), one in five on by default, each
  contributing units, users, groups, /etc files, packages and assertions;
  users, groups, /etc files and units are submodules; the options manual is a
  second evaluation of every module, as NixOS' documentation.nix; base.nix is
  the fixture's, so the toplevel has the same layout (bootspec,
  configuration.json, switch-to-configuration).

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
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # run as a script too
from bench.scale.nixos_modules import SYLLABLES, module_nix

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "nixpkgs"
DEFAULT_OUT = REPO / ".cache" / "scale-nixpkgs"
TREE = HERE / "tree"  # the stand-in's hand-written files, copied as they are

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
        top=20_000,
        by_name=16_000,
        python=4_000,
        modules=2_000,
        lib_files=40,
        lib_functions=120,
        on_every=5,
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
    # As in nixpkgs, many packages split off dev and man outputs or turn off a hardening flag.
    outputs = '\n  outputs = [ "out" "dev" "man" ];' if rng.random() < 0.33 else ""
    hardening = '\n  hardeningDisable = [ "fortify" ];' if rng.random() < 0.1 else ""
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
  propagatedBuildInputs = [ {prop} ];{outputs}{hardening}
  meta = with lib; {{
    description = "{kind} {name}, generated for the nixlayer scale stand-in";
    homepage = "https://example.invalid/{name}";
    license = licenses.{lic};
    platforms = platforms.linux;
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


def lib_default() -> str:
    text = (FIXTURE / "lib" / "default.nix").read_text()
    anchor = "  self = base // import ./modules.nix self;"
    if anchor not in text:
        raise SystemExit(f"anchor missing in {FIXTURE}/lib/default.nix: {anchor!r}")
    return text.replace(
        anchor,
        "  self = base // import ./modules.nix self // import ./generated.nix self"
        " // { licenses = import ./licenses.nix; platforms = import ./platforms.nix; };",
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
        "\n    unitFiles = cfg.system.build.unitFiles or [ ];"
        # As NixOS' users-groups.json and etc: every user's and group's every
        # field, and each /etc text as its own derivation.
        '\n    usersGroups = builtins.toJSON { users = lib.mapAttrsToList (_: u: removeAttrs u [ "_module" ]) cfg.users.users;'
        ' groups = lib.mapAttrsToList (_: g: removeAttrs g [ "_module" ]) (cfg.users.groups or { }); };'
        "\n    etcFiles = lib.mapAttrsToList (_: e: { inherit (e) target mode user group uid gid;"
        ' source = if (e.text or null) != null then "${pkgs.writeText "etc-${baseNameOf e.target}" e.text}" else toString (e.source or ""); })'
        " (lib.filterAttrs (_: e: e.enable or true) (cfg.environment.etc or { }));",
    )


def generate(out: Path, size: Size, revision: str, seed: int = 15) -> bool:  # noqa: PLR0915
    """Write the tree under `out`; False when an identical one is already there."""
    sources = [
        Path(__file__),
        HERE / "nixos_modules.py",
        *sorted(TREE.rglob("*.nix")),
        *sorted(FIXTURE.rglob("*.nix")),
    ]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    stamp = {"size": asdict(size), "revision": revision, "seed": seed, "sources": digest}
    stamp_file = out / ".stamp.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        return False
    if out.exists():
        shutil.rmtree(out)
    rng = random.Random(seed)
    # The hand-written parts (bench/scale/tree) as they are; the stdenv names its toolchain.
    files: dict[str, str] = {
        str(t.relative_to(TREE)): t.read_text() for t in sorted(TREE.rglob("*.nix"))
    }
    stdenv = "pkgs/stdenv/default.nix"
    files[stdenv] = files[stdenv].replace(
        "TOOLCHAIN", "[ " + " ".join(json.dumps(t) for t in TOOLCHAIN) + " ]"
    )
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
    files["pkgs/revision"] = revision + "\n"

    # lib
    files["lib/default.nix"] = lib_default()
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
    files["nixos/modules/base.nix"] = base_module()
    module_names = names(rng, size.modules, set())
    paths = ["./misc/assertions.nix", "./misc/documentation.nix", "./system/systemd.nix",
             "./config/users.nix"]  # fmt: skip
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

    # The fixture's outputs, as they are: the scale tree has the same layout behind them.
    files["flake.nix"] = (FIXTURE / "flake.nix").read_text()
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
