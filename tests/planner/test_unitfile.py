"""The unit-file parser: upstream's grammar, checked against systemd's own rules
where the two agree, and the fast path checked against the full tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nixlayer.planner.compare import Change, compare_units
from nixlayer.planner.ini import IniError, _parse_fast, _Tokenizer, parse_entries
from nixlayer.planner.unitfile import UnitTree, get_bool, parse_text

section_name = st.from_regex(r"[A-Z][A-Za-z-]{0,10}", fullmatch=True)
key = st.from_regex(r"[A-Z][A-Za-z0-9-]{0,12}", fullmatch=True)
# Values systemd and upstream read alike: no quote at the start, no backslash,
# no whitespace before # or ;, no newline.
value_char = st.characters(
    codec="utf-8", exclude_characters="\n\r\\\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
)
value = st.text(value_char, max_size=30).filter(
    lambda v: (
        v[:1] not in ('"', "'")
        and " #" not in v
        and " ;" not in v
        and "\t#" not in v
        and "\t;" not in v
    )
)
line = st.one_of(
    st.tuples(st.just("kv"), key, value),
    st.tuples(st.just("comment"), st.sampled_from(["#", ";"]), value),
    st.tuples(st.just("blank"), st.just(""), st.sampled_from(["", "  ", "\t"])),
)
unit_file = st.lists(st.tuples(section_name, st.lists(line, max_size=6)), max_size=4)


def render(doc: list[tuple[str, list[tuple[str, str, str]]]]) -> str:
    out = []
    for name, lines in doc:
        out.append(f"[{name}]")
        for kind, a, b in lines:
            out.append(f"{a}={b}" if kind == "kv" else f"{a}{b}" if kind == "comment" else b)
    return "\n".join(out) + "\n"


def systemd_model(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's reading (systemd.syntax(7)): comments at line start, `[Section]`,
    `Key=Value` split at the first `=`, whitespace around both stripped, an empty
    assignment resets the list."""
    unit: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            section = stripped[1:-1]
            if section != "Install":
                unit.setdefault(section, {})
            continue
        k, _, v = stripped.partition("=")
        if section is None or section == "Install":
            continue
        values = unit[section].setdefault(k.strip(), [])
        if v.strip():
            values.append(v.strip())
        else:
            values.clear()
    return unit


@given(unit_file)
def test_agrees_with_systemd_on_common_grammar(
    doc: list[tuple[str, list[tuple[str, str, str]]]],
) -> None:
    text = render(doc)
    assert parse_text(text) == systemd_model(text)


@given(unit_file)
def test_fast_path_equals_tokenizer(doc: list[tuple[str, list[tuple[str, str, str]]]]) -> None:
    text = render(doc)
    fast = _parse_fast(text)
    assert fast is None or fast == _Tokenizer(text).run()


def test_upstream_multiline_value() -> None:
    text = "[Service]\nExecStart=/nix/store/x/bin/true \\\n# ignored\n; ignored\n  blah blah\n"
    assert parse_entries(text)[1] == ("Service", "ExecStart", "/nix/store/x/bin/true   blah blah")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[S]\nA=x # comment\n", "x"),
        ("[S]\nA=x;y\n", "x;y"),
        ('[S]\nA="q # not a comment" tail\n', "q # not a comment tail"),
        ("[S]\nA='PATH=/a:/b'\n", "PATH=/a:/b"),
        ("[S]\nA=esc\\x2dape\n", "esc\\x2dape"),
        ("[S]\nA : colon\n", "colon"),
        ("[S]\nA=a \\\n  b #c\n  d\n", "a   b   d"),
    ],
)
def test_upstream_quirks(text: str, expected: str) -> None:
    assert parse_entries(text)[-1][2] == expected


def test_keys_before_a_section_and_install_are_dropped() -> None:
    assert parse_text("A=1\n[Unit]\n[Install]\nWantedBy=x\n") == {"Unit": {}}


def test_cleared_key_stays_present() -> None:
    assert parse_text("[Service]\nA=1\n", "[Service]\nA=\n") == {"Service": {"A": []}}
    assert (
        compare_units(parse_text("[Service]\nB=1\n"), parse_text("[Service]\nB=1\nA=\n"))
        is Change.RESTART
    )


def test_booleans() -> None:
    u = parse_text("[Service]\nX=yes\nX=True\nY=on\n")
    assert get_bool(u, "Service", "X", True) is False  # last value, case-sensitive
    assert get_bool(u, "Service", "Y", False) is True
    assert get_bool(u, "Service", "Z", True) is True


@pytest.mark.parametrize("text", ["[Unit\nA=1\n", "[S]\nA='open\n", "[S]\nno equals sign"])
def test_unparsable(text: str) -> None:
    with pytest.raises(IniError):
        _Tokenizer(text).run()


def test_tree_merges_dropins_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.service.d").mkdir()
    (tmp_path / "a.service").write_text("[Service]\nA=1\n")
    (tmp_path / "a.service.d" / "20-b.conf").write_text("[Service]\nA=3\n")
    (tmp_path / "a.service.d" / "10-a.conf").write_text("[Service]\nA=\nA=2\n")
    (tmp_path / "a.service.d" / "ignored.txt").write_text("[Service]\nA=9\n")
    assert UnitTree(tmp_path).parse("a.service", "a.service") == {"Service": {"A": ["2", "3"]}}
