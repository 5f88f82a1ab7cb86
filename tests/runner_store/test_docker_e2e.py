"""End to end on a real Docker engine: job containers created exactly as the
config.toml that `configure` wrote says (parsed, never re-typed), running a
nixos/nix-like image, against a store seeded from a real `docker save` (copy
mode) or a private host nix-daemon (daemon mode)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from nixlayer.runner_store.daemon import daemon_info
from nixlayer.runner_store.jobimage import import_image
from tests.helpers import json_result, nixlayer_bin
from tests.runner_store import docker_engine, host_daemon
from tests.runner_store.docker_engine import DockerEngine
from tests.runner_store.host_daemon import HostDaemon

pytestmark = [pytest.mark.e2e, pytest.mark.nix]
SOCKET_GID = 4321  # the daemon socket directory's group, as Debian's nix-users


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    with docker_engine.running(tmp_path_factory.mktemp("docker")) as e:
        yield e


@pytest.fixture(scope="module")
def images(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("images")
    return {tag: docker_engine.build_image(engine, work / tag, tag) for tag in ("v1", "v2")}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostDaemon]:
    with host_daemon.running(tmp_path_factory.mktemp("hostd")) as d:
        # Like Debian (0770 root:nix-users): non-root jobs need the directory's group.
        os.chown(d.socket.parent, 0, SOCKET_GID)
        os.chmod(d.socket.parent, 0o750)
        yield d


def nixlayer(
    engine: DockerEngine, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nixlayer_bin(), "runner-store", *args],
        capture_output=True,
        text=True,
        env=engine.env(),
        timeout=timeout,
        check=False,
    )


def runners(config: Path) -> dict[str, Any]:
    doc = tomlkit.parse(config.read_text()).unwrap()
    return {r["name"]: r for r in doc["runners"]}


def config_file(tmp_path: Path, *runner_sections: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text("concurrent = 2\n" + "".join(runner_sections))
    os.chmod(config, 0o600)
    return config


def section(name: str, docker_extra: str = "") -> str:
    return (
        f'\n[[runners]]\n  name = "{name}"\n  url = "https://gitlab.example.com/"\n'
        f'  token = "glrt-{name}"\n  executor = "docker"\n  [runners.docker]\n'
        f'    image = "alpine:3.20"\n    privileged = false\n{docker_extra}'
    )


def derivation(name: str, script: str) -> str:
    """A Nix expression for a one-line build (quoted for a shell's single quotes)."""
    return (
        f'derivation {{ name = "{name}"; system = "x86_64-linux"; builder = "/bin/sh"; '
        f'args = [ "-c" "{script}" ]; }}'
    )


def path_valid(store_root: Path, path: str) -> bool:
    proc = subprocess.run(
        ["nix-store", "--store", f"local?root={store_root}", "--check-validity", path],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return proc.returncode == 0


# --- (a) copy mode -------------------------------------------------------------------


def test_copy_mode_seed_build_reseed_and_mismatch(
    engine: DockerEngine, images: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "shared"
    seeded = nixlayer(engine, "seed", "--image", "nixos-like:v1", "--dir", str(store), "--json")
    assert seeded.returncode == 0, seeded.stderr
    first = json_result(seeded)
    assert len(first["copied"]) == first["image_paths"] >= 4

    config = config_file(tmp_path, section("copy"))
    proc = nixlayer(
        engine, "configure", "--config", str(config), "--mode", "copy", "--dir", str(store),
        "--image", images["v1"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runner = runners(config)["copy"]
    assert runner["docker"]["image"] == images["v1"]

    expr = derivation("copy-job", "echo built-in-copy-mode > $out")
    job = docker_engine.run_job(engine, runner, f"nix-build --no-out-link -E '{expr}'")
    assert job.returncode == 0, job.stderr.decode()
    out = job.stdout.decode().strip().splitlines()[-1]
    assert (Path(str(store) + out)).read_text() == "built-in-copy-mode\n"
    assert path_valid(store, out)

    # A second image version: only what it adds is copied.
    again = nixlayer(engine, "seed", "--image", "nixos-like:v2", "--dir", str(store), "--json")
    assert again.returncode == 0, again.stderr
    second = json_result(again)
    names = sorted(p.split("-", 1)[1] for p in second["copied"])
    assert names == ["image-extra-v2", "profile-v2"], names
    assert path_valid(store, out)  # the job's output survived the re-seed

    # The runner still runs v1 over a store now seeded from v2 (contract: seed records
    # the image in DIR/.nixlayer/image.json; status exits 1 on a mismatch).
    stale = nixlayer(engine, "status", "--config", str(config), "--dir", str(store))
    assert stale.returncode == 1, stale.stdout + stale.stderr
    proc = nixlayer(
        engine, "configure", "--config", str(config), "--mode", "copy", "--dir", str(store),
        "--image", images["v2"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    fresh = nixlayer(engine, "status", "--config", str(config), "--dir", str(store))
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr


# --- (b) daemon mode -----------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon_config(
    engine: DockerEngine,
    images: dict[str, str],
    daemon: HostDaemon,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    tmp = tmp_path_factory.mktemp("daemon-config")
    config = config_file(tmp, section("nix-root"), section("nix-user", '    user = "1000:1000"\n'))
    # Without the image's store paths on the host, a nixos/nix image has no /bin/sh.
    proc = nixlayer(
        engine, "configure", "--config", str(config), "--mode", "daemon", "--dir", str(daemon.root)
    )
    assert proc.returncode == 0, proc.stderr
    no_image = dict(runners(config)["nix-root"])
    no_image["docker"] = {**no_image["docker"], "image": "nixos-like:v1"}
    broken = docker_engine.run_job(engine, no_image, "true")
    assert broken.returncode != 0
    assert "no such file or directory" in broken.stderr.decode().lower()

    proc = nixlayer(
        engine, "configure", "--config", str(config), "--mode", "daemon", "--dir",
        str(daemon.root), "--image", "nixos-like:v1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return config


def test_daemon_mode_job_builds_sandboxed_through_the_host_daemon(
    engine: DockerEngine, daemon: HostDaemon, daemon_config: Path
) -> None:
    runner = runners(daemon_config)["nix-root"]
    assert runner["docker"]["image"] == "nixos-like:v1"
    assert not any("/nix/var/nix/db" in v for v in runner["docker"]["volumes"])
    marker = Path("/tmp") / f"nixlayer-host-only-{uuid.uuid4().hex}"
    marker.write_text("host")
    try:
        expr = derivation(
            f"daemon-job-{uuid.uuid4().hex[:8]}",
            f"if [ -e {marker} ]; then echo unsandboxed > $out; else echo sandboxed > $out; fi",
        )
        job = docker_engine.run_job(engine, runner, f"nix-build --no-out-link -E '{expr}'")
    finally:
        marker.unlink()
    assert job.returncode == 0, job.stderr.decode()
    out = job.stdout.decode().strip().splitlines()[-1]
    assert path_valid(daemon.root, out)  # built by, and registered in, the host daemon
    assert Path(str(daemon.root) + out).read_text() == "sandboxed\n"


# A job forges content for another project's (input-addressed) output path in a
# binary cache of its own, then offers it to the daemon two ways; and asks the
# daemon to run its own program as post-build-hook.
POISON = """
set -u
VICTIM=$(nix-instantiate --eval -E '(VICTIM_EXPR).outPath' | tr -d '"')
mkdir -p /tmp/evil /tmp/cache/nar && echo poisoned > /tmp/evil/bin
printf 'StoreDir: /nix/store\\n' > /tmp/cache/nix-cache-info
nix-store --dump /tmp/evil > /tmp/cache/nar/victim.nar
HASHPART=${VICTIM#/nix/store/}; HASHPART=${HASHPART%%-*}
{ echo "StorePath: $VICTIM"; echo "URL: nar/victim.nar"; echo "Compression: none"
  echo "NarHash: sha256:$(nix-hash --type sha256 --base32 /tmp/evil)"
  echo "NarSize: $(wc -c < /tmp/cache/nar/victim.nar)"; echo "References: "
} > /tmp/cache/$HASHPART.narinfo
if nix copy --no-check-sigs --from file:///tmp/cache --to daemon "$VICTIM"; then
  echo COPY-ACCEPTED; else echo COPY-REFUSED; fi
nix-store --store file:///tmp/cache --export "$VICTIM" > /tmp/victim.export
if nix-store --import < /tmp/victim.export; then echo IMPORT-ACCEPTED; else echo IMPORT-REFUSED; fi
printf '#!/bin/sh\\ntouch HOOK_MARKER\\n' > /tmp/hook && chmod +x /tmp/hook
HOOK=$(nix-store --add /tmp/hook)
nix-build --no-out-link --option post-build-hook "$HOOK" -E '(HOOK_EXPR)' && echo HOOK-BUILD-DONE
echo "victim=$VICTIM"
"""


def _poison_script(tag: str, hook_marker: Path) -> str:
    victim = derivation(f"victim-{tag}", "echo genuine > $out")
    hooked = derivation(f"hooked-{tag}", "echo x > $out")
    return (
        POISON.replace("VICTIM_EXPR", victim)
        .replace("HOOK_EXPR", hooked)
        .replace("HOOK_MARKER", str(hook_marker))
    )


def _poison(engine: DockerEngine, runner: dict[str, Any]) -> tuple[str, str, Path]:
    hook_marker = Path("/tmp") / f"nixlayer-hook-ran-{uuid.uuid4().hex}"
    job = docker_engine.run_job(engine, runner, _poison_script(uuid.uuid4().hex[:8], hook_marker))
    return job.stdout.decode(), job.stderr.decode(), hook_marker


def test_daemon_mode_job_cannot_poison_the_store_or_run_a_hook_as_root(
    engine: DockerEngine, daemon: HostDaemon, daemon_config: Path
) -> None:
    stdout, stderr, hook_marker = _poison(engine, runners(daemon_config)["nix-root"])
    assert "COPY-REFUSED" in stdout and "IMPORT-REFUSED" in stdout, stdout + stderr
    assert stderr.count("because it lacks a valid signature") == 2, stdout + stderr
    victim = stdout.split("victim=")[1].strip()
    assert not path_valid(daemon.root, victim)
    assert "HOOK-BUILD-DONE" in stdout, stderr  # the build itself is fine ...
    assert not hook_marker.exists()  # ... but the job's hook never ran on the host


def test_daemon_mode_non_root_job_builds(
    engine: DockerEngine, daemon: HostDaemon, daemon_config: Path
) -> None:
    runner = runners(daemon_config)["nix-user"]
    assert runner["docker"]["user"] == "1000:1000"
    assert runner["docker"]["group_add"] == [str(SOCKET_GID)]  # written by configure
    assert runner["docker"]["tmpfs"]["/nix/var/nix/profiles/per-user"].endswith(
        ",uid=1000,gid=1000"
    )
    expr = derivation(f"user-job-{uuid.uuid4().hex[:8]}", "echo by-uid-1000 > $out")
    # nix-env needs a writable per-user profiles directory: the tmpfs configure wrote.
    script = (
        f"id -u; OUT=$(nix-build --no-out-link -E '{expr}') && echo $OUT && "
        "P=/nix/var/nix/profiles/per-user/job && mkdir $P && "
        'nix-env -p $P/profile --set "$OUT" && cat $P/profile'
    )
    job = docker_engine.run_job(engine, runner, script)
    assert job.returncode == 0, job.stderr.decode()
    uid, out, content = job.stdout.decode().split()
    assert uid == "1000" and content == "by-uid-1000"
    assert path_valid(daemon.root, out)


# --- (c) the host daemon as configure requires it, and one configure refuses --------


def test_the_test_daemon_is_what_configure_requires(daemon: HostDaemon) -> None:
    settings = daemon_info(str(daemon.root)).settings
    assert settings.sandbox == "true" and not settings.sandbox_fallback
    assert "root" not in settings.trusted_users and "*" not in settings.trusted_users
    assert settings.build_users_group == "nixbld"


def test_configure_refuses_a_daemon_that_trusts_root_where_jobs_could_poison_it(
    engine: DockerEngine,
    images: dict[str, str],
    daemon_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trusting = host_daemon.SAFE_CONF.replace("trusted-users = nixlayer-test-admin\n", "")
    with host_daemon.running(tmp_path / "trusting", trusting) as d:
        config = config_file(tmp_path, section("nix-root"))
        before = config.read_bytes()
        proc = nixlayer(
            engine, "configure", "--config", str(config), "--mode", "daemon", "--dir",
            str(d.root), "--image", "nixos-like:v1",
        )  # fmt: skip
        assert proc.returncode == 3, proc.stderr
        assert "trusted-users" in proc.stderr and "'root'" in proc.stderr
        assert config.read_bytes() == before

        # Why: the same job against this daemon (the safe runner's section, pointed at
        # this daemon's root) poisons the store and runs its hook as root on the host.
        safe = runners(daemon_config)["nix-root"]
        safe_root = str(safe["docker"]["volumes"][0]).split("/nix/store:")[0]
        runner = {
            **safe,
            "docker": {
                **safe["docker"],
                "volumes": [
                    str(v).replace(safe_root, str(d.root)) for v in safe["docker"]["volumes"]
                ],
                "group_add": [],
            },
        }
        for key in ("DOCKER_HOST", "PATH"):
            monkeypatch.setenv(key, engine.env()[key])
        import_image("nixos-like:v1", str(d.root))
        stdout, stderr, hook_marker = _poison(engine, runner)
        try:
            assert "COPY-ACCEPTED" in stdout, stdout + stderr
            assert hook_marker.exists(), stdout + stderr
        finally:
            hook_marker.unlink(missing_ok=True)
