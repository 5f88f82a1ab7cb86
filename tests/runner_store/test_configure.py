"""`runner-store configure` and `status` on real config.toml files, against a real
(private) host nix-daemon whose settings configure reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit

from nixlayer.runner_store import tomlmask
from tests.helpers import cli, json_result, nixlayer_bin
from tests.runner_store import host_daemon
from tests.runner_store.host_daemon import SAFE_CONF, HostDaemon

CONFIGS = Path(__file__).parent / "configs"
DIGEST = "nixos/nix@sha256:" + "a" * 64


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostDaemon]:
    with host_daemon.running(tmp_path_factory.mktemp("hd")) as d:
        yield d


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A store root as `seed` leaves it (configure only checks the database exists)."""
    root = tmp_path / "seeded"
    (root / "nix/var/nix/db").mkdir(parents=True)
    (root / "nix/var/nix/db/db.sqlite").write_bytes(b"")
    (root / "nix/store").mkdir()
    return root


def _conf(**changes: str | None) -> str:
    lines = []
    for line in SAFE_CONF.splitlines():
        key = line.split("=", 1)[0].strip().replace("-", "_")
        if key in changes:
            if changes[key] is not None:
                lines.append(f"{line.split('=', 1)[0]}= {changes[key]}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "config.toml"
    shutil.copyfile(CONFIGS / name, target)
    return target


def _expected(name: str, daemon: HostDaemon | None = None, seeded: Path | None = None) -> str:
    text = (CONFIGS / name).read_text()
    if daemon is not None:
        text = text.replace("@DIR@", str(daemon.root))
    if seeded is not None:
        text = text.replace("@SEED@", str(seeded))
    return text


def _configure(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nixlayer_bin(), "runner-store", "configure", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


CASES = [
    ("multi.toml", ["--mode", "daemon"], "multi.daemon.expected.toml"),
    (
        "multi.toml",
        ["--mode", "copy", "--runner", "docker-a", "--image", DIGEST],
        "multi.copy.expected.toml",
    ),
    ("seed002.toml", ["--mode", "daemon"], "seed002.daemon.expected.toml"),
]


@pytest.mark.parametrize(("source", "args", "expected"), CASES, ids=[c[2] for c in CASES])
def test_exact_output_and_idempotent(
    tmp_path: Path,
    daemon: HostDaemon,
    seeded: Path,
    *,
    source: str,
    args: list[str],
    expected: str,
) -> None:
    config = _copy(tmp_path, source)
    args = [*args, "--dir", str(daemon.root if "daemon" in args else seeded)]
    want = _expected(expected, daemon, seeded)
    check = _configure(config, *args, "--check")
    assert check.returncode == 1 and check.stdout.startswith("---"), check.stderr
    assert config.read_bytes() == (CONFIGS / source).read_bytes()  # --check writes nothing
    assert sorted(os.listdir(tmp_path)) == ["config.toml", "seeded"]  # not even a lock file
    first = _configure(config, *args)
    assert first.returncode == 0, first.stderr
    assert config.read_text() == want
    # With the lock file there, --check takes it shared and still writes nothing.
    recheck = _configure(config, *args, "--check")
    assert recheck.returncode == 0 and "nothing to change" in recheck.stdout, recheck.stderr
    assert (tmp_path / "config.toml.nixlayer.bak").read_bytes() == (CONFIGS / source).read_bytes()
    again = _configure(config, *args)
    assert again.returncode == 0 and "nothing to change" in again.stdout
    assert config.read_text() == want
    assert _configure(config, *args, "--check").returncode == 0


def test_daemon_mode_mounts_no_database_and_is_recognised(
    tmp_path: Path, daemon: HostDaemon
) -> None:
    config = _copy(tmp_path, "multi.toml")
    assert _configure(config, "--mode", "daemon", "--dir", str(daemon.root)).returncode == 0
    doc = tomlkit.parse(config.read_text())
    docker = doc["runners"][0]["docker"]
    assert [v for v in docker["volumes"] if "/nix" in v] == [
        f"{daemon.root}/nix/store:/nix/store:ro",
        f"{daemon.root}/nix/var/nix/daemon-socket:/nix/var/nix/daemon-socket:ro",
    ]
    assert docker["tmpfs"]["/nix/var/nix/profiles/per-user"] == "rw,exec,mode=1777"
    out = json_result(cli("runner-store", "status", "--config", str(config), "--json"))
    assert {r["name"]: r["mode"] for r in out["runners"]}["docker-a"] == "daemon"


def test_copy_mode_prints_its_risks(tmp_path: Path, seeded: Path) -> None:
    config = _copy(tmp_path, "seed002.toml")
    proc = _configure(config, "--mode", "copy", "--dir", str(seeded))
    assert proc.returncode == 0, proc.stderr
    assert "garbage collection" in proc.stderr and "SQLite" in proc.stderr
    assert f"{seeded}/nix/store:/nix/store:rw" in config.read_text()


def test_copy_mode_takes_an_image_id(tmp_path: Path, seeded: Path) -> None:
    """A locally built image has no repo digest; its image ID pins it as exactly."""
    config = _copy(tmp_path, "multi.toml")
    image_id = "sha256:" + "b" * 64
    proc = _configure(
        config, "--mode", "copy", "--dir", str(seeded), "--runner", "docker-a", "--image", image_id
    )
    assert proc.returncode == 0, proc.stderr
    assert f'image = "{image_id}"' in config.read_text()


def test_switching_modes_replaces_the_mounts(
    tmp_path: Path, daemon: HostDaemon, seeded: Path
) -> None:
    config = _copy(tmp_path, "multi.toml")
    assert _configure(config, "--mode", "daemon", "--dir", str(daemon.root)).returncode == 0
    proc = _configure(
        config, "--mode", "copy", "--dir", str(seeded), "--runner", "docker-a", "--image", DIGEST
    )
    assert proc.returncode == 0, proc.stderr
    text = config.read_text()
    assert f"{seeded}/nix/store:/nix/store:rw" in text
    assert f"{daemon.root}/nix/store:/nix/store:ro" in text  # autoscaler-c keeps daemon
    docker_a = text.split('name = "shell-b"')[0]
    assert "daemon-socket" not in docker_a and "NIX_REMOTE=daemon" not in docker_a
    assert "per-user" not in docker_a


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("concurrent = [\n", ["--mode", "copy", "--dir", "@SEED@"], "--config: "),
        (
            None,
            ["--mode", "copy", "--dir", "@SEED@", "--runner", "nope"],
            "no runner named 'nope'",
        ),
        (
            None,
            ["--mode", "copy", "--dir", "@SEED@", "--runner", "shell-b"],
            "uses the 'shell' executor, not docker",
        ),
        (
            None,
            ["--mode", "copy", "--dir", "@SEED@", "--image", "nixos/nix:latest"],
            "neither NAME@sha256:DIGEST nor an image ID",
        ),
        (None, ["--mode", "copy", "--dir", "@SEED@"], "copy mode needs the exact image"),
        (None, ["--mode", "copy"], "copy mode needs --dir"),
        (None, ["--mode", "copy", "--dir", "/srv/nothing-here"], "holds no seeded store"),
        (None, ["--mode", "daemon", "--dir", "rel"], "not an absolute path"),
        (None, ["--mode", "daemon", "--dir", "/srv/a:/etc"], "plain normalised path"),
        (None, ["--mode", "daemon", "--dir", "/srv/a,b"], "plain normalised path"),
        (None, ["--mode", "daemon", "--dir", "/srv/a\n/etc"], "plain normalised path"),
        (None, ["--mode", "daemon", "--dir", "/srv/../etc"], "plain normalised path"),
        (None, ["--mode", "daemon", "--dir", "/srv/nix/"], "plain normalised path"),
        (None, ["--mode", "daemon", "--dir", "/nix"], "DIR is the directory that contains"),
        (None, ["--mode", "daemon", "--dir", "@STORE_PARENT@"], "holds the store itself"),
        (None, ["--mode", "daemon", "--dir", "/srv/no-daemon"], "no nix-daemon socket"),
    ],
)
def test_bad_input_exit_2_file_untouched(
    tmp_path: Path, seeded: Path, content: str | None, args: list[str], message: str
) -> None:
    config = _copy(tmp_path, "multi.toml")
    if content is not None:
        config.write_text(content)
    store_parent = tmp_path / "x/nix"
    (store_parent / "store").mkdir(parents=True)
    args = [
        a.replace("@SEED@", str(seeded)).replace("@STORE_PARENT@", str(store_parent)) for a in args
    ]
    before = config.read_bytes()
    proc = _configure(config, *args, "-q")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert config.read_bytes() == before
    # Nothing written: no backup, and no lock file (input is validated before the lock).
    assert sorted(os.listdir(tmp_path)) == ["config.toml", "seeded", "x"]


