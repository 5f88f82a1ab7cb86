"""`runner-store seed` from archives built with real Nix."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.helpers import cli, nixlayer_bin, run_nix
from tests.runner_store.adversarial import Image, build_image, make_sentinel
from tests.runner_store.images import (
    build_paths,
    crafted_layer,
    docker_save,
    image_root,
    layers_for,
    oci_layout,
)

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
    out = json.loads(first.stdout)["result"]
    assert out["image_paths"] == len(expected) and sorted(out["copied"]) == sorted(expected)
    assert store_paths(d) == expected
    assert not (d / "nix/store/00000000000000000000000000000000-decoy").exists()  # whited out
    run_nix("store", "verify", "--no-trust", "--all", "--store", f"local?root={d}")
    again = json.loads(seed("--image-archive", str(archive), "--dir", str(d)).stdout)["result"]
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
    assert json.loads(proc.stdout)["result"]["verified"] == len(expected)


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
    out = json.loads(seed("--image-archive", str(v2), "--dir", str(d)).stdout)["result"]
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
    )["result"]
    assert out["store"]["healthy"] is True and out["store"]["valid_paths"] == len(expected)
    assert out["store"]["bytes"] > 8 * 20_000
    # Junk a job left (unregistered, no lock held) is reported; Nix deletes it when needed.
    (d / "nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-leftover").mkdir()
    proc = cli("runner-store", "status", "--config", str(config), "--dir", str(d), "--json")
    out = json.loads(proc.stdout)["result"]
    assert proc.returncode == 0 and out["store"]["unregistered"] == [
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-leftover"
    ]


# --- issue 14: points 8-12 -------------------------------------------------------------


def _in_private_mounts(script: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run a shell script as root in a private mount namespace (tmpfs mounts vanish
    with it)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private tmpfs")
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-euc", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def test_archive_on_tmpfs_and_dir_on_ext4_falls_back_to_a_plain_copy(
    image: tuple[Path, set[str], list[bytes]], tmp_path: Path
) -> None:
    """Point 9: copy_file_range fails with EXDEV across filesystems."""
    _root, expected, layers = image
    archive = docker_save(tmp_path / "image.tar", layers)
    shm, d = tmp_path / "shm", tmp_path / "shared"
    shm.mkdir()
    proc = _in_private_mounts(
        f"mount -t tmpfs tmpfs {shm}; cp {archive} {shm}/image.tar; "
        f"{nixlayer_bin()} runner-store seed --image-archive {shm}/image.tar --dir {d} --json"
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["result"]
    assert "cross-device" in (out["copy_fallback"] or "")
    assert store_paths(d) == expected


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three paths of 3 MB each."""
    if os.environ.get("NIX_CONFIG") is None:
        pytest.skip("needs the offline nix config")
    work = tmp_path_factory.mktemp("big")
    paths = build_paths(work, n=3, size=3_000_000, tag="big3")
    return docker_save(work / "big.tar", layers_for(image_root(work, "root", paths)))


