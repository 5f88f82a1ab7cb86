"""Measure nixlayer's closure flow against the raw nix commands it wraps.

    python bench/closure.py [--runs 15] [--fleet 1,10,50]

(a) `nixlayer build` against `nix build` of the same locked config, side by side in
    one run (alternating, median of --runs each), start-up included; once with
    Nix's evaluation cache (a no-op rebuild) and once with `eval-cache = false`
    (evaluation included, as after every render).
    A third row gives the library a synthetic ~1 s evaluation (real nixos-flake
    closures evaluate for seconds) to show the same constant overhead at scale.
(b) seconds per VM for render+lock+build (`nixlayer run`) of 1, 10 and 50 specs.

Runs offline on the stand-in library and nixpkgs from tests/fixtures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import make_stand_in, offline_nix_config, ssh_key  # noqa: E402


def nixlayer() -> str:
    venv = REPO / ".venv" / "bin" / "nixlayer"
    return str(venv) if venv.exists() else "nixlayer"


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def side_by_side(raw: list[str], ours: list[str], runs: int) -> tuple[float, float]:
    timed(raw), timed(ours)  # warm both
    a, b = [], []
    for _ in range(runs):
        a.append(timed(raw))
        b.append(timed(ours))
    return statistics.median(a), statistics.median(b)


def write_spec(work: Path, library: Path, name: str) -> Path:
    spec = {
        "vm_name": name,
        "library": str(library),
        "profiles": ["devel", "build-tools"],
        "test_suites": ["fstests", "ltp"],
        "ssh_keys": [ssh_key(name)],
    }
    path = work / "specs" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--fleet", default="1,10,50")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nixlayer-bench-"))
    os.environ["NIX_CONFIG"] = offline_nix_config(work / "registry.json")
    stand_in = make_stand_in(work)
    root = work / "vms"
    spec = write_spec(work, stand_in.library, "bench")
    subprocess.run(
        [nixlayer(), "run", str(spec), "--root", str(root), "-q"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cdir = root / "bench"
    installable = f"path:{cdir}#packages.x86_64-linux.toplevel"

    version = subprocess.check_output(["nix", "--version"], text=True).strip()
    print(f"nixlayer closure bench ({version}, {os.cpu_count()} cores, median of {args.runs})")
    print("\n(a) build of a locked config: nixlayer build vs nix build")
    print(f"{'case':<34}{'nix build':>11}{'nixlayer':>11}{'ratio':>8}{'overhead':>11}")
    for label, opts in (
        ("warm eval cache (no-op rebuild)", []),
        ("eval-cache = false (evaluates)", ["--option", "eval-cache", "false"]),
    ):
        raw = ["nix", "build", installable, "--json", "--out-link", str(work / "raw-result"), *opts]
        ours = [nixlayer(), "build", str(cdir), "--system", "x86_64-linux", "--json", "-q", *opts]
        t_raw, t_ours = side_by_side(raw, ours, args.runs)
        print(
            f"{label:<34}{t_raw:>10.3f}s{t_ours:>10.3f}s{t_ours / t_raw:>7.2f}x"
            f"{(t_ours - t_raw) * 1000:>9.0f}ms"
        )

    heavy = work / "heavy"
    heavy.mkdir()
    heavy_lib = make_stand_in(heavy).library
    devel = heavy_lib / "modules/profiles/devel.nix"
    devel.write_text(
        "{ pkgs, ... }: { environment.systemPackages = builtins.seq (builtins.foldl' builtins.add 0"
        " (builtins.genList (x: x) 6000000)) [ pkgs.gdb ]; }\n"
    )
    subprocess.run(
        [
            "nix",
            "flake",
            "lock",
            f"path:{heavy_lib}",
            "--override-input",
            "nixpkgs",
            f"path:{heavy / 'nixpkgs'}",
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    hspec = write_spec(heavy, heavy_lib, "heavy")
    subprocess.run(
        [nixlayer(), "run", str(hspec), "--root", str(heavy / "vms"), "-q"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    hdir = heavy / "vms" / "heavy"
    opts = ["--option", "eval-cache", "false"]
    raw = [
        "nix",
        "build",
        f"path:{hdir}#packages.x86_64-linux.toplevel",
        "--json",
        "--out-link",
        str(heavy / "raw-result"),
        *opts,
    ]
    ours = [nixlayer(), "build", str(hdir), "--system", "x86_64-linux", "--json", "-q", *opts]
    t_raw, t_ours = side_by_side(raw, ours, max(3, args.runs // 3))
    print(
        f"{'synthetic ~1 s evaluation':<34}{t_raw:>10.3f}s{t_ours:>10.3f}s"
        f"{t_ours / t_raw:>7.2f}x{(t_ours - t_raw) * 1000:>9.0f}ms"
    )

    print("\n(b) render+lock+build (`nixlayer run`), one VM after another")
    print(f"{'VMs':>5}{'total':>10}{'per VM':>10}")
    for count in (int(n) for n in args.fleet.split(",")):
        fleet_root = work / f"fleet-{count}"
        specs = [write_spec(work, stand_in.library, f"vm-{count}-{i}") for i in range(count)]
        start = time.perf_counter()
        for s in specs:
            subprocess.run(
                [nixlayer(), "run", str(s), "--root", str(fleet_root), "-q"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        total = time.perf_counter() - start
        print(f"{count:>5}{total:>9.2f}s{total / count:>9.3f}s")
    print(f"\n(work dir: {work})")


if __name__ == "__main__":
    main()
