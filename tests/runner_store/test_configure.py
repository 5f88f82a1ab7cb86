"""`runner-store configure` and `status` on real config.toml files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import cli, json_result

CONFIGS = Path(__file__).parent / "configs"
DIGEST = "nixos/nix@sha256:" + "a" * 64
CASES = [
    ("multi.toml", ["--mode", "daemon"], "multi.daemon.expected.toml"),
    (
        "multi.toml",
        ["--mode", "copy", "--dir", "/srv/nix", "--runner", "docker-a", "--image", DIGEST],
        "multi.copy.expected.toml",
    ),
    ("seed002.toml", ["--mode", "daemon"], "seed002.daemon.expected.toml"),
]


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "config.toml"
    shutil.copyfile(CONFIGS / name, target)
    return target


@pytest.mark.parametrize(("source", "args", "expected"), CASES, ids=[c[2] for c in CASES])
def test_exact_output_and_idempotent(
    tmp_path: Path, source: str, args: list[str], expected: str
) -> None:
    config = _copy(tmp_path, source)
    check = cli("runner-store", "configure", "--config", str(config), *args, "--check")
    assert check.returncode == 1 and check.stdout.startswith("---")
    assert config.read_bytes() == (CONFIGS / source).read_bytes()  # --check writes nothing
    first = cli("runner-store", "configure", "--config", str(config), *args)
    assert first.returncode == 0, first.stderr
    assert config.read_text() == (CONFIGS / expected).read_text()
    assert (tmp_path / "config.toml.nixlayer.bak").read_bytes() == (CONFIGS / source).read_bytes()
    again = cli("runner-store", "configure", "--config", str(config), *args)
    assert again.returncode == 0 and "nothing to change" in again.stdout
    assert config.read_text() == (CONFIGS / expected).read_text()
    assert (
        cli("runner-store", "configure", "--config", str(config), *args, "--check").returncode == 0
    )


def test_copy_mode_prints_its_risks(tmp_path: Path) -> None:
    config = _copy(tmp_path, "seed002.toml")
    proc = cli(
        "runner-store",
        "configure",
        "--config",
        str(config),
        "--mode",
        "copy",
        "--dir",
        "/srv/nix-backup",
    )
    assert proc.returncode == 0, proc.stderr
    assert "garbage collection" in proc.stderr and "SQLite" in proc.stderr
    assert "nothing to change" in proc.stdout  # seed 002's layout already


def test_switching_modes_replaces_the_mounts(tmp_path: Path) -> None:
    config = _copy(tmp_path, "multi.toml")
    cli("runner-store", "configure", "--config", str(config), "--mode", "daemon")
    proc = cli(
        "runner-store",
        "configure",
        "--config",
        str(config),
        "--mode",
        "copy",
        "--dir",
        "/srv/nix",
        "--runner",
        "docker-a",
        "--image",
        DIGEST,
    )
    assert proc.returncode == 0, proc.stderr
    text = config.read_text()
    assert (
        "/srv/nix/nix/store:/nix/store:rw" in text and "/nix/store:/nix/store:ro" in text
    )  # c keeps daemon
    docker_a = text.split('name = "shell-b"')[0]
    assert "daemon-socket" not in docker_a and "NIX_REMOTE=daemon" not in docker_a


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("concurrent = [\n", ["--mode", "daemon"], "--config: "),
        (None, ["--mode", "daemon", "--runner", "nope"], "no runner named 'nope'"),
        (
            None,
            ["--mode", "daemon", "--runner", "shell-b"],
            "uses the 'shell' executor, not docker",
        ),
        (
            None,
            ["--mode", "copy", "--dir", "/srv/nix", "--image", "nixos/nix:latest"],
            "has no @sha256: digest",
        ),
        (
            None,
            ["--mode", "copy", "--dir", "/srv/nix"],
            "copy mode needs an image pinned by digest",
        ),
        (None, ["--mode", "copy"], "copy mode needs --dir"),
        (None, ["--mode", "daemon", "--dir", "rel"], "not an absolute path"),
    ],
)
def test_bad_input_exit_2_file_untouched(
    tmp_path: Path, content: str | None, args: list[str], message: str
) -> None:
    config = _copy(tmp_path, "multi.toml")
    if content is not None:
        config.write_text(content)
    before = config.read_bytes()
    proc = cli("runner-store", "configure", "--config", str(config), *args, "-q")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1
    assert config.read_bytes() == before
    assert not (tmp_path / "config.toml.nixlayer.bak").exists()


def test_status(tmp_path: Path) -> None:
    config = _copy(tmp_path, "multi.toml")
    cli(
        "runner-store",
        "configure",
        "--config",
        str(config),
        "--mode",
        "copy",
        "--dir",
        "/srv/nix",
        "--runner",
        "docker-a",
        "--image",
        DIGEST,
    )
    cli(
        "runner-store",
        "configure",
        "--config",
        str(config),
        "--mode",
        "daemon",
        "--runner",
        "autoscaler-c",
    )
    out = json_result(cli("runner-store", "status", "--config", str(config), "--json"))
    modes = {r["name"]: (r["mode"], r["image"]) for r in out["runners"]}
    assert modes == {
        "docker-a": ("copy", DIGEST),
        "shell-b": ("none", None),
        "autoscaler-c": ("daemon", "alpine:3.20"),
    }
    human = cli("runner-store", "status", "--config", str(config), "--dir", str(tmp_path / "empty"))
    assert "UNHEALTHY: no database" in human.stdout
