"""runner-store seed on the recording fake Nix: a small in-memory store database stands in
for Nix's; the image is a real docker-save archive. No Nix needed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from nixlayer.nix import commands
from nixlayer.runner_store.nar import nar_hash_at
from nixlayer.runner_store.seed import seed
from tests.fakenix import FakeNix
from tests.runner_store.images import docker_save, layers_for

NAMES = [f"{c * 32}-pkg-{c}" for c in "abc"]


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, dict[str, tuple[str, int]]]:
    """An image whose store holds three paths, and their NAR hashes and sizes."""
    root = tmp_path / "image"
    for name in NAMES:
        (root / "nix/store" / name).mkdir(parents=True)
        (root / "nix/store" / name / "file").write_text(f"{name}\n")
    db = root / "nix/var/nix/db"
    db.mkdir(parents=True)
    (db / "db.sqlite").write_text("a database")
    (db / "schema").write_text("10")
    store = os.open(root / "nix/store", os.O_RDONLY | os.O_DIRECTORY)
    try:
        hashes = {f"/nix/store/{n}": nar_hash_at(store, n) for n in NAMES}
    finally:
        os.close(store)
    return docker_save(tmp_path / "image.tar", layers_for(root)), hashes


class Store:
    """What the fake Nix keeps in DIR's database: the registered paths. Like Nix, it
    makes DIR's store and database directories on first use."""

    def __init__(self, d: Path, hashes: dict[str, tuple[str, int]], keyed: bool) -> None:
        self.d = d
        self.hashes = hashes
        self.keyed = keyed
        self.valid: list[str] = []

    def make(self) -> None:
        (self.d / "nix/store").mkdir(parents=True, exist_ok=True)
        (self.d / "nix/var/nix/db").mkdir(parents=True, exist_ok=True)

    def load_db(self, _argv: list[str], stdin: str | None) -> None:
        self.make()
        self.valid += [p for p in (stdin or "").split() if p.startswith("/nix/store/")]

    def listing(self, paths: list[str]) -> str:
        infos = [
            {
                "path": p,
                "narHash": self.hashes[p][0],
                "narSize": self.hashes[p][1],
                "references": [],
            }
            for p in paths
        ]
        if not self.keyed:  # Nix 2.8: a list
            return json.dumps(infos)
        return json.dumps({i.pop("path"): i for i in infos})  # 2.19+: keyed by path

    def path_info(self, _argv: list[str], _stdin: str | None) -> str:
        self.make()
        return self.listing(self.valid)


def fake(version: str, d: Path, hashes: dict[str, tuple[str, int]]) -> tuple[FakeNix, Store]:
    nix = FakeNix(version)
    store = Store(d, hashes, keyed=not version.startswith("2.8"))
    dir_store = f"local?root={d}"
    nix.on("nix", "path-info", "--json", contains=[dir_store], answer=store.path_info)
    nix.on("nix", "path-info", "--json", stdout=store.listing(sorted(hashes)))
    nix.on("nix-store", "--dump-db", answer=lambda argv, _: "\n".join(argv[2:-2]) + "\n")
    nix.on("nix-store", "--load-db", effect=store.load_db)
    return nix, store


def unwrapped(calls: list[list[str]], d: Path) -> list[list[str]]:
    """Every call ran where no symlink under DIR is followed (issue 14): the calls
    without that wrapper."""
    wrap = commands.nosymfollow(d)
    assert all(c[: len(wrap)] == wrap for c in calls), calls
    return [c[len(wrap) :] for c in calls]


def normalised(calls: list[list[str]], d: Path) -> list[list[str]]:
    """The seed's staging directory is a fresh temporary one: name it <stage>."""
    stage = re.compile(r"local\?root=" + re.escape(str(d)) + r"/\.nixlayer/seed-[^/]+/image")
    return [[stage.sub("local?root=<stage>", a) for a in c] for c in unwrapped(calls, d)]


@pytest.mark.parametrize("version", ["2.8.0", "2.26.3", "2.34.8"])
def test_seed_registers_what_it_copied_then_checks(
    tmp_path: Path, archive: tuple[Path, dict[str, tuple[str, int]]], version: str
) -> None:
    image, hashes = archive
    d = tmp_path / "shared"
    nix, store = fake(version, d, hashes)
    result = seed(d, image_archive=image, nix=nix)
    fmt = ["--json-format", "1"] if version == "2.34.8" else []
    paths = sorted(hashes)
    in_dir = ["nix", "path-info", "--json", *fmt, "--store", f"local?root={d}", "--all"]
    assert normalised(nix.calls, d) == [
        in_dir,  # what DIR holds (and its leftovers)
        ["nix", "path-info", "--json", *fmt, "--store", "local?root=<stage>", "--all"],
        in_dir,  # again, under the lock on the paths it copies
        ["nix-store", "--dump-db", *paths, "--store", "local?root=<stage>"],
        ["nix-store", "--load-db", "--store", f"local?root={d}"],
        in_dir,  # the check: every image path is valid in DIR
    ]
    assert result.copied == paths and sorted(store.valid) == paths
    assert all((d / p.lstrip("/") / "file").is_file() for p in paths)

    # Again: nothing to copy; DIR's database is read before and after.
    nix.calls.clear()
    again = seed(d, image_archive=image, nix=nix)
    assert again.copied == []
    calls = unwrapped(nix.calls, d)
    assert [c[:2] for c in calls] == [["nix", "path-info"]] * len(calls)
    assert not any(c[0] == "nix-store" for c in calls)


def test_a_path_whose_content_differs_is_never_registered(
    tmp_path: Path, archive: tuple[Path, dict[str, tuple[str, int]]]
) -> None:
    from nixlayer.errors import NixlayerError

    image, hashes = archive
    d = tmp_path / "shared"
    lying = dict(hashes)
    lying[f"/nix/store/{NAMES[1]}"] = hashes[f"/nix/store/{NAMES[0]}"]
    nix, store = fake("2.34.8", d, lying)
    with pytest.raises(NixlayerError, match="does not match the image's database"):
        seed(d, image_archive=image, nix=nix)
    assert store.valid == []
    assert all(c[:2] == ["nix", "path-info"] for c in unwrapped(nix.calls, d))
