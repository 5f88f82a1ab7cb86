"""Plan a switch of 5,000 units with a quarter changed.

    python bench/plan.py [--units 5000] [--runs 5]

Prints the median wall time of `plan_switch` (files read from disk, cold start
excluded) and of the `nixlayer plan --json` command (start-up included), with
units per second. Changed units are spread over the decision table: stop-start,
restart, reload, skip, and socket-activated services.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nixlayer.planner.plan import plan_switch  # noqa: E402


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


if __name__ == "__main__":
    main()
