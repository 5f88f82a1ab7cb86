"""A real Docker engine for the tests, and a nixos/nix-like image built locally.

The engine is Debian's dockerd with everything private (data root, exec root,
pidfile, a unix socket of its own), no iptables, no bridge, no forwarding, overlay2
(vfs where overlay2 cannot mount); every container runs with `--network none`.

The image is built without a registry, like nixos/nix: Nix 2.8's binary and its
libraries (patchelf'd) and a static busybox as store paths (built by Nix, so their
references are real), copied with `nix copy` into an image root whose /nix is
registered, `/bin/sh` a link into /nix/store, a default profile, then `docker import`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def run_nix(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run(
        ["nix", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"nix {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


DOCKERD = "dockerd"


def _docker_client() -> str | None:
    # Debian's client matches Debian's engine; another client on PATH may be newer.
    for c in ("/usr/bin/docker", shutil.which("docker")):
        if c and os.path.exists(c):
            return c
    return None


def require_docker() -> None:
    reason = None
    if shutil.which(DOCKERD) is None or _docker_client() is None:
        reason = "dockerd is not installed (scripts/setup-docker)"
    elif os.geteuid() != 0:
        reason = "dockerd needs root"
    if reason:
        if os.environ.get("NIXLAYER_REQUIRE_DOCKER"):
            pytest.fail(f"a docker engine is required (NIXLAYER_REQUIRE_DOCKER): {reason}")
        pytest.skip(reason)


@dataclass
class DockerEngine:
    base: Path
    host: str  # unix://...
    client: str
    proc: subprocess.Popen[bytes]
    storage_driver: str
    short: Path  # exec root and socket (unix socket paths are short)

    def env(self) -> dict[str, str]:
        """For subprocesses that run `docker` themselves (nixlayer seed/configure)."""
        client_dir = os.path.dirname(self.client)
        return {
            **os.environ,
            "DOCKER_HOST": self.host,
            "DOCKER_BUILDKIT": "0",
            "PATH": f"{client_dir}:{os.environ.get('PATH', '')}",
        }

    def docker(
        self, *args: str, timeout: float = 300, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [self.client, "-H", self.host, *args],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{proc.stderr.decode()}")
        return proc


def _start(base: Path, driver: str) -> DockerEngine:
    # Unix socket paths are short (108 bytes): keep the exec root and socket in /tmp.
    short = Path(tempfile.mkdtemp(prefix="nxd-", dir="/tmp"))
    host = f"unix://{short}/docker.sock"
    log = base / f"dockerd-{driver}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                DOCKERD,
                "--data-root",
                str(base / f"data-{driver}"),
                "--exec-root",
                str(short / "exec"),
                "--pidfile",
                str(short / "docker.pid"),
                "-H",
                host,
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--ip-forward=false",
                "--storage-driver",
                driver,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = _docker_client()
    assert client is not None
    engine = DockerEngine(base, host, client, proc, driver, short)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is None and engine.docker("info", timeout=30, check=False).returncode == 0:
            return engine
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(engine)
            raise RuntimeError(f"dockerd ({driver}) did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def start(base: Path) -> DockerEngine:
    require_docker()
    try:
        return _start(base, "overlay2")
    except RuntimeError as overlay_error:
        try:
            return _start(base, "vfs")
        except RuntimeError as exc:
            if os.environ.get("NIXLAYER_REQUIRE_DOCKER"):
                raise
            pytest.skip(f"dockerd cannot run here: {overlay_error}; {exc}")
            raise  # unreachable: skip raises


def stop(engine: DockerEngine) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(engine.proc.pid, signal.SIGTERM)
    try:
        engine.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(engine.proc.pid, signal.SIGKILL)
        engine.proc.wait(timeout=30)
    shutil.rmtree(engine.short, ignore_errors=True)


@contextlib.contextmanager
def running(base: Path) -> Iterator[DockerEngine]:
    engine = start(base)
    try:
        yield engine
    finally:
        stop(engine)


# --- the nixos/nix-like image ------------------------------------------------------

IMAGE_NIX = """
{ tag }:
let
  sh = args: name: extra: derivation ({
    inherit name;
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" ("export PATH=/usr/bin:/bin\\nset -e\\n" + args) ];
  } // extra);
  libs = sh ''
    mkdir -p $out/lib
    for l in $(ldd /usr/bin/nix | awk '/=> \\// { print $3 } /ld-linux/ { print $1 }'); do
      cp -L "$l" $out/lib/
    done
    chmod u+w $out/lib/*
    for l in $out/lib/*; do
      case "$l" in *ld-linux*) ;; *) patchelf --set-rpath $out/lib "$l" ;; esac
    done
  '' "nix-2.8-libs" { };
  nix = sh ''
    mkdir -p $out/bin
    cp /usr/bin/nix $out/bin/nix
    chmod u+w $out/bin/nix
    patchelf --set-interpreter ${libs}/lib/ld-linux-x86-64.so.2 --set-rpath ${libs}/lib $out/bin/nix
    for t in nix-build nix-store nix-env nix-instantiate nix-shell nix-collect-garbage nix-hash \\
             nix-channel nix-copy-closure nix-daemon nix-prefetch-url; do
      ln -s nix $out/bin/$t
    done
    mkdir -p $out/libexec/nix
    ln -s ../../bin/nix $out/libexec/nix/build-remote
  '' "nix-2.8" { };
  busybox = sh ''
    mkdir -p $out/bin
    cp /bin/busybox $out/bin/busybox
    for a in $($out/bin/busybox --list); do
      [ "$a" = busybox ] || ln -s busybox $out/bin/$a
    done
  '' "busybox" { };
  extra = sh "mkdir -p $out; echo ${tag} > $out/version" "image-extra-${tag}" { };
in
sh ''
  mkdir -p $out/bin
  for f in ${busybox}/bin/* ${nix}/bin/*; do ln -sf "$f" $out/bin/; done
  ln -s ${busybox} $out/busybox
  ${if tag == "v1" then "" else "ln -s ${extra} $out/extra"}
  echo ${tag} > $out/tag
'' "profile-${tag}" { }
"""


def _image_root(work: Path, tag: str) -> Path:
    expr = work / "image.nix"
    expr.write_text(IMAGE_NIX)
    out = run_nix("build", "--no-link", "--json", "-f", str(expr), "--argstr", "tag", tag)
    profile = json.loads(out)[0]["outputs"]["out"]
    root = work / f"root-{tag}"
    run_nix("copy", "--no-check-sigs", "--to", f"local?root={root}", profile)
    busybox = os.readlink(Path(str(root) + profile) / "busybox")
    profiles = root / "nix/var/nix/profiles"
    (profiles / "per-user/root").mkdir(parents=True, exist_ok=True)
    os.symlink(profile, profiles / "default-1-link")
    os.symlink("default-1-link", profiles / "default")
    for d in ("root", "bin", "usr/bin", "etc/nix", "tmp", "nix/var/nix/gcroots"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    os.symlink("/nix/var/nix/profiles/default", root / "root/.nix-profile")
    os.symlink(f"{busybox}/bin/sh", root / "bin/sh")  # as nixos/nix: a link into the store
    os.symlink(f"{busybox}/bin/env", root / "usr/bin/env")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    nix = os.path.dirname(os.readlink(Path(str(root) + profile) / "bin/nix"))
    # Its Nix's build hook in its own store, as the nixos/nix image has it.
    (root / "etc/nix/nix.conf").write_text(
        "build-users-group =\nsandbox = false\nsubstituters =\n"
        f"build-hook = {os.path.dirname(nix)}/libexec/nix/build-remote\n"
        "experimental-features = nix-command\n"
    )
    return root


def build_image(engine: DockerEngine, work: Path, tag: str) -> str:
    """Build `nixos-like:TAG`; return its image ID."""
    work.mkdir(parents=True, exist_ok=True)
    root = _image_root(work, tag)
    tar = work / f"rootfs-{tag}.tar"
    with tarfile.open(tar, "w") as tf:
        for entry in sorted(os.listdir(root)):
            tf.add(root / entry, arcname=entry)
    changes = [
        "ENV PATH=/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/bin:/usr/bin",
        "ENV USER=root",
        'CMD ["/bin/sh"]',
    ]
    args = ["import"]
    for c in changes:
        args += ["--change", c]
    engine.docker(*args, str(tar), f"nixos-like:{tag}", timeout=300)
    return (
        engine.docker("image", "inspect", "--format", "{{.Id}}", f"nixos-like:{tag}")
        .stdout.decode()
        .strip()
    )


# --- a job container, as gitlab-runner would create it from config.toml -------------


def job_argv(runner: Mapping[str, Any]) -> list[str]:
    """`docker run` arguments for a runner's job container: image, volumes, tmpfs,
    user, groups and environment exactly as its config.toml section says."""
    docker = runner.get("docker", {})
    argv = ["run", "--rm", "--network", "none"]
    for v in docker.get("volumes", []):
        argv += ["-v", str(v)]
    for path, opts in dict(docker.get("tmpfs", {})).items():
        argv += ["--tmpfs", f"{path}:{opts}"]
    if docker.get("user"):
        argv += ["--user", str(docker["user"])]
    for g in docker.get("group_add", []):
        argv += ["--group-add", str(g)]
    for e in runner.get("environment", []):
        argv += ["-e", str(e)]
    return [*argv, str(docker["image"])]


def run_job(
    engine: DockerEngine, runner: Mapping[str, Any], script: str, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """The job's script through the image's own /bin/sh (as gitlab-runner does)."""
    return engine.docker(*job_argv(runner), "/bin/sh", "-c", script, timeout=timeout, check=False)
