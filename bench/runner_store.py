"""Re-seeding a shared store after 5% of its paths changed, against copying the
whole tree again (`cp -a`, what seed 002 does on every image upgrade).

    python bench/runner_store.py [--paths 100] [--mb 10]

Builds an image of --paths store paths of --mb MB each with real Nix, seeds a
directory from it, then makes a second image with 5% of the paths replaced.
Measured side by side: `nixlayer runner-store seed` of the new image into the
seeded directory, and `cp -a` of the new image's /nix into an empty directory.
Both are timed cold and durable, as an image upgrade on a runner host is: the page
cache is dropped before each (root only; otherwise both run warm) and each ends
with `sync`.

The seed's fixed cost is printed separately: a re-seed of the same image (nothing
to copy: Python, the Nix calls, the layer-header scan, the DIR checks), warm and
cold, median of 3.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import offline_nix_config, run_nix  # noqa: E402
from tests.runner_store.images import build_paths, docker_save, image_root, layers_for  # noqa: E402


def cold() -> bool:
    """Flush dirty pages and drop the page cache, if we may."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(argv: list[str]) -> tuple[float, bool]:
    was_cold = cold()
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - start, was_cold


def timed_warm(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=100)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nixlayer-store-bench-"))
    os.environ["NIX_CONFIG"] = offline_nix_config(work / "registry.json")
    size = args.mb * 1_000_000
    base = build_paths(work, n=args.paths, size=size, tag="v1")
    changed = max(1, args.paths * 5 // 100)
    fresh = build_paths(work, n=changed, size=size, tag="v2")
    v1 = image_root(work, "v1", base)
    v2 = image_root(work, "v2", base[changed:] + fresh)
    a1 = docker_save(work / "v1.tar", layers_for(v1))
    a2 = docker_save(work / "v2.tar", layers_for(v2))
    shared = work / "shared"
    nixlayer = str(REPO / ".venv/bin/nixlayer")
    subprocess.run(
        [nixlayer, "runner-store", "seed", "--image-archive", str(a1), "--dir", str(shared), "-q"],
        check=True,
    )
    target = work / "cp-target"
    t_cp, was_cold = timed(["cp", "-a", str(v2 / "nix"), str(target)])
    t_seed, _ = timed(
        [nixlayer, "runner-store", "seed", "--image-archive", str(a2), "--dir", str(shared), "-q"]
    )
    same = [
        nixlayer, "runner-store", "seed", "--image-archive", str(a2), "--dir", str(shared), "-q"
    ]  # fmt: skip
    fixed_warm = sorted(timed_warm(same) for _ in range(3))[1]
    fixed_cold = sorted(timed(same)[0] for _ in range(3))[1]
    total = args.paths * args.mb
    valid = len(run_nix("path-info", "--all", "--store", f"local?root={shared}").split())
    print(
        f"store of {args.paths} paths x {args.mb} MB ({total} MB); {changed} paths changed (5%); "
        f"{'cold cache' if was_cold else 'WARM cache (not root)'}, sync included"
    )
    print(f"  cp -a of the new tree          {t_cp:7.2f} s")
    print(f"  nixlayer runner-store seed     {t_seed:7.2f} s  (copies {changed} paths, checks all)")
    print(f"  ratio {t_cp / t_seed:.1f}x   ({valid} valid paths in the shared store afterwards)")
    print(
        f"  fixed cost of a seed (same image again, nothing to copy): "
        f"{fixed_cold:.2f} s cold, {fixed_warm:.2f} s warm"
    )


if __name__ == "__main__":
    main()