def test_keeps_owner_mode_and_a_private_backup(tmp_path: Path, seeded: Path) -> None:
    config = _copy(tmp_path, "multi.toml")
    os.chown(config, 65534, 65534)
    os.chmod(config, 0o600)
    proc = _configure(
        config, "--mode", "copy", "--dir", str(seeded), "--runner", "docker-a", "--image", DIGEST
    )
    assert proc.returncode == 0, proc.stderr
    st = os.stat(config)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (65534, 65534, 0o600)
    bak = os.stat(tmp_path / "config.toml.nixlayer.bak")
    assert (bak.st_uid, bak.st_gid, bak.st_mode & 0o7777) == (65534, 65534, 0o600)
    # A group-readable config keeps its mode; the backup is still private.
    os.chmod(config, 0o640)
    _configure(config, "--mode", "copy", "--dir", str(seeded), "--image", DIGEST, "-q")
    assert os.stat(config).st_mode & 0o7777 == 0o640
    assert os.stat(tmp_path / "config.toml.nixlayer.bak").st_mode & 0o7777 == 0o600


def test_symlinked_config_edits_the_target(tmp_path: Path, seeded: Path) -> None:
    real = tmp_path / "etc/config.toml"
    real.parent.mkdir()
    shutil.copyfile(CONFIGS / "multi.toml", real)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    proc = _configure(
        link, "--mode", "copy", "--dir", str(seeded), "--runner", "docker-a", "--image", DIGEST
    )
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == _expected("multi.copy.expected.toml", seeded=seeded)
    assert (real.parent / "config.toml.nixlayer.bak").read_bytes() == (
        CONFIGS / "multi.toml"
    ).read_bytes()


