"""Wall time of `nixlayer fleet build` for 1, 10 and 50 VMs, --jobs 1 and 2.

    python bench/fleet.py [--sizes 1,10,50]

Every VM is distinct (its own host name, so its own toplevel). Prints the wall
time, seconds per VM, and the marginal cost of each VM beyond the first
((T(n) - T(1)) / (n - 1)), which falls as the fleet grows because the library
is resolved and pinned once, and nixlayer and Nix start-up are paid once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import make_stand_in, offline_nix_config, ssh_key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nixlayer-fleet-bench-"))
    os.environ["NIX_CONFIG"] = offline_nix_config(work / "registry.json")
    lib = make_stand_in(work).library
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"fleet build, {os.cpu_count()} cores, "
        f"{subprocess.check_output(['nix', '--version'], text=True).strip()}"
    )
    print(f"{'VMs':>4} {'jobs':>4} {'wall':>9} {'per VM':>9} {'per extra VM':>13}")
    for jobs in (1, 2):
        first = None
        for n in sizes:
            fleet = work / f"fleet-{jobs}-{n}.json"
            fleet.write_text(
                json.dumps(
                    {
                        "defaults": {
                            "library": str(lib),
                            "profiles": ["devel", "build-tools"],
                            "test_suites": ["fstests", "ltp"],
                        },
                        "vms": [
                            {"vm_name": f"j{jobs}-n{n}-vm{i}", "ssh_keys": [ssh_key(str(i))]}
                            for i in range(n)
                        ],
                    }
                )
            )
            start = time.perf_counter()
            subprocess.run(
                [
                    str(REPO / ".venv/bin/nixlayer"),
                    "fleet",
                    "build",
                    str(fleet),
                    "--root",
                    str(work / f"root-{jobs}-{n}"),
                    "--jobs",
                    str(jobs),
                    "--json",
                    "-q",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - start
            if n == 1:
                first = wall
            extra = (
                f"{(wall - first) / (n - 1):>12.3f}s"
                if first is not None and n > 1
                else f"{'':>13}"
            )
            print(f"{n:>4} {jobs:>4} {wall:>8.2f}s {wall / n:>8.3f}s {extra}")


if __name__ == "__main__":
    main()
