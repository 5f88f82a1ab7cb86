from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import StandIn, make_stand_in, offline_nix_config


@pytest.fixture(scope="session", autouse=True)
def offline_nix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every nix call in the tests runs offline: no substituters, no global registry."""
    registry = tmp_path_factory.mktemp("registry") / "registry.json"
    old = os.environ.get("NIX_CONFIG")
    os.environ["NIX_CONFIG"] = offline_nix_config(registry)
    for var in ("NIXLAYER_ROOT", "NIXLAYER_LIBRARY", "WORKERS_DIR", "WORKER_INDEX"):
        os.environ.pop(var, None)
    yield
    if old is None:
        os.environ.pop("NIX_CONFIG", None)
    else:
        os.environ["NIX_CONFIG"] = old


def _require_nix() -> None:
    if shutil.which("nix") is None:
        if os.environ.get("NIXLAYER_REQUIRE_NIX"):
            pytest.fail("nix is required (NIXLAYER_REQUIRE_NIX is set) but not on PATH")
        pytest.skip("nix is not installed")


@pytest.fixture(scope="session")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> StandIn:
    """A locked stand-in library shared by the tests that do not modify it."""
    _require_nix()
    return make_stand_in(tmp_path_factory.mktemp("stand-in"))


@pytest.fixture
def own_stand_in(tmp_path: Path) -> StandIn:
    """A private copy, for tests that edit the library."""
    _require_nix()
    return make_stand_in(tmp_path / "lib")


@pytest.fixture
def nix_available() -> None:
    _require_nix()


def pytest_report_header() -> str:
    """Which Nix this run tests, and on which store."""
    nix = shutil.which("nix")
    if nix is None:
        return "nix: not on PATH"
    proc = subprocess.run(
        [nix, "--version"], check=False, capture_output=True, text=True, timeout=30
    )
    return f"nix: {proc.stdout.strip()} ({nix})"


# The layers that drive real Nix: `-m nix` selects them (CI runs them on every Nix
# version), `-m "not nix"` leaves the units and the flows on the fake Nix, which run anywhere.
_REAL_NIX_DIRS = {"integration", "e2e", "fleet", "layer", "runner_store"}
_REAL_NIX_FIXTURES = {"stand_in", "own_stand_in", "nix_available", "layered"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = item.path.parent.name
        fixtures = set(getattr(item, "fixturenames", ()))
        if layer in _REAL_NIX_DIRS or fixtures & _REAL_NIX_FIXTURES:
            item.add_marker(pytest.mark.nix)