def test_crlf_bytes_kept(tmp_path: Path, seeded: Path) -> None:
    original = (CONFIGS / "multi.toml").read_bytes().replace(b"\n", b"\r\n")
    config = tmp_path / "config.toml"
    config.write_bytes(original)
    args = ["--mode", "copy", "--dir", str(seeded), "--runner", "docker-a", "--image", DIGEST]
    assert _configure(config, *args).returncode == 0
    want = _expected("multi.copy.expected.toml", seeded=seeded).encode().replace(b"\n", b"\r\n")
    assert config.read_bytes() == want
    assert (tmp_path / "config.toml.nixlayer.bak").read_bytes() == original
    again = _configure(config, *args)
    assert "nothing to change" in again.stdout and config.read_bytes() == want


def test_concurrent_runs_keep_every_edit(tmp_path: Path, seeded: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "concurrent = 5\n"
        + "".join(
            f'\n[[runners]]\n  name = "r{i}"\n  executor = "docker"\n'
            f'  [runners.docker]\n    image = "{DIGEST}"\n'
            for i in range(5)
        )
    )
    base = [nixlayer_bin(), "runner-store", "configure", "--config", str(config)]
    procs = [
        subprocess.Popen(
            [*base, "--mode", "copy", "--dir", str(seeded), "--runner", f"r{i}", "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(5)
    ]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    doc = tomlkit.parse(config.read_text())
    for runner in doc["runners"]:
        assert f"{seeded}/nix/store:/nix/store:rw" in runner["docker"]["volumes"], runner["name"]


def test_tokens_masked_in_every_diff(tmp_path: Path, seeded: Path) -> None:
    config = _copy(tmp_path, "multi.toml")
    # The token line within the diff's context lines.
    text = (
        config.read_text()
        .replace('"GIT_DEPTH=10"', '"GIT_DEPTH=10", "AWS_SECRET_ACCESS_KEY=hunter2"')
        .replace('  token = "glrt-AAAA"   # rotate yearly\n', "")
        .replace("  [runners.docker]\n", '  token = "glrt-AAAA"\n  [runners.docker]\n', 1)
    )
    assert text.count("glrt-AAAA") == 1
    config.write_text(text)
    args = ["--mode", "copy", "--dir", str(seeded), "--runner", "docker-a", "--image", DIGEST]
    check = _configure(config, *args, "--check")
    as_json = json_result(_configure(config, *args, "--check", "--json"), ok=False)["diff"]
    written = _configure(config, *args)
    for out in (check.stdout + check.stderr, as_json, written.stdout + written.stderr):
        assert "token = " in out and "[MASKED]" in out
        assert "glrt-AAAA" not in out and "hunter2" not in out
    assert "glrt-AAAA" in config.read_text() and "hunter2" in config.read_text()


# Secrets as the hostile review planted them next to the edited volumes line: the
# values, however they are spelled in TOML, must never reach any output.
SECRETS = (
    "hunter2",
    "s3cr3tRunnerTokenNoPrefix",
    "ZGVwbG95Omh1bnRlcjI=",
    "pipsecretpw",
    "vaulttokenvalue",
    "abc123",
    "inlinepw",
    "inlinekey",
    "singlequotedpw",
)


@pytest.mark.parametrize("name", ["attack1.toml", "attack2.toml"])
def test_secrets_masked_by_structure_in_every_output(
    tmp_path: Path, seeded: Path, name: str
) -> None:
    """URL credentials, multi-line strings, DOCKER_AUTH_CONFIG, escaped and quoted
    keys, inline tables: a line regex let each of them through as diff context."""
    source = CONFIGS / "secrets" / name
    config = tmp_path / "config.toml"
    shutil.copyfile(source, config)
    present = [s for s in SECRETS if s in source.read_text() or s == "vaulttokenvalue"]
    args = ["--mode", "copy", "--dir", str(seeded)]
    check = _configure(config, *args, "--check")
    as_json = _configure(config, *args, "--check", "--json")
    diff = json_result(as_json, ok=False)["diff"]
    bad = _configure(config, *args, "--runner", "nope")
    written = _configure(config, *args)
    assert written.returncode == 0, written.stderr
    outputs = [
        check.stdout + check.stderr,
        as_json.stdout + as_json.stderr,
        bad.stdout + bad.stderr,
        written.stdout + written.stderr,
    ]
    assert "[MASKED]" in diff and diff.count("/nix/store:rw") >= 1
    for out in outputs:
        for secret in present:
            assert secret not in out, (secret, out)
    # Masking is only in what is shown: the file keeps every secret, byte for byte.
    kept = config.read_text()
    assert all(s in kept for s in present if s != "vaulttokenvalue")
    assert kept.count("\n") == source.read_text().count("\n")


def test_mask_units() -> None:
    text = (
        '# token = "glrt-abc" see https://me:pw@host\n'
        "[[runners]]\n"
        '  url = "https://gitlab.example/"\n'
        '  pre_build_script = """\nexport VAULT_TOKEN=topsecret\necho ok\n"""\n'
        '  "pass\\u0077ord" = 5\n'
        "  [runners.cache.s3]\n"
        '    SecretKey = "s3secret"\n'
        "  [runners.docker]\n"
        '    volumes = ["/srv/keys:/keys:ro"]\n'
        '    environment = ["FOO={\\"auth\\":\\"xyz\\"}", "GIT_DEPTH=10"]\n'
        "    [runners.docker.credentials]\n"
        '      user = "deploy"\n'
    )
    masked = tomlmask.masked(text)
    for secret in ("glrt-abc", ":pw@", "topsecret", "= 5", "s3secret", "xyz", '"deploy"'):
        assert secret not in masked, (secret, masked)
    for kept in ("https://gitlab.example/", "/srv/keys:/keys:ro", "GIT_DEPTH=10", "echo ok"):
        assert kept in masked, (kept, masked)
    # Masked multi-line strings keep their lines: the diff's line numbers are the file's.
    assert masked.count("\n") == text.count("\n")


def test_runners_of_one_name_are_all_configured(tmp_path: Path, seeded: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "".join(
            f'[[runners]]\n  name = "dup"\n  token = "glrt-{i}"\n  executor = "docker"\n'
            f'  [runners.docker]\n    image = "{DIGEST}"\n'
            for i in range(2)
        )
    )
    proc = _configure(config, "--mode", "copy", "--dir", str(seeded), "--runner", "dup", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json_result(proc)["runners"] == ["dup", "dup"]
    assert "2 runners are named 'dup'" in proc.stderr
    doc = tomlkit.parse(config.read_text())
    assert all(
        f"{seeded}/nix/store:/nix/store:rw" in r["docker"]["volumes"] for r in doc["runners"]
    )


# --- daemon mode refuses what would make jobs trusted or builds unsandboxed ----------


def _runner(tmp_path: Path, docker_extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[runners]]\n  name = "job"\n  executor = "docker"\n  [runners.docker]\n'
        f'    image = "alpine"\n{docker_extra}'
    )
    return config


@pytest.mark.parametrize(
    ("conf", "docker_extra", "message"),
    [
        (_conf(trusted_users=None), "", "trusts root through trusted-users entry 'root'"),
        (_conf(trusted_users="root"), "", "trusted-users entry 'root'"),
        (_conf(trusted_users="@root"), "", "trusted-users entry '@root'"),
        (_conf(trusted_users="*"), '    user = "1000:1000"\n', "trusted-users entry '*'"),
        (_conf(trusted_users="root"), '    user = "nobody"\n', "resolved in the job's image"),
        (_conf(trusted_users="root"), '    user = "1000"\n', "resolved in the job's image"),
        (_conf(sandbox="false"), "", "sandbox = false"),
        (_conf(sandbox="relaxed"), "", "sandbox = relaxed"),
    ],
    ids=["default", "root", "@root", "star", "user-name", "uid-only", "no-sandbox", "relaxed"],
)
def test_daemon_mode_refuses_exit_3(
    tmp_path: Path, conf: str, docker_extra: str, message: str
) -> None:
    config = _runner(tmp_path, docker_extra)
    before = config.read_bytes()
    with host_daemon.running(tmp_path / "hd", conf) as d:
        proc = _configure(config, "--mode", "daemon", "--dir", str(d.root), "-q")
    assert proc.returncode == 3, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert config.read_bytes() == before
    assert not (tmp_path / ".config.toml.nixlayer.lock").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--option", "trusted-users", "root"), "trusted-users entry 'root'"),
        (("--option", "sandbox", "false"), "sandbox = false"),
        (("--max-jobs", "2"), "runs with argument '--max-jobs'"),
    ],
    ids=["option-trusted-users", "option-sandbox", "other-flag"],
)
def test_daemon_mode_reads_the_daemon_command_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """Settings given on the daemon's command line override its nix.conf."""
    config = _runner(tmp_path)
    with host_daemon.running(tmp_path / "hd", SAFE_CONF, args) as d:
        proc = _configure(config, "--mode", "daemon", "--dir", str(d.root), "-q")
    assert proc.returncode == 3, proc.stderr
    assert message in proc.stderr, proc.stderr


