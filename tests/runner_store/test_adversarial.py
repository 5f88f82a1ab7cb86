"""Hostile archives through both layer code paths: the world outside DIR is unchanged
and nothing unverified is registered (issue 14, Must show 1)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from nixlayer.cli.main import main
from nixlayer.nix.nixjson import pathinfo
from tests.helpers import run_nix
from tests.runner_store.adversarial import Image, build_image, cases, make_sentinel, snapshot

pytestmark = pytest.mark.nix


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    if os.environ.get("NIX_CONFIG") is None:
        pytest.skip("needs the offline nix config")
    sentinel = tmp_path_factory.mktemp("world") / "sentinel"
    make_sentinel(sentinel)
    return build_image(tmp_path_factory.mktemp("adv-image"), sentinel)


# Names only (the scenarios need the image): collected once, without Nix.
NAMES = sorted(
    cases(
        Image(
            root=Path("/x"),
            a="a" * 32 + "-a",
            b="b" * 32 + "-b",
            sym="c" * 32 + "-c",
            hashes={},
            sentinel=Path("/s"),
        )
    )
)


def test_the_suite_is_large_enough() -> None:
    assert len(NAMES) >= 25


def seed_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(["runner-store", "seed", *args, "-q"])
    except BaseException as exc:  # a traceback would reach the user
        pytest.fail(f"seed raised {exc!r} instead of exiting with a message")
    return code, capsys.readouterr().err


def registered(d: Path) -> dict[str, str]:
    if not (d / "nix/var/nix/db/db.sqlite").exists():
        return {}
    out = run_nix("path-info", "--json", "--all", "--store", f"local?root={d}")
    return {p: i.nar_hash for p, i in pathinfo.parse(out).valid.items()}


def assert_store_canonical(d: Path) -> None:
    """No setuid/setgid/sticky or group/world-writable bit inside the seeded store,
    found without following a single symlink."""
    store = d / "nix/store"
    if not store.is_dir() or store.is_symlink():
        return
    for dirpath, dirnames, filenames in os.walk(store, followlinks=False):
        for name in [*dirnames, *filenames]:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISLNK(st.st_mode) or name.endswith(".lock"):
                continue
            if os.path.join(dirpath, name).startswith(str(store / ".links")):
                continue
            assert not st.st_mode & 0o7022, f"{dirpath}/{name}: mode {oct(st.st_mode)}"


@pytest.mark.parametrize("path", ["plain", "gz"])
@pytest.mark.parametrize("case", NAMES)
def test_hostile_archive(
    image: Image, tmp_path: Path, case: str, path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = cases(image)[case]
    if path not in scenario.paths:
        pytest.skip(f"{case} applies to the {'/'.join(scenario.paths)} layer path only")
    before_world = snapshot(image.sentinel)
    work = tmp_path / "archive"
    work.mkdir()
    archive = scenario.archive(work, path == "gz")
    d = tmp_path / "host" / "dir"
    d.parent.mkdir()
    if scenario.prepare:
        scenario.prepare(d)
    before_neighbours = sorted(set(os.listdir(d.parent)) - {d.name})

    code, err = seed_in_process(
        ["--image-archive", str(archive), "--dir", str(d), *scenario.extra_args], capsys
    )
    if os.environ.get("NIXLAYER_SHOW_REFUSALS"):
        print(f"\n{case}-{path}: exit {code}: {err.strip()}", file=sys.__stderr__)

    assert snapshot(image.sentinel) == before_world, f"{case}: the world outside DIR changed"
    assert sorted(set(os.listdir(d.parent)) - {d.name}) == before_neighbours
    if scenario.expect_ok:
        assert code == 0, err
    else:
        assert code in (1, 2, 3), f"{case}: seeded (exit {code}) what it should refuse"
        assert err.count("\n") <= 3, err
    got = registered(d)
    for p, h in got.items():  # nothing unverified is registered
        assert image.hashes.get(p) == h, f"{case}: registered {p} with {h}"
    if got:
        run_nix("store", "verify", "--no-trust", "--all", "--store", f"local?root={d}")
    if scenario.expect_ok:
        assert set(got) == set(image.hashes)
        assert os.path.islink(f"{d}/nix/store/{image.sym}")
    assert_store_canonical(d)
    state = d / ".nixlayer"
    leaked = [e for e in os.listdir(state) if e.startswith("seed-")] if state.is_dir() else []
    assert leaked == []
