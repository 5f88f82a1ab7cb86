"""Performance at real scale, side by side in one run, on the scale stand-in.

    python bench/at_scale.py [--sizes 1,5,20] [--runs 5]
                              [--only eval,stats,fleet,fresh,flake,build,switch,seed]

- eval:   one system of the scale stand-in (bench/scale/gen.py): wall, CPU, peak RSS;
- stats:  Nix's own counters for one evaluation of 1 and of 5 systems;
- fleet:  `nixlayer fleet build` of 1, 5 and 20 distinct VMs, the shared evaluator
          (--eval shared; with --share-pkgs, one package set for VMs alike) against
          one `nix build` process per VM (--eval per-vm):
          wall, peak RSS of any one process, per-extra-VM cost as a share of the first;
- fresh:  a fleet of 1 and of 5 VMs on a nixpkgs nothing was built from (a new
          revision), as after a nixpkgs bump: the first VM builds what all share;
- flake:  a flake of 20 nixosConfigurations (seed 001's machines/ layout):
          `fleet build --flake` against 20 `nix build` processes and against one
          `nix build` of all 20 installables;
- build:  `nixlayer build` against the `nix build` it wraps (eval-cache off);
- switch: `nixlayer switch --action dry-activate` against the `nix build` of the layer and
          its switch-to-configuration dry-activate: warm, and with the job changed;
- seed:   `runner-store seed`'s fixed cost (a re-seed with nothing to copy).

Every VM of every fleet run is new (its own name and key), so nothing is cached or
already built except what a fleet shares (nixpkgs' packages, built once in setup).
The machine may be shared: compare the ratios, which are measured side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scale import gen  # noqa: E402
from tests.helpers import FIXTURES, offline_nix_config, run_nix, ssh_key  # noqa: E402

NIXLAYER = str(REPO / ".venv/bin/nixlayer")
TIME = "/usr/bin/time"


def measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB of the largest process) of one command."""
    fmt = "%e %U %S %M"
    proc = subprocess.run(
        [TIME, "-f", fmt, "-o", "/dev/stderr", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    last = proc.stderr.strip().splitlines()[-1].split()
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    wall, user, sys_, rss = (float(x) for x in last)
    return wall, user + sys_, rss / 1024


def library_on(scale: Path, work: Path) -> Path:
    lib = work / "nixos-flake"
    shutil.copytree(FIXTURES / "nixos-flake", lib)
    run_nix("flake", "lock", f"path:{lib}", "--override-input", "nixpkgs", f"path:{scale}")
    return lib


def fleet_file(work: Path, lib: Path, tag: str, n: int, hostname: str = "closure") -> Path:
    """n VMs that differ only in their names. With `hostname: closure` each name is
    in its system, so every VM is a system of its own; with `boot` they are one
    design (kdevops' guests of one image) and share one toplevel."""
    path = work / f"fleet-{tag}.json"
    key = ssh_key(uuid.uuid4().hex)
    path.write_text(
        json.dumps(
            {
                "defaults": {
                    "library": str(lib),
                    "profiles": ["devel", "build-tools"],
                    "test_suites": ["fstests", "ltp"],
                    "ssh_keys": [key],
                    "hostname": hostname,
                },
                "vms": [{"vm_name": f"{tag}-{i}"} for i in range(n)],
            }
        )
    )
    return path


def bench_eval(work: Path, lib: Path) -> None:
    print(
        "\n== one system of the scale stand-in (nix eval of its toplevel drvPath, eval-cache off)"
    )
    fleet = fleet_file(work, lib, "one", 1)
    subprocess.run([NIXLAYER, "fleet", "build", str(fleet), "--root", str(work / "one"), "-q"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    ref = f"path:{work / 'one' / 'one-0'}#packages.x86_64-linux.toplevel.drvPath"
    rows = [measured(["nix", "eval", "--raw", ref, "--option", "eval-cache", "false"])
            for _ in range(3)]  # fmt: skip
    wall, cpu, rss = (statistics.median(c) for c in zip(*rows, strict=True))
    files = sum(1 for p in gen.DEFAULT_OUT.rglob("*.nix"))
    print(f"  {files} .nix files; wall {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {rss:.0f} MiB "
          "(median of 3)")  # fmt: skip


# fleet build's designs: the shared evaluator, the same with one package set per
# group of alike VMs (--share-pkgs), and one `nix build` per VM.
# Distinct systems (host name in the closure) for every design; one design
# (host name set at boot) for the shared evaluator and one process per VM.
DESIGNS = {
    "shared": ("closure", ["--eval", "shared"]),
    "shared+pkgs": ("closure", ["--eval", "shared", "--share-pkgs"]),
    "per-vm": ("closure", ["--eval", "per-vm"]),
    # Two evaluators side by side (nix-eval-jobs' --workers): wall time, on 2 cores.
    "shared-j2": ("closure", ["--eval", "shared", "--jobs", "2"]),
    "boot:shared": ("boot", ["--eval", "shared"]),
    "boot:per-vm": ("boot", ["--eval", "per-vm"]),
}


def bench_fresh(work: Path, budget: int, n: int = 5) -> None:
    """A fleet on a nixpkgs nothing has been built from (a new revision of the stand-in,
    as after a nixpkgs bump): the first VM builds what every VM shares."""
    print(f"\n== fleet build on a fresh nixpkgs (nothing built yet): 1 VM vs {n} VMs, shared")
    rows = []
    for count in (1, n):
        rev = f"fresh-{uuid.uuid4().hex[:8]}"
        here = work / rev
        here.mkdir()
        scale = here / "nixpkgs"
        gen.generate(scale, gen.SIZES["full"], rev)
        lib = library_on(scale, here)
        fleet = fleet_file(here, lib, rev, count)
        rows.append(measured([NIXLAYER, "fleet", "build", str(fleet), "--root", str(here / "r"),
                              "--max-memory", str(budget), "-q"]))  # fmt: skip
        shutil.rmtree(scale)
    (w1, c1, r1), (wn, cn, rn) = rows
    pw, pc = (wn - w1) / (n - 1), (cn - c1) / (n - 1)
    print(f"  1 VM: wall {w1:.1f} s, CPU {c1:.1f} s, peak RSS {r1:.0f} MiB; {n} VMs: wall "
          f"{wn:.1f} s, CPU {cn:.1f} s, peak RSS {rn:.0f} MiB; per extra VM {pw:.2f} s = "
          f"{pw / w1:.0%} wall, {pc:.2f} s = {pc / c1:.0%} CPU")  # fmt: skip


def bench_fleet(work: Path, lib: Path, sizes: list[int], budget: int) -> None:
    print(f"\n== fleet build, shared evaluator (budget {budget} MiB) vs one nix build per VM")
    print(f"{'VMs':>4} {'design':<11} {'wall':>8} {'CPU':>8} {'peak RSS':>9}  "
          "per extra VM, as a share of the first VM's")  # fmt: skip
    first: dict[str, tuple[float, float]] = {}
    for n in sizes:
        for design, (hostname, flags) in DESIGNS.items():
            tag = f"{design.replace('+', '-').replace(':', '-')}-{n}-{uuid.uuid4().hex[:6]}"
            fleet = fleet_file(work, lib, tag, n, hostname)
            wall, cpu, rss = measured([NIXLAYER, "fleet", "build", str(fleet), "--root",
                                       str(work / tag), *flags, "--max-memory",
                                       str(budget), "-q"])  # fmt: skip
            extra = ""
            if n == 1:
                first[design] = (wall, cpu)
            elif design in first:
                w1, c1 = first[design]
                pw, pc = (wall - w1) / (n - 1), (cpu - c1) / (n - 1)
                extra = f"{pw:.2f} s = {pw / w1:.0%} wall, {pc:.2f} s = {pc / c1:.0%} CPU"
            print(f"{n:>4} {design:<11} {wall:>7.2f}s {cpu:>7.2f}s {rss:>7.0f}Mi  {extra}")
            if n == max(sizes):
                # The same fleet again, nothing changed: what a CI re-run costs.
                wall, cpu, rss = measured([NIXLAYER, "fleet", "build", str(fleet), "--root",
                                           str(work / tag), *flags, "-q"])  # fmt: skip
                print(f"{n:>4} {design:<11} {wall:>7.2f}s {cpu:>7.2f}s {rss:>7.0f}Mi "
                      "  (re-run, nothing changed)")  # fmt: skip


def machines_flake(work: Path, scale: Path, n: int) -> Path:
    """Seed 001's shape: one file per machine under machines/, one helper for all."""
    flake = work / f"machines-{uuid.uuid4().hex[:6]}"
    (flake / "machines").mkdir(parents=True)
    run_id = uuid.uuid4().hex
    for i in range(n):
        (flake / "machines" / f"host{i:02d}.nix").write_text(
            "{ ... }: { services.openssh.enable = true; "
            f'boot.kernelParams = [ "host={i}" ]; }}\n'
        )
    (flake / "flake.nix").write_text(
        f"""{{
  inputs.nixpkgs.url = "path:{scale}";
  outputs = {{ self, nixpkgs }}:
    let
      files = builtins.attrNames (builtins.readDir ./machines);
      name = f: builtins.substring 0 (builtins.stringLength f - 4) f;
    in {{
      nixosConfigurations = builtins.listToAttrs (map (f: {{
        name = name f;
        value = nixpkgs.lib.nixosSystem {{
          system = "x86_64-linux";
          modules = [ (./machines + "/${{f}}") {{ networking.hostName = name f;
            environment.etc."run-id".text = "{run_id}"; }} ];
        }};
      }}) files);
    }};
}}
"""
    )
    run_nix("flake", "lock", f"path:{flake}")
    return flake


def bench_stats(work: Path, scale: Path, n: int = 5) -> None:
    """What one evaluator does for n systems against one: Nix's own counters."""
    print(f"\n== one nix eval of 1 and of {n} systems' toplevels (NIX_SHOW_STATS)")
    apply = ("cs: builtins.foldl' (a: n: builtins.seq cs.${n}.config.system.build.toplevel"
             ".drvPath a) 0 (builtins.attrNames cs)")  # fmt: skip
    got = []
    for count in (1, n):
        flake = machines_flake(work, scale, count)
        stats = work / f"stats-{count}.json"
        env = {**os.environ, "NIX_SHOW_STATS": "1", "NIX_SHOW_STATS_PATH": str(stats)}
        _, cpu, rss = measured(["nix", "eval", f"path:{flake}#nixosConfigurations",
                                   "--apply", apply, "--option", "eval-cache", "false"],
                                  env)  # fmt: skip
        data = json.loads(stats.read_text())
        got.append((cpu, rss, data["nrFunctionCalls"], data["nrThunks"], data["gc"]["totalBytes"]))
    (c1, r1, f1, t1, b1), (cn, rn, fn, tn, bn) = got
    print(f"  {n} systems / 1: function calls {fn / f1:.2f}x, thunks {tn / t1:.2f}x, bytes "
          f"allocated {bn / b1:.2f}x, CPU {cn / c1:.2f}x ({c1:.2f} s -> {cn:.2f} s), "
          f"peak RSS {r1:.0f} -> {rn:.0f} MiB")  # fmt: skip


def bench_flake(work: Path, scale: Path, n: int, budget: int) -> None:
    print(f"\n== a flake of {n} nixosConfigurations")
    attr = "config.system.build.toplevel"

    def fleet_of_flake(count: int) -> tuple[float, float, float]:
        flake = machines_flake(work, scale, count)
        return measured([NIXLAYER, "fleet", "build", "--flake", f"path:{flake}", "--root",
                         str(work / flake.name), "--max-memory", str(budget), "-q"])  # fmt: skip

    # What every configuration shares (its packages, as nixpkgs' are for fleets) is
    # built once beforehand, so the rows measure evaluation and each one's own builds.
    fleet_of_flake(1)
    first = fleet_of_flake(1)
    ours = fleet_of_flake(n)
    w1, c1 = first[0], first[1]
    pw, pc = (ours[0] - w1) / (n - 1), (ours[1] - c1) / (n - 1)
    print(f"  nixlayer fleet build --flake, 1 configuration: wall {w1:.2f} s, CPU {c1:.2f} s; "
          f"per extra one: {pw:.2f} s = {pw / w1:.0%} wall, "
          f"{pc:.2f} s = {pc / c1:.0%} CPU")  # fmt: skip
    b = machines_flake(work, scale, n)
    start = time.perf_counter()
    rss = cpu = 0.0
    for i in range(n):
        _, c, r = measured(
            ["nix", "build", "--no-link", f"path:{b}#nixosConfigurations.host{i:02d}.{attr}"]
        )
        cpu, rss = cpu + c, max(rss, r)
    per_vm = (time.perf_counter() - start, cpu, rss)
    third = machines_flake(work, scale, n)
    every = [f"path:{third}#nixosConfigurations.host{i:02d}.{attr}" for i in range(n)]
    one = measured(["nix", "build", "--no-link", *every])
    for label, (wall, cpu_, rss_) in (
        ("nixlayer fleet build --flake", ours),
        (f"{n} x nix build (one per VM)", per_vm),
        (f"one nix build of {n} installables", one),
    ):
        print(f"  {label:<36} wall {wall:7.2f} s  CPU {cpu_:7.2f} s  peak RSS {rss_:6.0f} MiB"
              f"  ({per_vm[0] / wall:.2f}x faster than one per VM)")  # fmt: skip


def bench_build(work: Path, lib: Path, runs: int) -> None:
    print(f"\n== nixlayer build vs nix build (eval-cache off, so both evaluate; {runs} pairs, "
          "alternating)")  # fmt: skip
    fleet = fleet_file(work, lib, "b", 1)
    subprocess.run([NIXLAYER, "fleet", "build", str(fleet), "--root", str(work / "b"), "-q"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    cdir = work / "b" / "b-0"
    opts = ["--option", "eval-cache", "false"]
    raw = ["nix", "build", f"path:{cdir}#packages.x86_64-linux.toplevel", "--json",
           "--out-link", str(work / "raw-result"), *opts]  # fmt: skip
    ours = [NIXLAYER, "build", str(cdir), "--json", "-q", *opts]
    print(HEADER)
    print_pairs("build", alternating(raw, ours, runs, dict(os.environ), lambda: None))


def bump(job: Path) -> None:
    """A new value the job's configuration reads: a new toplevel, evaluated afresh."""
    (job / "run-id").write_text(uuid.uuid4().hex)


def alternating(raw: list[str], ours: list[str], runs: int, env: dict[str, str],
                before: Callable[[], None]) -> list[tuple[float, float, float, float]]:  # fmt: skip
    """(raw wall, raw CPU, our wall, our CPU) of `runs` pairs, run back to back in
    alternating order (ABBA), after one unmeasured run of each; `before` runs before
    every run of either side."""
    for argv in (raw, ours):
        before()
        measured(argv, env)
    pairs = []
    for i in range(runs):
        got = [(0.0, 0.0), (0.0, 0.0)]
        for k in (0, 1) if i % 2 == 0 else (1, 0):
            before()
            got[k] = measured((raw, ours)[k], env)[:2]
        pairs.append((*got[0], *got[1]))
    return pairs


HEADER = (f"{'':<9} {'raw wall':>9} {'CPU':>7} {'nixlayer wall':>14} {'CPU':>7}  "
          "ratio wall/CPU     overhead wall/CPU")  # fmt: skip


def print_pairs(label: str, pairs: list[tuple[float, float, float, float]]) -> None:
    """Medians of each side, and ratio and overhead as medians over the back-to-back
    pairs (steadier than two medians on a shared machine), wall and CPU."""
    rw, rc, ow, oc = (statistics.median(column) for column in zip(*pairs, strict=True))
    ratio = [statistics.median(p[k + 2] / p[k] for p in pairs) for k in (0, 1)]
    extra = [statistics.median(p[k + 2] - p[k] for p in pairs) * 1e3 for k in (0, 1)]
    sides = f"{rw:8.3f}s {rc:6.3f}s {ow:13.3f}s {oc:6.3f}s"
    print(f"{label:<9} {sides}  {ratio[0]:5.3f}x/{ratio[1]:5.3f}x  "
          f"{extra[0]:5.0f}/{extra[1]:4.0f} ms")  # fmt: skip


def bench_switch(work: Path, runs: int) -> None:
    print(f"\n== nixlayer switch --action dry-activate vs the raw commands it wraps "
          f"({runs} pairs, alternating)")  # fmt: skip
    import tests.layer.conftest as layer

    fixtures = work / "switch-fixtures"
    fixtures.mkdir()
    os.symlink(gen.DEFAULT_OUT, fixtures / "nixpkgs")
    for name in ("runner-base", "job", "system-manager"):
        os.symlink(FIXTURES / name, fixtures / name)
    # The runner base and the job, on the scale stand-in.
    layer.__dict__["FIXTURES"] = fixtures
    lay = layer.make_layered(work / "switch")
    job_nix = lay.job / "job.nix"
    text = job_nix.read_text().rstrip().removesuffix("}")
    reads = '  environment.etc."bench-run".text = builtins.readFile ./run-id;\n}\n'
    job_nix.write_text(text + reads)
    bump(lay.job)
    # What `nixos-rebuild dry-activate --flake` runs: the build, then the new system's
    # switch-to-configuration (the stand-in's, which nixlayer runs too).
    attr = "nixosConfigurations.runner.config.system.build.toplevel"
    link = work / "raw-switch-result"
    build = ["nix", "build", "--json", "--out-link", str(link), "--no-write-lock-file",
             f"path:{lay.job}#{attr}", "--override-input", "base", f"path:{lay.base}"]  # fmt: skip
    raw = ["sh", "-c", f'{shlex.join(build)} >/dev/null && "$0"/bin/switch-to-configuration '
           "dry-activate", str(link)]  # fmt: skip
    # nixlayer as installed (a wheel or a Nix build carries its bytecode), even where
    # PYTHONDONTWRITEBYTECODE would make this checkout compile it on every run.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src")], check=True)
    env = {**os.environ, **lay.env}
    ours = [NIXLAYER, *lay.args("--action", "dry-activate", "--json", "-q")]
    # The premise of the second row: a bump makes a new toplevel.
    tops = []
    for _ in range(2):
        bump(lay.job)
        tops.append(json.loads(subprocess.check_output(build, env=env))[0]["outputs"]["out"])
    assert tops[0] != tops[1], tops
    print(HEADER)
    # nixlayer also prints the closure diff: Nix's own is `nix store diff-closures`.
    diff = f'nix store diff-closures {shlex.quote(str(lay.current))} "$0" >/dev/null'
    diffing = ["sh", "-c", f'{shlex.join(build)} >/dev/null && {diff} && '
               '"$0"/bin/switch-to-configuration dry-activate', str(link)]  # fmt: skip
    # The Nix commands nixlayer's switch runs (`-v` logs each), one after another: the
    # job's metadata over the base, the build, Nix's version, the closure of each system,
    # then switch-to-configuration.
    probe = ["nix", "flake", "metadata", "--json", f"path:{lay.job}", "--no-write-lock-file",
             "--override-input", "base", f"path:{lay.base}"]  # fmt: skip
    closures = [f"nix path-info --json --recursive {shlex.quote(str(lay.current.resolve()))}",
                'nix path-info --json --recursive "$(readlink -f "$0")"']  # fmt: skip
    same = ["sh", "-c", f"{shlex.join(probe)} >/dev/null && {shlex.join(build)} >/dev/null && "
            f"nix --version >/dev/null && {closures[0]} >/dev/null && {closures[1]} >/dev/null "
            '&& "$0"/bin/switch-to-configuration dry-activate', str(link)]  # fmt: skip
    rows = (
        ("warm", raw, lambda: None),
        ("changed", raw, lambda: bump(lay.job)),
        ("+diff", diffing, lambda: bump(lay.job)),
        ("same", same, lambda: bump(lay.job)),
        ("warm same", same, lambda: None),
    )
    for label, raw_side, before in rows:
        print_pairs(label, alternating(raw_side, ours, runs, env, before))
    print("  raw: nix build --out-link, then its bin/switch-to-configuration dry-activate;")
    print("  sides: medians; ratio and overhead: medians over the back-to-back pairs;")
    print("  warm: the job unchanged (Nix's eval cache answers); changed: a new value in a")
    print("  file the job reads before every run of either side (both evaluate and build).")
    print("  +diff: changed, and the raw side also runs nix store diff-closures (nixlayer's")
    print("  switch prints the closure diff of the running and the new system).")
    print("  same: changed, and the raw side runs, one after another, the Nix commands")
    print("  nixlayer's switch runs (flake metadata, build, --version, two path-info).")
    print("  warm same: the job unchanged, against those same commands.")


def bench_seed(work: Path, runs: int) -> None:
    print(f"\n== runner-store seed fixed cost: a re-seed with nothing to copy (median of {runs})")
    from tests.runner_store.images import build_paths, docker_save, image_root, layers_for

    paths = build_paths(work, n=20, size=100_000, tag="seed")
    archive = docker_save(work / "seed.tar", layers_for(image_root(work, "seed", paths)))
    argv = [NIXLAYER, "runner-store", "seed", "--image-archive", str(archive), "--dir",
            str(work / "seeded"), "-q"]  # fmt: skip
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    times = [measured(argv)[0] for _ in range(runs)]
    print(f"  {statistics.median(times):.3f} s (this tree's seed; 0.50 s before the hardened seed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,20")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", type=int, default=2048, help="evaluator memory budget, MiB")
    parser.add_argument("--only", default="eval,stats,fleet,fresh,flake,build,switch,seed")
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="nixlayer-scale-bench-"))
    os.environ["NIX_CONFIG"] = offline_nix_config(work / "registry.json")
    gen.generate(gen.DEFAULT_OUT, gen.SIZES["full"], "scale-a")
    scale = gen.DEFAULT_OUT
    version = subprocess.check_output(["nix", "--version"], text=True).strip()
    print(f"nixlayer scale bench: {version}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, work dir {work}")  # fmt: skip
    lib = library_on(scale, work)
    # Build what every VM shares once (nixpkgs' packages), as a fleet's first run would.
    warm = fleet_file(work, lib, "warm", 1)
    start = time.perf_counter()
    subprocess.run([NIXLAYER, "fleet", "build", str(warm), "--root", str(work / "warm"), "-q"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    print(f"setup: shared packages built in {time.perf_counter() - start:.1f} s")
    sizes = [int(s) for s in args.sizes.split(",")]
    if "eval" in only:
        bench_eval(work, lib)
    if "fleet" in only:
        bench_fleet(work, lib, sizes, args.budget)
    if "stats" in only:
        bench_stats(work, scale)
    if "fresh" in only:
        bench_fresh(work, args.budget)
    if "flake" in only:
        bench_flake(work, scale, max(sizes), args.budget)
    if "build" in only:
        bench_build(work, lib, args.runs)
    if "switch" in only:
        bench_switch(work, args.runs)
    if "seed" in only:
        bench_seed(work, args.runs)


if __name__ == "__main__":
    main()