def test_daemon_mode_accepts_an_enforced_untrusted_user(tmp_path: Path) -> None:
    """root stays trusted on the host, but the runner fixes every job's uid:gid."""
    config = _runner(tmp_path, '    user = "1000:1000"\n')
    with host_daemon.running(tmp_path / "hd", _conf(trusted_users="root")) as d:
        proc = _configure(config, "--mode", "daemon", "--dir", str(d.root))
    assert proc.returncode == 0, proc.stderr


def test_daemon_mode_refuses_a_conf_edited_after_the_daemon_started(tmp_path: Path) -> None:
    config = _runner(tmp_path)
    with host_daemon.running(tmp_path / "hd", _conf(trusted_users=None)) as d:
        time.sleep(0.2)
        (d.conf_dir / "nix.conf").write_text(SAFE_CONF)  # fixed on disk, not restarted
        proc = _configure(config, "--mode", "daemon", "--dir", str(d.root), "-q")
    assert proc.returncode == 3, proc.stderr
    assert "changed after the nix-daemon" in proc.stderr


def test_daemon_mode_adds_the_socket_group(tmp_path: Path) -> None:
    """A socket directory others can't enter (Debian: 0770 root:nix-users) needs its
    group for non-root jobs."""
    config = _runner(tmp_path, '    user = "1000:1000"\n')
    with host_daemon.running(tmp_path / "hd") as d:
        os.chown(d.socket.parent, 0, 4321)
        os.chmod(d.socket.parent, 0o750)
        proc = _configure(config, "--mode", "daemon", "--dir", str(d.root))
    assert proc.returncode == 0, proc.stderr
    assert tomlkit.parse(config.read_text())["runners"][0]["docker"]["group_add"] == ["4321"]


def test_status(tmp_path: Path, daemon: HostDaemon, seeded: Path) -> None:
    config = _copy(tmp_path, "multi.toml")
    _configure(
        config, "--mode", "copy", "--dir", str(seeded), "--runner", "docker-a", "--image", DIGEST
    )
    _configure(config, "--mode", "daemon", "--dir", str(daemon.root), "--runner", "autoscaler-c")
    out = json_result(cli("runner-store", "status", "--config", str(config), "--json"))
    modes = {r["name"]: (r["mode"], r["image"]) for r in out["runners"]}
    assert modes == {
        "docker-a": ("copy", DIGEST),
        "shell-b": ("none", None),
        "autoscaler-c": ("daemon", "alpine:3.20"),
    }
