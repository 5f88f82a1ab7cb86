"""`runner-store seed` from archives built with real Nix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import cli, nixlayer_bin, run_nix
from tests.runner_store.images import build_paths, docker_save, image_root, layers_for, oci_layout

pytestmark = pytest.mark.nix


def store_paths(root: Path) -> set[str]:
    return set(run_nix("path-info", "--all", "--store", f"local?root={root}").split())


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str], list[bytes]]:
    if os.environ.get("NIX_CONFIG") is None:
        pytest.skip("needs the offline nix config")
    work = tmp_path_factory.mktemp("image")
    paths = build_paths(work, n=8, size=20_000, tag="v1")
    root = image_root(work, "img", paths)
    expected = store_paths(root)
    layers = layers_for(root, split=3, whiteout="00000000000000000000000000000000-decoy")
    return root, expected, layers


def seed(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("runner-store", "seed", *args, "--json")


def test_docker_save_seed_is_complete_and_incremental(
    image: tuple[Path, set[str], list[bytes]], tmp_path: Path
) -> None:
    _root, expected, layers = image
    archive = docker_save(tmp_path / "image.tar", layers)
    d = tmp_path / "shared"
    first = seed("--image-archive", str(archive), "--dir", str(d))
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["image_paths"] == len(expected) and sorted(out["copied"]) == sorted(expected)
    assert store_paths(d) == expected
    assert not (d / "nix/store/00000000000000000000000000000000-decoy").exists()  # whited out
    run_nix("store", "verify", "--no-trust", "--all", "--store", f"local?root={d}")
    again = json.loads(seed("--image-archive", str(archive), "--dir", str(d)).stdout)
    assert again["copied"] == [] and again["verified"] == 0


@pytest.mark.parametrize("as_tar", [False, True])
def test_oci_seed(image: tuple[Path, set[str], list[bytes]], tmp_path: Path, as_tar: bool) -> None:
    _root, expected, layers = image
    target = tmp_path / ("oci.tar" if as_tar else "oci")
    if not as_tar:
        target.mkdir()
    oci_layout(target, layers, as_tar=as_tar)
    d = tmp_path / "shared"
    proc = seed("--image-archive", str(target), "--dir", str(d), "--full-verify")
    assert proc.returncode == 0, proc.stderr
    assert store_paths(d) == expected
    assert json.loads(proc.stdout)["verified"] == len(expected)


def test_a_new_image_copies_only_what_changed(
    image: tuple[Path, set[str], list[bytes]], tmp_path: Path
) -> None:
    _root, expected, layers = image
    d = tmp_path / "shared"
    assert (
        seed(
            "--image-archive", str(docker_save(tmp_path / "v1.tar", layers)), "--dir", str(d)
        ).returncode
        == 0
    )
    extra = build_paths(tmp_path, n=2, size=1000, tag="v2")
    root2 = image_root(tmp_path, "img2", [*sorted(expected), *extra])
    v2 = docker_save(tmp_path / "v2.tar", layers_for(root2))
    out = json.loads(seed("--image-archive", str(v2), "--dir", str(d)).stdout)
    assert sorted(out["copied"]) == sorted(extra)
    assert store_paths(d) == expected | set(extra)


def test_kill_9_mid_seed_then_seed_again(tmp_path: Path) -> None:
    paths = build_paths(tmp_path, n=40, size=3_000_000, tag="big")
    root = image_root(tmp_path, "big", paths)
    archive = docker_save(tmp_path / "big.tar", layers_for(root))
    d = tmp_path / "shared"
    proc = subprocess.Popen(
        [
            nixlayer_bin(),
            "runner-store",
            "seed",
            "--image-archive",
            str(archive),
            "--dir",
            str(d),
            "-q",
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    store = d / "nix/store"
    # Kill once the copy into DIR has begun (some paths there, not all).
    while time.monotonic() < deadline and proc.poll() is None:
        if store.is_dir() and len(os.listdir(store)) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "seed finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = store_paths(d) if (d / "nix/var/nix/db/db.sqlite").exists() else set()
    assert partial < store_paths(root)  # interrupted part-way
    for p in partial:  # whatever is registered is complete
        assert (Path(str(d) + p)).exists()
    again = seed("--image-archive", str(archive), "--dir", str(d))
    assert again.returncode == 0, again.stderr
    assert store_paths(d) == store_paths(root)
    run_nix("store", "verify", "--no-trust", "--all", "--store", f"local?root={d}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dir", "relative/dir"], "--dir: relative/dir is not an absolute path"),
        (["--dir", "/tmp/with space"], "use a plain path"),
        (["--dir", "/nix/store/x"], "is inside /nix, a system directory"),
        (["--dir", "FILE"], "exists and is not a directory"),
        (["--dir", "OK", "--image-archive-missing"], "no such file"),
        (["--dir", "OK", "--not-an-archive"], "not a readable tar archive"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    archive = str(tmp_path / "missing.tar")
    if "--not-an-archive" in args:
        archive = str(f)
    argv = [
        a.replace("FILE", str(f)).replace("OK", str(tmp_path / "ok"))
        for a in args
        if not a.startswith("--image-archive-") and a != "--not-an-archive"
    ]
    proc = cli("runner-store", "seed", "--image-archive", archive, *argv, "-q")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1


def test_status_of_a_seeded_store(
    image: tuple[Path, set[str], list[bytes]], tmp_path: Path
) -> None:
    _root, expected, layers = image
    d = tmp_path / "shared"
    assert (
        seed(
            "--image-archive", str(docker_save(tmp_path / "i.tar", layers)), "--dir", str(d)
        ).returncode
        == 0
    )
    config = tmp_path / "config.toml"
    config.write_text('[[runners]]\n  name = "a"\n  executor = "docker"\n')
    out = json.loads(
        cli("runner-store", "status", "--config", str(config), "--dir", str(d), "--json").stdout
    )
    assert out["store"]["healthy"] is True and out["store"]["valid_paths"] == len(expected)
    assert out["store"]["bytes"] > 8 * 20_000
    (d / "nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-leftover").mkdir()
    out = json.loads(
        cli("runner-store", "status", "--config", str(config), "--dir", str(d), "--json").stdout
    )
    assert out["store"]["healthy"] is False and "unregistered" in out["store"]["problem"]
