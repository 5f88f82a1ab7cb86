"""Plan a switch of 5,000 units with a quarter changed, then a plan plus closure diff
of two systems of 2,000 store paths each, side by side with the unit plan alone.

    python bench/plan.py [--units 5000] [--runs 5] [--closure-paths 2000]

Prints the median wall time of `plan_switch` (files read from disk, cold start
excluded) and of the `nixlayer plan --json` command (start-up included), with
units per second. Changed units are spread over the decision table: stop-start,
restart, reload, skip, and socket-activated services.

The closure part adds 2 x 2,000 small store paths (10% version changes, 2% added,
2% removed, 5% size changes) to the local store with `nix-store --add`, makes one
system path referring to each side, and times `closure_diff` (two `nix path-info
--json --recursive` calls and the comparison). Ratios are printed, never asserted.
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
sys.path.insert(0, str(REPO / "src"))

from nixlayer.nix.runner import Nix  # noqa: E402
from nixlayer.planner.closure_diff import closure_diff  # noqa: E402
from nixlayer.planner.plan import plan_switch  # noqa: E402

SYSTEM_EXPR = """
let paths = builtins.fromJSON (builtins.readFile %s);
in derivation {
  name = "bench-system-%s"; system = builtins.currentSystem; builder = "/bin/sh";
  refs = map builtins.storePath paths; passAsFile = [ "refs" ];
  args = [ "-c" "/bin/cat $refsPath > $out" ];
}
"""


def store_side(root: Path, side: str, count: int) -> list[str]:
    """`count` files named like packages, added to the store in one nix-store call."""
    d = root / f"pkgs-{side}"
    d.mkdir()
    for i in range(count):
        if side == "b" and i % 50 == 1:
            continue  # removed
        version = "2.0" if side == "b" and i % 10 == 0 else "1.0"
        body = "x" * (200 + (100 if side == "b" and i % 20 == 5 else 0) + i % 7)
        (d / f"pkg{i:05d}-{version}").write_text(body)
    if side == "b":
        for i in range(count // 50):
            (d / f"newpkg{i:04d}-0.1").write_text("new")
    names = sorted(str(p) for p in d.iterdir())
    out = subprocess.run(
        ["nix-store", "--add", *names], check=True, capture_output=True, text=True
    ).stdout
    return out.split()


def make_system(root: Path, side: str, paths: list[str]) -> str:
    listing = root / f"paths-{side}.json"
    listing.write_text(json.dumps(paths))
    expr = SYSTEM_EXPR % (listing, side)
    argv = ["nix", "build", "--impure", "--no-link", "--json", "--expr", expr]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)[0]["outputs"]["out"])


def closure_bench(root: Path, count: int, runs: int) -> None:
    os.environ.setdefault(
        "NIX_CONFIG", "experimental-features = nix-command flakes\nsubstituters ="
    )
    old = make_system(root, "a", store_side(root, "a", count))
    new = make_system(root, "b", store_side(root, "b", count))
    units = build(root / "closure-units", count)
    tree = root / "closure-units"
    nix = Nix()
    alone, diff_only, both = [], [], []
    diff = None
    for _ in range(runs):
        start = time.perf_counter()
        plan_switch(tree / "new", from_root=tree / "old", units_file=units, runtime_dir=tree)
        alone.append(time.perf_counter() - start)
        start = time.perf_counter()
        diff = closure_diff(old, new, nix)
        diff_only.append(time.perf_counter() - start)
        start = time.perf_counter()
        plan_switch(tree / "new", from_root=tree / "old", units_file=units, runtime_dir=tree)
        closure_diff(old, new, nix)
        both.append(time.perf_counter() - start)
    assert diff is not None
    t_alone, t_diff, t_both = (statistics.median(t) for t in (alone, diff_only, both))
    print(
        f"plan + closure diff, {diff.old_paths:,} and {diff.new_paths:,} store paths, "
        f"{count:,} units, median of {runs}:"
    )
    print(f"  unit plan alone          {t_alone:>8.3f} s  1.00x")
    print(f"  closure diff alone       {t_diff:>8.3f} s  {t_diff / t_alone:>5.2f}x")
    print(f"  plan + closure diff      {t_both:>8.3f} s  {t_both / t_alone:>5.2f}x")
    print(
        f"  diff: {len(diff.added)} added, {len(diff.removed)} removed, "
        f"{len(diff.version)} version changes, {len(diff.size)} size changes"
    )


def service(i: int, variant: str) -> str:
    flags = {
        "a": "",
        "stopfalse": "X-StopIfChanged=false\n",
        "skip": "X-RestartIfChanged=false\n",
        "reload": "X-ReloadIfChanged=true\n",
    }[variant.split(":", maxsplit=1)[0]]
    return (
        f"[Unit]\nDescription=unit {i}\nAfter=network.target\nX-Restart-Triggers=/nix/store/"
        f'{i:032d}-trig\n\n[Service]\nEnvironment="PATH=/nix/store/p/bin"\n'
        f'Environment="LOCALE_ARCHIVE=/nix/store/l/lib/locale"\n{flags}'
        f"ExecStart=/nix/store/{i:032d}-svc-{variant}/bin/svc --flag {i}\nRestart=always\n"
        "Type=simple\n\n[Install]\nWantedBy=multi-user.target\n"
    )


def build(root: Path, count: int) -> Path:
    old, new = root / "old/etc/systemd/system", root / "new/etc/systemd/system"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    snapshot = []
    kinds = ["a", "stopfalse", "skip", "reload"]
    for i in range(count):
        kind = kinds[i % 4]
        name = f"unit-{i:05d}.service"
        (old / name).write_text(service(i, kind))
        changed = (i // 4) % 4 == 0  # a quarter, spread over every kind
        (new / name).write_text(service(i, kind + (":v2" if changed else "")))
        snapshot.append({"unit": name, "load": "loaded", "active": "active", "sub": "running"})
        if i % 50 == 0:
            sock = f"unit-{i:05d}.socket"
            for d in (old, new):
                (d / sock).write_text("[Socket]\nListenStream=/run/s.sock\n")
            snapshot.append(
                {"unit": sock, "load": "loaded", "active": "active", "sub": "listening"}
            )
    units = root / "units.json"
    units.write_text(json.dumps(snapshot))
    return units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--closure-paths", type=int, default=2000, help="0: skip")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nixlayer-plan-bench-"))
    units = build(root, args.units)
    run = root / "run"
    api, cmd = [], []
    plan = None
    for _ in range(args.runs):
        start = time.perf_counter()
        plan = plan_switch(root / "new", from_root=root / "old", units_file=units, runtime_dir=run)
        api.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(
            [
                str(REPO / ".venv/bin/nixlayer"),
                "plan",
                "--from",
                str(root / "old"),
                "--to",
                str(root / "new"),
                "--units",
                str(units),
                "--runtime-dir",
                str(run),
                "--json",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cmd.append(time.perf_counter() - start)
    assert plan is not None
    changed = len(set(plan.stop_all) | set(plan.restart) | set(plan.reload) | set(plan.skip))
    total = args.units + args.units // 50
    print(f"plan of {total} units ({changed} changed), median of {args.runs}:")
    for label, times in (("plan_switch()", api), ("nixlayer plan --json", cmd)):
        t = statistics.median(times)
        print(f"  {label:<22}{t:>8.3f} s  {total / t:>10,.0f} units/s")
    print(
        f"  decisions: stop {len(plan.stop_all)}, start {len(plan.start_all)}, restart "
        f"{len(plan.restart)}, reload {len(plan.reload)}, skip {len(plan.skip)}"
    )
    if args.closure_paths:
        closure_bench(root, args.closure_paths, args.runs)


if __name__ == "__main__":
    main()
