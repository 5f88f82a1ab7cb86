"""The NAR hasher agrees with `nix hash path` on arbitrary trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixlayer.runner_store.nar import nar_hash
from tests.helpers import run_nix

name = st.text(
    st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12
).filter(lambda n: n not in (".", ".."))
leaf = st.one_of(
    st.tuples(st.just("file"), st.binary(max_size=3000), st.booleans()),
    st.tuples(
        st.just("link"),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30),
        st.just(False),
    ),
)
tree = st.recursive(
    leaf, lambda children: st.dictionaries(name, children, max_size=4), max_leaves=12
)


def write(path: Path, node: object) -> None:
    if isinstance(node, dict):
        path.mkdir()
        for k, v in node.items():
            write(path / k, v)
        return
    assert isinstance(node, tuple)
    kind, data, executable = node
    if kind == "file":
        path.write_bytes(data)
        path.chmod(0o755 if executable else 0o644)
    else:
        os.symlink(data, path)


@pytest.mark.nix
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(node=tree)
def test_matches_nix_hash_path(
    nix_available: None, tmp_path_factory: pytest.TempPathFactory, node: object
) -> None:
    root = tmp_path_factory.mktemp("nar") / "t"
    write(root, node)
    assert nar_hash(root) == run_nix("hash", "path", "--type", "sha256", str(root)).strip()
