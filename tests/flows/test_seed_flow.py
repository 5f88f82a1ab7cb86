"""runner-store seed on the recording fake Nix: a small in-memory store database stands in
for Nix's; the image is a real docker-save archive. No Nix needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nixlayer.runner_store.nar import nar_hash
from nixlayer.runner_store.seed import seed
from tests.fakenix import FakeNix
from tests.runner_store.images import docker_save, layers_for

NAMES = [f"{c * 32}-pkg-{c}" for c in "abc"]


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An image whose store holds three paths, and their NAR hashes."""
    root = tmp_path / "image"
    for name in NAMES:
        (root / "nix/store" / name).mkdir(parents=True)
        (root / "nix/store" / name / "file").write_text(f"{name}\n")
    db = root / "nix/var/nix/db"
    db.mkdir(parents=True)
    (db / "db.sqlite").write_text("a database")
    (db / "schema").write_text("10")
    hashes = {f"/nix/store/{n}": nar_hash(root / "nix/store" / n) for n in NAMES}
    return docker_save(tmp_path / "image.tar", layers_for(root)), hashes


class Store:
    """What the fake Nix keeps in DIR's database: the registered paths."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.valid: list[str] = []

    def load_db(self, _argv: list[str], stdin: str | None) -> None:
        self.valid += [p for p in (stdin or "").split() if p.startswith("/nix/store/")]
        (self.d / "nix/var/nix/db").mkdir(parents=True, exist_ok=True)
        (self.d / "nix/var/nix/db/db.sqlite").touch()

    def all_paths(self, _argv: list[str], _stdin: str | None) -> str:
        return "".join(f"{p}\n" for p in self.valid)


def fake(version: str, d: Path, hashes: dict[str, str]) -> tuple[FakeNix, Store]:
    nix = FakeNix(version)
    store = Store(d)
    infos = [{"path": p, "narHash": h, "narSize": 1, "references": []} for p, h in hashes.items()]
    listing = (
        json.dumps(infos)  # Nix 2.8: a list
        if version.startswith("2.8")
        else json.dumps({i.pop("path"): i for i in infos})  # 2.19+: keyed by path
    )
    nix.on("nix", "path-info", "--json", stdout=listing)
    nix.on("nix", "path-info", "--all", contains=[f"local?root={d}"], answer=store.all_paths)
    nix.on("nix-store", "--dump-db", answer=lambda argv, _: "\n".join(argv[2:-2]) + "\n")
    nix.on("nix-store", "--load-db", effect=store.load_db)
    return nix, store


def normalised(calls: list[list[str]], d: Path) -> list[list[str]]:
    """The seed's staging directory is a fresh temporary one: name it <stage>."""
    stage = re.compile(r"local\?root=" + re.escape(str(d)) + r"/\.nixlayer/seed-[^/]+/root")
    return [[stage.sub("local?root=<stage>", a) for a in c] for c in calls]


@pytest.mark.parametrize("version", ["2.8.0", "2.26.3", "2.34.8"])
def test_seed_registers_what_it_copied_then_checks(
    tmp_path: Path, archive: tuple[Path, dict[str, str]], version: str
) -> None:
    image, hashes = archive
    d = tmp_path / "shared"
    nix, store = fake(version, d, hashes)
    result = seed(d, image_archive=image, nix=nix)
    fmt = ["--json-format", "1"] if version == "2.34.8" else []
    paths = sorted(hashes)
    assert normalised(nix.calls, d) == [
        ["nix", "path-info", "--json", *fmt, "--store", "local?root=<stage>", "--all"],
        ["nix-store", "--dump-db", *paths, "--store", "local?root=<stage>"],
        ["nix-store", "--load-db", "--store", f"local?root={d}"],
        ["nix", "path-info", "--all", "--store", f"local?root={d}"],
    ]
    assert result.copied == paths and sorted(store.valid) == paths
    assert all((d / p.lstrip("/") / "file").is_file() for p in paths)

    # Again: nothing to copy; DIR's database is read before and after.
    nix.calls.clear()
    again = seed(d, image_archive=image, nix=nix)
    assert again.copied == []
    assert [c[:2] for c in normalised(nix.calls, d)] == [["nix", "path-info"]] * 3


def test_a_path_whose_content_differs_is_never_registered(
    tmp_path: Path, archive: tuple[Path, dict[str, str]]
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
    assert [c[:2] for c in nix.calls] == [["nix", "path-info"]]
