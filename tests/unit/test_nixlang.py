"""The escaping module, proved against the real Nix evaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixlayer.nix import nixlang
from nixlayer.nix.nixlang import Raw
from tests.helpers import run_nix

# Any Unicode text Nix can hold: everything but NUL and lone surrogates.
nix_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=40,
)
# Weighted towards the characters that matter to the Nix lexer.
tricky = st.lists(
    st.sampled_from(['"', "\\", "$", "{", "}", "${", "$${", "''", "\n", "\r", "\t", "é", "☃", "a"]),
    max_size=12,
).map("".join)
any_text = st.one_of(nix_text, tricky)


def _eval_expr(tmp: Path, expr: str) -> object:
    f = tmp / "expr.nix"
    f.write_text(expr, encoding="utf-8")
    return json.loads(run_nix("eval", "--json", "--file", str(f)))


def test_escapes_are_minimal_and_readable() -> None:
    assert nixlang.string('a"b') == '"a\\"b"'
    assert nixlang.string("${x}") == '"\\${x}"'
    assert nixlang.string("\\") == '"\\\\"'
    assert nixlang.string("a\nb") == '"a\\nb"'
    assert nixlang.string("é") == '"é"'


def test_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        nixlang.string("a\x00b")


def test_attr_names() -> None:
    assert nixlang.attr_name("build-tools") == "build-tools"
    assert nixlang.attr_name("if") == '"if"'
    assert nixlang.attr_name("/mnt/x") == '"/mnt/x"'
    assert nixlang.attr_name("A\n") == '"A\\n"'  # found by hypothesis: `$` matches before \n
    assert (
        nixlang.attr_path("nixos-flake", "monitoring", "enable") == "nixos-flake.monitoring.enable"
    )


def test_values_render_nested() -> None:
    text = nixlang.value({"a": [True, None, 3, "x", Raw("f y")], "b c": {}})
    assert (
        text == '{\n  a = [\n    true\n    null\n    3\n    "x"\n    (f y)\n  ];\n  "b c" = { };\n}'
    )


@pytest.mark.nix
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(strings=st.lists(any_text, min_size=1, max_size=8))
def test_strings_round_trip_through_nix(
    nix_available: None, tmp_path: Path, strings: list[str]
) -> None:
    assert _eval_expr(tmp_path, nixlang.value(strings)) == strings


@pytest.mark.nix
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(any_text, min_size=1, max_size=6, unique=True))
def test_attr_names_round_trip_through_nix(
    nix_available: None, tmp_path: Path, names: list[str]
) -> None:
    expr = "{ " + " ".join(f"{nixlang.attr_name(n)} = {i};" for i, n in enumerate(names)) + " }"
    assert _eval_expr(tmp_path, expr) == {n: i for i, n in enumerate(names)}
