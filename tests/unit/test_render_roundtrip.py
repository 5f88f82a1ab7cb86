"""Every string a user gives comes back byte-identical when Nix evaluates the
rendered default.nix and flake.nix (real evaluator, arbitrary strings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixlayer.closure.flake_nix import render_flake
from nixlayer.closure.library import resolve_library
from nixlayer.closure.module_nix import render_module
from nixlayer.closure.spec import Override, Share, VMSpec, resolve_spec
from tests.helpers import FIXTURES, nix_eval_file, ssh_key

text = st.one_of(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
        min_size=1,
        max_size=30,
    ),
    st.lists(
        st.sampled_from(['"', "\\", "$", "{", "${", "''", "\n", "é", "a"]), min_size=1, max_size=10
    ).map("".join),
)
one_line = text.filter(lambda s: "\n" not in s and "\r" not in s and s.strip() == s and s != "")
mount = text.map(lambda s: "/" + s.replace("/", "_")).filter(lambda s: s not in ("/.", "/.."))

# Evaluate the module with stub arguments; laziness keeps the imports unforced.
MODULE_APPLY = """m: let r = m {
  config.nixos-flake.user.name = "kdevops";
  lib.mkAfter = x: x;
  pkgs = { };
  nixos-flake = { };
  inputs = { };
}; in {
  host = r.networking.hostName;
  user = r.nixos-flake.user.name;
  rootKeys = r.users.users.root.openssh.authorizedKeys.keys;
  userKeys = r.users.users.kdevops.openssh.authorizedKeys.keys;
  shares = r.nixos-flake.shares or { };
}"""


@pytest.mark.nix
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    comments=st.lists(one_line, min_size=1, max_size=3),
    shares=st.dictionaries(mount, st.tuples(text, st.lists(text, max_size=3)), max_size=3),
)
def test_module_strings_round_trip(
    nix_available: None,
    tmp_path: Path,
    comments: list[str],
    shares: dict[str, tuple[str, list[str]]],
) -> None:
    tags = [t for t, _ in shares.values()]
    if len(set(tags)) != len(tags) or {"store", "modules"} & set(tags):
        return
    keys = [ssh_key(c, seed=bytes([i + 1])) for i, c in enumerate(comments)]
    spec = VMSpec(
        vm_name="vm",
        ssh_keys=tuple(keys),
        profiles=(),
        test_suites=(),
        shares={m: Share(tag=t, options=tuple(o)) for m, (t, o) in shares.items()},
        home=False,
    )
    f = tmp_path / "default.nix"
    f.write_text(render_module(resolve_spec(spec)), encoding="utf-8")
    got = nix_eval_file(f, MODULE_APPLY)
    assert got["host"] == "vm"
    assert got["rootKeys"] == got["userKeys"] == [k.strip() for k in keys]
    assert got["shares"] == {m: {"tag": t, "options": o} for m, (t, o) in shares.items()}


@pytest.mark.nix
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path_src=text, url=text, ref=st.one_of(st.none(), text))
def test_flake_inputs_round_trip(
    nix_available: None, tmp_path: Path, path_src: str, url: str, ref: str | None
) -> None:
    lib = resolve_library(str(FIXTURES / "nixos-flake"))
    overrides = [
        Override(pkg="fio", src="/" + path_src),
        Override(pkg="kmod", src="x" + url, ref=ref),
    ]
    flake = render_flake(
        lib.template,
        origin="t",
        library_ref='path:/lib/with "odd" ${chars}',
        library_input="nixos-flake",
        overrides=overrides,
        system="x86_64-linux",
    )
    f = tmp_path / "flake.nix"
    f.write_text(flake, encoding="utf-8")
    inputs = nix_eval_file(f, "f: f.inputs")
    assert inputs["nixos-flake"]["url"] == 'path:/lib/with "odd" ${chars}'
    assert inputs["fio-src"] == {"type": "path", "path": "/" + path_src, "flake": False}
    expected = {"type": "git", "url": "x" + url, "submodules": True, "flake": False}
    if ref:
        expected["ref"] = ref
    assert inputs["kmod-src"] == expected
