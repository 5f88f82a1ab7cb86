"""Overhead of `nixlayer switch --action dry-activate` over the plain build.

    python bench/switch.py [--runs 9]

Both sides build the same job layer over the same base (warm: already built),
alternating, median of --runs. nixlayer also checks the job flake, picks the
configuration, plans the switch, checks the guard and runs the (stand-in)
switch-to-configuration dry-activate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import offline_nix_config  # noqa: E402
from tests.layer.conftest import make_layered  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nixlayer-switch-bench-"))
    os.environ["NIX_CONFIG"] = offline_nix_config(work / "registry.json")
    lay = make_layered(work)
    env = {**os.environ, **lay.env}
    plain = [
        "nix",
        "build",
        "--json",
        "--no-link",
        "--no-write-lock-file",
        f"path:{lay.job}#nixosConfigurations.runner.config.system.build.toplevel",
        "--override-input",
        "base",
        f"path:{lay.base}",
    ]
    ours = [str(REPO / ".venv/bin/nixlayer"), *lay.args("--action", "dry-activate", "--json", "-q")]
    timed(plain, env), timed(ours, env)
    a, b = [], []
    for _ in range(args.runs):
        a.append(timed(plain, env))
        b.append(timed(ours, env))
    ta, tb = statistics.median(a), statistics.median(b)
    version = subprocess.check_output(["nix", "--version"], text=True).strip()
    print(f"switch --action dry-activate vs nix build ({version}, median of {args.runs})")
    print(f"  nix build (same layer, warm)        {ta:.3f} s")
    print(f"  nixlayer switch --action dry-activate {tb:.3f} s")
    print(f"  ratio {tb / ta:.2f}x, overhead {(tb - ta) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