def test_a_write_error_is_reported_with_its_errno_exit_1(big_archive: Path, tmp_path: Path) -> None:
    """Point 9: a failing write is not "not a readable tar archive" (exit 2). Files
    over 1.5 MB cannot be written (RLIMIT_FSIZE: EFBIG); Nix's small db still can."""
    archive = big_archive
    d = tmp_path / "shared"
    proc = subprocess.run(
        [
            *("prlimit", "--fsize=1500000", "--", nixlayer_bin(), "runner-store", "seed"),
            *("--image-archive", str(archive), "--dir", str(d), "-q"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        # Nix re-makes its 8 MB db/reserved file past the limit otherwise (SIGXFSZ).
        env={**os.environ, "NIX_CONFIG": os.environ["NIX_CONFIG"] + "\ngc-reserved-space = 0"},
    )
    assert proc.returncode == 1, proc.stderr
    assert "EFBIG" in proc.stderr and "not a readable tar" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_full_disk_is_reported_before_anything_is_copied(
    big_archive: Path, tmp_path: Path
) -> None:
    archive = big_archive
    d = tmp_path / "small"
    d.mkdir()
    proc = _in_private_mounts(
        f"mount -t tmpfs -o size=4m tmpfs {d}; "
        f"{nixlayer_bin()} runner-store seed --image-archive {archive} --dir {d} -q "
        "|| echo rc=$?; "
        f"ls {d}/nix/store"
    )
    assert "rc=1" in proc.stdout, proc.stderr
    # Ours (ENOSPC), or Nix's own when newer Nix fills the disk making DIR's database.
    full = "ENOSPC" in proc.stderr or "database or disk is full" in proc.stderr
    assert full and "Traceback" not in proc.stderr


@pytest.mark.parametrize("target", ["/", "/etc", "/usr", "/nix", "/nix/store", "/nix/var/x"])
def test_system_directories_are_refused(target: str) -> None:
    """Point 8: `--dir /`, `/etc`, `/usr`, `/nix` were accepted."""
    proc = cli("runner-store", "seed", "--image-archive", "/nonexistent", "--dir", target, "-q")
    assert proc.returncode == 2, proc.stderr
    assert "system directory" in proc.stderr


def test_a_symlink_to_a_system_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "etc-link").symlink_to("/etc")
    proc = cli(
        "runner-store", "seed", "--image-archive", "/nonexistent", "--dir",
        str(tmp_path / "etc-link"), "-q",
    )  # fmt: skip
    assert proc.returncode == 2 and "system directory" in proc.stderr
    assert not os.path.exists("/etc/.nixlayer")


@pytest.fixture(scope="module")
def optimised(tmp_path_factory: pytest.TempPathFactory) -> Image:
    if os.environ.get("NIX_CONFIG") is None:
        pytest.skip("needs the offline nix config")
    sentinel = tmp_path_factory.mktemp("world") / "sentinel"
    make_sentinel(sentinel)
    return build_image(tmp_path_factory.mktemp("optimised"), sentinel)


@pytest.mark.parametrize("gz", [False, True])
def test_an_optimised_store_passes_its_own_hash_check(
    optimised: Image, tmp_path: Path, gz: bool
) -> None:
    """Point 10: hard links were made after hashing, so such images failed."""
    archive = docker_save(tmp_path / "image.tar", [crafted_layer(optimised.root)], gz=gz)
    d = tmp_path / "shared"
    proc = seed("--image-archive", str(archive), "--dir", str(d))
    assert proc.returncode == 0, proc.stderr
    assert store_paths(d) == set(optimised.hashes)
    run_nix("store", "verify", "--no-trust", "--all", "--store", f"local?root={d}")


def test_a_hard_link_into_a_path_dir_already_has_is_copied(tmp_path: Path) -> None:
    """The link's source member lies in a path DIR holds already: its contents are
    copied from the image aside, and linked from there."""
    paths = build_paths(tmp_path, n=11, size=5000, tag="links")
    twins = sorted(  # the same share/data
        os.path.basename(p) for p in paths if p.endswith(("-fixture-0", "-fixture-10"))
    )
    root = image_root(tmp_path, "root", [f"/nix/store/{t}" for t in twins])
    subprocess.run(
        ["nix-store", "--store", f"local?root={root}", "--optimise"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    assert os.stat(f"{root}/nix/store/{twins[1]}/share/data").st_nlink > 1
    d = tmp_path / "shared"
    first = image_root(tmp_path, "first", [f"/nix/store/{twins[0]}"])
    v1 = docker_save(tmp_path / "v1.tar", layers_for(first))
    assert seed("--image-archive", str(v1), "--dir", str(d)).returncode == 0
    v2 = docker_save(tmp_path / "v2.tar", [crafted_layer(root)])
    with tarfile.open(fileobj=io.BytesIO(crafted_layer(root))) as tf:
        link = tf.getmember(f"nix/store/{twins[1]}/share/data")
        assert link.islnk() and link.linkname == f"nix/store/{twins[0]}/share/data"
    proc = seed("--image-archive", str(v2), "--dir", str(d))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"]["copied"] == [f"/nix/store/{twins[1]}"]
    run_nix("store", "verify", "--no-trust", "--all", "--store", f"local?root={d}")


def test_sigterm_mid_seed_removes_the_work_directory(tmp_path: Path) -> None:
    """Point 11: killed seeds leaked DIR/.nixlayer/seed-* work directories."""
    paths = build_paths(tmp_path, n=30, size=3_000_000, tag="term")
    archive = docker_save(tmp_path / "big.tar", layers_for(image_root(tmp_path, "big", paths)))
    d = tmp_path / "shared"
    argv = [nixlayer_bin(), "runner-store", "seed", "--image-archive", str(archive), "--dir"]
    proc = subprocess.Popen([*argv, str(d), "-q"], stderr=subprocess.PIPE, text=True)
    state = d / ".nixlayer"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_dir() and any(e.startswith("seed-") for e in os.listdir(state)):
            break
        time.sleep(0.005)
    assert proc.poll() is None, "seed finished before it could be interrupted"
    proc.terminate()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # 128 + SIGTERM
    assert [e for e in os.listdir(state) if e.startswith("seed-")] == []


def test_kill_9_leaks_nothing_after_the_next_seed(tmp_path: Path) -> None:
    paths = build_paths(tmp_path, n=30, size=3_000_000, tag="nine")
    archive = docker_save(tmp_path / "big.tar", layers_for(image_root(tmp_path, "big", paths)))
    d = tmp_path / "shared"
    argv = [nixlayer_bin(), "runner-store", "seed", "--image-archive", str(archive), "--dir"]
    proc = subprocess.Popen([*argv, str(d), "-q"], start_new_session=True)
    state = d / ".nixlayer"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_dir() and any(e.startswith("seed-") for e in os.listdir(state)):
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [e for e in os.listdir(state) if e.startswith("seed-")] != []
    status_cfg = tmp_path / "config.toml"
    status_cfg.write_text('[[runners]]\n  name = "a"\n  executor = "docker"\n')
    st = cli("runner-store", "status", "--config", str(status_cfg), "--dir", str(d), "--json")
    assert st.returncode == 1
    assert any("seed again" in p for p in json.loads(st.stdout)["result"]["store"]["problems"])
    assert seed("--image-archive", str(archive), "--dir", str(d)).returncode == 0
    assert [e for e in os.listdir(state) if e.startswith("seed-")] == []
    st = cli("runner-store", "status", "--config", str(status_cfg), "--dir", str(d), "--json")
    assert st.returncode == 0, st.stdout


def _copy_runner_config(path: Path, d: Path, image: str) -> Path:
    path.write_text(
        "[[runners]]\n"
        '  name = "copy"\n'
        '  executor = "docker"\n'
        "  [runners.docker]\n"
        f'    image = "{image}"\n'
        f'    volumes = ["{d}/nix/store:/nix/store:rw", "{d}/nix/var/nix/db:/nix/var/nix/db:rw"]\n'
    )
    return path


def test_the_seeded_image_is_recorded_and_status_reports_a_mismatch(
    image: tuple[Path, set[str], list[bytes]], tmp_path: Path
) -> None:
    """Point 12: after v1 was seeded, v2's jobs failed while status said healthy."""
    _root, expected, layers = image
    d = tmp_path / "shared"
    archive = docker_save(tmp_path / "v1.tar", layers)
    assert seed("--image-archive", str(archive), "--dir", str(d)).returncode == 0
    rec = json.loads((d / ".nixlayer/image.json").read_text())
    assert rec["image"]["reference"] == str(archive)
    assert rec["image"]["config_digest"].startswith("sha256:")
    assert rec["image"]["repo_tags"] == ["nixos/nix:test"]
    assert rec["image"]["path_count"] == len(expected) and set(rec["paths"]) == expected
    assert all(h.startswith("sha256-") for h in rec["paths"].values())
    same = _copy_runner_config(tmp_path / "same.toml", d, "nixos/nix:test")
    st = cli("runner-store", "status", "--config", str(same), "--dir", str(d), "--json")
    assert st.returncode == 0, st.stdout
    by_digest = _copy_runner_config(
        tmp_path / "digest.toml", d, rec["image"]["config_digest"].removeprefix("sha256:")
    )
    assert (
        cli("runner-store", "status", "--config", str(by_digest), "--dir", str(d)).returncode == 0
    )
    other = _copy_runner_config(tmp_path / "other.toml", d, "nixos/nix@sha256:" + "0" * 64)
    st = cli("runner-store", "status", "--config", str(other), "--dir", str(d), "--json")
    assert st.returncode == 1
    assert "but DIR was seeded from" in json.loads(st.stdout)["result"]["store"]["problem"]
    human = cli("runner-store", "status", "--config", str(other), "--dir", str(d))
    assert human.returncode == 1 and "UNHEALTHY" in human.stdout


DAMAGED = [
    "[]",
    '"str"',
    '{"image": {"bogus": 1}}',
    '{"installed": [1, 2]}',
    '{"image": {"reference": 5, "repo_tags": "abc", "image_id": 7}}',
    '{"image": {"reference": "abc", "repo_tags": "abc"}}',
    '{"image": {"reference": "x", "path_count": true}}',
    '{"paths": {"/nix/store/x": 1}}',
    "[" * 100_000,
    "{",
]


def test_a_damaged_record_is_one_line_never_a_bug(
    image: tuple[Path, set[str], list[bytes]], tmp_path: Path
) -> None:
    """A tampered DIR/.nixlayer/image.json made seed and status print "internal error
    ... this is a bug" (exit 1), and a wrong-typed one made status healthy: `repo_tags`
    as the string "abc" matched the tag "abc" by substring. Seed refuses with one line
    naming the file (exit 2); status calls the store unhealthy (exit 1)."""
    _root, _expected, layers = image
    d = tmp_path / "shared"
    archive = docker_save(tmp_path / "v1.tar", layers)
    assert seed("--image-archive", str(archive), "--dir", str(d)).returncode == 0
    rec = d / ".nixlayer/image.json"
    config = _copy_runner_config(tmp_path / "c.toml", d, "abc")
    for text in DAMAGED:
        rec.write_text(text)
        again = cli("runner-store", "seed", "--image-archive", str(archive), "--dir", str(d), "-q")
        assert again.returncode == 2, (text[:40], again.stderr)
        assert again.stderr.count("\n") == 1 and f"{rec} is damaged" in again.stderr, again.stderr
        assert "bug" not in again.stderr
        st = cli("runner-store", "status", "--config", str(config), "--dir", str(d), "--json")
        assert st.returncode == 1, (text[:40], st.stdout, st.stderr)
        store = json.loads(st.stdout)["result"]["store"]
        assert store["problem"].startswith(f"{rec} is damaged"), store
        assert store["runner_images"] == [{"runner": "copy", "image": "abc", "matches": False}]
        assert rec.read_text() == text  # reported, never rewritten
    # A symlink planted as the record: damaged too (before: exit 1, and status aborted).
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    rec.unlink()
    rec.symlink_to(outside)
    again = cli("runner-store", "seed", "--image-archive", str(archive), "--dir", str(d), "-q")
    assert again.returncode == 2 and f"{rec} is damaged (a symlink" in again.stderr, again.stderr
    st = cli("runner-store", "status", "--config", str(config), "--dir", str(d), "--json")
    assert st.returncode == 1, st.stderr
    assert json.loads(st.stdout)["result"]["store"]["problem"].startswith(f"{rec} is damaged")
    assert rec.is_symlink() and outside.read_text() == "{}"
