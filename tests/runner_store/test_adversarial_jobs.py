"""What copy-mode jobs do to DIR between seeds (issue 14, points 11, 12, 15)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from nixlayer.runner_store.nar import nar_hash_at
from nixlayer.runner_store.store import lock_held
from tests.helpers import cli, run_nix
from tests.runner_store.images import build_paths, docker_save, image_root, layers_for

pytestmark = pytest.mark.nix

SLOW = """
derivation {{
  name = "job-build"; system = "x86_64-linux"; builder = "/bin/sh";
  args = [ "-c" "while [ ! -e {ctl}/go ]; do /bin/sleep 0.05; done; echo built > $out" ];
}}
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    if os.environ.get("NIX_CONFIG") is None:
        pytest.skip("needs the offline nix config")
    work = tmp_path_factory.mktemp("jobs")
    paths = build_paths(work, n=3, size=1000, tag="jobs")
    return docker_save(work / "image.tar", layers_for(image_root(work, "root", paths))), paths


def seeded(archive: tuple[Path, list[str]], tmp_path: Path, *extra: str) -> Path:
    d = tmp_path / "shared"
    proc = cli("runner-store", "seed", "--image-archive", str(archive[0]), "--dir", str(d), *extra)
    assert proc.returncode == 0, proc.stderr
    return d


def status(d: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    config = tmp_path / "config.toml"
    config.write_text('[[runners]]\n  name = "a"\n  executor = "docker"\n')
    proc = cli("runner-store", "status", "--config", str(config), "--dir", str(d), "--json")
    return proc.returncode, json.loads(proc.stdout)["result"]["store"] if proc.stdout else {}


def rewrite_path_and_db(d: Path, path: str) -> None:
    """What a job with the db mounted read-write can do: new content, and a db
    entry that matches it, so that `nix store verify` is happy."""
    target = Path(f"{d}{path}/id")
    os.chmod(target.parent, 0o755)
    os.chmod(target, 0o644)
    target.write_text("evil\n")
    os.chmod(target, 0o444)
    os.chmod(target.parent, 0o555)
    store = f"local?root={d}"
    parent = os.open(target.parent.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        new_hash, new_size = nar_hash_at(parent, os.path.basename(path))
    finally:
        os.close(parent)
    dump = subprocess.run(
        ["nix-store", "--dump-db", path, "--store", store],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    lines = dump.splitlines()
    assert lines[0] == path
    lines[1] = base64.b64decode(new_hash.removeprefix("sha256-")).hex()
    lines[2] = str(new_size)
    subprocess.run(
        ["nix-store", "--load-db", "--store", store],
        input="\n".join(lines) + "\n", text=True, check=True, timeout=60, capture_output=True,
    )  # fmt: skip


def test_a_path_and_db_rewritten_by_a_job_is_caught(
    archive: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Point 12: `nix store verify` passes; the image's own narHash does not."""
    d = seeded(archive, tmp_path)
    victim = archive[1][0]
    rewrite_path_and_db(d, victim)
    run_nix("store", "verify", "--no-trust", "--store", f"local?root={d}", victim)  # passes
    code, store = status(d, tmp_path)
    assert code == 1 and "rewritten by a job" in str(store["problem"])
    for extra in ((), ("--full-verify",)):
        proc = cli(
            "runner-store", "seed", "--image-archive", str(archive[0]), "--dir", str(d), *extra
        )
        assert proc.returncode == 1 and victim in proc.stderr, proc.stderr


def test_status_exit_codes(archive: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Point 15: status exited 0 when unhealthy and for a relative --dir."""
    config = tmp_path / "config.toml"
    config.write_text('[[runners]]\n  name = "a"\n  executor = "docker"\n')
    rel = cli("runner-store", "status", "--config", str(config), "--dir", "relative/dir")
    assert rel.returncode == 2 and "--dir: relative/dir is not an absolute path" in rel.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert status(empty, tmp_path)[0] == 1  # nothing seeded: unhealthy
    d = seeded(archive, tmp_path)
    assert status(d, tmp_path)[0] == 0
    # Nix's own stale lock files (a finished or dead build) are not leftovers.
    (d / "nix/store/5ac2dpv6m5dqwh9flsqq5xxfqixaqqm9-old.lock").write_text("")
    assert status(d, tmp_path)[0] == 0
    # A path nixlayer journalled but never registered: an interrupted seed.
    (d / ".nixlayer/pending.json").write_text('["0000000000000000000000000000000a-x"]')
    code, store = status(d, tmp_path)
    assert code == 1 and "interrupted" in str(store["problem"])


def test_a_reseed_leaves_a_running_build_and_its_lock_alone(
    archive: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Point 11: a re-seed while a job builds deleted its output and its .lock; status
    called them an interrupted seed. A real Nix build in DIR's store holds its lock;
    its output is where an in-place (copy-mode) build writes it."""
    d = seeded(archive, tmp_path)
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    expr = tmp_path / "slow.nix"
    expr.write_text(SLOW.format(ctl=ctl))
    env = {
        **os.environ,
        "NIX_CONFIG": os.environ["NIX_CONFIG"]
        + f"\nextra-sandbox-paths = /bin /lib /lib64 /usr {ctl}",
    }
    build = subprocess.Popen(
        ["nix-build", "--no-out-link", str(expr), "--store", f"local?root={d}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    store_dir = d / "nix/store"
    store_fd = os.open(store_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + 60
        held: list[str] = []
        while time.monotonic() < deadline and not held:
            held = [
                e.removesuffix(".lock")
                for e in os.listdir(store_dir)
                if e.endswith("-job-build.lock") and lock_held(store_fd, e.removesuffix(".lock"))
            ]
            time.sleep(0.05)
        assert held, "the build never took its lock"
        name = held[0]
        (store_dir / name).mkdir()  # the unregistered output of an in-place build
        (store_dir / name / "partial").write_text("half-built")
        code, store = status(d, tmp_path)
        assert code == 0, store
        assert store["building"] == [name] and name not in store["unregistered"]
        again = cli("runner-store", "seed", "--image-archive", str(archive[0]), "--dir", str(d))
        assert again.returncode == 0, again.stderr
        assert (store_dir / name / "partial").exists()
        assert (store_dir / f"{name}.lock").exists() and lock_held(store_fd, name)
    finally:
        (ctl / "go").touch()
        os.close(store_fd)
        out, err = build.communicate(timeout=120)
    assert build.returncode == 0, err
    assert out.strip().endswith("-job-build")
