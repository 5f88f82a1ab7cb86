"""Nothing outside DIR is written by `seed` (issue 14), however a job races it:

- a copy-mode job (DIR's db is mounted read-write into it) renames a symlink over
  db/reserved or db/big-lock after every check, right before root's Nix opens it;
- a symlinked DIR/.nixlayer, .nixlayer/locks or locks/seed.lock.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from nixlayer.errors import NixlayerError
from nixlayer.nix import commands
from nixlayer.nix.confine import confine, nosymfollow_mounted
from nixlayer.nix.runner import Nix, ProgressCallback
from nixlayer.runner_store import statedir
from nixlayer.runner_store.seed import seed
from tests.helpers import cli
from tests.runner_store.images import build_paths, docker_save, image_root, layers_for


def tree(d: Path) -> dict[str, str]:
    """Everything under `d` (lstat'd, never followed): kind and content hash."""
    out = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(root) / name
            if p.is_symlink():
                out[str(p)] = f"-> {os.readlink(p)}"
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[str(p)] = "dir"
    return out


# Issue 14 finding 1: a symlink planted in DIR's db while Nix runs ---------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("NIX_CONFIG") is None:
        pytest.skip("needs the offline nix config")
    work = tmp_path_factory.mktemp("race")
    paths = build_paths(work, n=2, size=1000, tag="race")
    return docker_save(work / "image.tar", layers_for(image_root(work, "root", paths)))


class RacingJob(Nix):
    """The real Nix; right before its first call on DIR, `plant` runs: a job that
    renames a symlink over a db file after every check nixlayer makes. Deterministic
    where the attack needs luck."""

    def __init__(self, d: Path, name: str, target: Path) -> None:
        super().__init__()
        self.d, self.name, self.target = d, name, target
        self.planted: list[str] = []  # shared with the copies the runner makes

    def execute(
        self,
        argv: list[str],
        *,
        cwd: str | None = None,
        stdin: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[int, str, str]:
        if not self.planted and commands.chroot_store(self.d) in argv:
            db = self.d / "nix/var/nix/db"
            tmp = db / ".planted"
            tmp.symlink_to(self.target)
            os.replace(tmp, db / self.name)
            self.planted.append(" ".join(argv))
        return super().execute(argv, cwd=cwd, stdin=stdin, progress=progress)


@pytest.mark.nix
@pytest.mark.parametrize("name", ["reserved", "big-lock"])
def test_a_symlink_renamed_over_a_db_file_right_before_nix_runs_is_not_followed(
    archive: Path, tmp_path: Path, name: str
) -> None:
    d = tmp_path / "shared"
    first = cli("runner-store", "seed", "--image-archive", str(archive), "--dir", str(d))
    assert first.returncode == 0, first.stderr
    outside = tmp_path / "host"
    outside.mkdir()
    passwd = outside / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.chmod(passwd, 0o644)
    # reserved: Nix grows it to 8 MiB; big-lock: Nix creates it (think /etc/nologin).
    target = passwd if name == "reserved" else outside / "nologin"
    before = tree(outside)
    job = RacingJob(d, name, target)
    try:
        seed(d, image_archive=archive, full_verify=True, nix=job)
    except NixlayerError as exc:  # big-lock: Nix cannot open its lock, and says why
        assert "Too many levels of symbolic links" in str(exc), exc
    # reserved: Nix shrugs off a reserved file it cannot make, as it always did
    assert job.planted
    assert tree(outside) == before
    assert passwd.stat().st_size == len("root:x:0:0:root:/root:/bin/bash\n")


def test_every_nix_call_on_dir_runs_where_no_symlink_is_followed(tmp_path: Path) -> None:
    """The wrapper really makes the kernel refuse symlinks under DIR (and only there)."""
    d = tmp_path / "shared"
    d.mkdir()
    (tmp_path / "secret").write_text("outside\n")
    (d / "link").symlink_to(tmp_path / "secret")
    dnix = confine(Nix(), d)
    assert dnix.nix.wrapper == commands.nosymfollow(d)
    proc = subprocess.run(
        [*dnix.nix.wrapper, "sh", "-c", f"cat {d}/link; readlink {d}/link"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Too many levels of symbolic links" in proc.stderr
    assert proc.stdout == f"{tmp_path / 'secret'}\n"  # readlink works: NARs of symlinks do


def test_without_root_nix_is_not_run_on_dir_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NixlayerError, match="refusing to run it unprotected"):
        confine(Nix(), tmp_path)


def test_a_kernel_that_ignores_nosymfollow_is_noticed() -> None:
    line = "63 43 254:0 {src} {mnt} rw,relatime{extra} - ext4 /dev/vda rw"
    d = Path("/srv/my store")
    with_it = line.format(src="/x", mnt="/srv/my\\040store", extra=",nosymfollow")
    without = line.format(src="/x", mnt="/srv/my\\040store", extra="")
    assert nosymfollow_mounted(with_it, d)
    assert not nosymfollow_mounted(without, d)
    assert not nosymfollow_mounted(f"{with_it}\n{without}", d)  # the last mount counts
    assert not nosymfollow_mounted(with_it, Path("/srv/other"))


# Issue 14 finding 2: a symlinked DIR/.nixlayer -----------------------------------------


@pytest.mark.parametrize("planted", [".nixlayer", ".nixlayer/locks", ".nixlayer/locks/seed.lock"])
def test_a_symlinked_state_dir_is_refused_before_anything_is_made(
    tmp_path: Path, planted: str, archive: Path
) -> None:
    d = tmp_path / "shared"
    link = d / planted
    link.parent.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    if planted.endswith(".lock"):
        elsewhere.parent.mkdir(exist_ok=True)
        target = tmp_path / "elsewhere.lock"
    else:
        elsewhere.mkdir()
        target = elsewhere
    link.symlink_to(target)
    # A valid image: the archive is checked first, then DIR's state dir.
    proc = cli("runner-store", "seed", "--image-archive", str(archive), "--dir", str(d))
    assert proc.returncode == 3, proc.stderr
    assert "symlink" in proc.stderr and "Traceback" not in proc.stderr
    assert not os.path.lexists(tmp_path / "elsewhere.lock")
    assert not elsewhere.exists() or list(elsewhere.iterdir()) == []
    assert not (d / "nix").exists()  # refused before Nix ran on DIR


def test_the_work_directory_is_made_through_the_fd_even_if_the_state_dir_is_swapped(
    tmp_path: Path,
) -> None:
    d = tmp_path / "shared"
    d.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fd = statedir.open_state(d)
    try:
        os.rename(d / ".nixlayer", d / "moved")
        (d / ".nixlayer").symlink_to(elsewhere)
        with statedir.seed_lock(d, fd):
            work = statedir.make_work(d, fd)
    finally:
        os.close(fd)
    assert list(elsewhere.iterdir()) == []
    assert (d / "moved" / work.name).is_dir()
    assert (d / "moved/locks/seed.lock").is_file()
