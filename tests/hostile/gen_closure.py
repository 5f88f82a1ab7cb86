"""Hostile inputs for render, lock, build, run, fleet build and windmill export."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from tests.helpers import ssh_key
from tests.hostile.case import ANY, DIR, FIFO, NIX, REJECT, Case, Entry, Link
from tests.hostile.values import (
    HOSTILE_ALWAYS,
    STRINGS,
    VALUES,
    alias_bomb,
    corrupt,
    deep_json,
    deep_yaml,
    dump,
    truncate,
)

KEY = ssh_key("ci@runner")
SPEC_FIELDS = ("vm_name", "user_name", "library", "a0", "base", "shares")
LIB: dict[str, Entry] = {"lib/flake.nix": b"{ outputs = _: { }; }\n"}


def base_spec(name: str = "vm1") -> dict[str, Any]:
    return {
        "vm_name": name,
        "library": "{S}/lib",
        "profiles": ["devel"],
        "test_suites": ["ltp"],
        "ssh_keys": [KEY],
    }


# Where a hostile value goes in a spec: (name, field the error must name, how to place it).
PLACEMENTS: list[tuple[str, str, Any]] = [
    ("vm_name", "vm_name", lambda s, v: s.update(vm_name=v)),
    ("user_name", "user_name", lambda s, v: s.update(user_name=v)),
    ("library", "library", lambda s, v: s.update(library=v)),
    ("system", "system", lambda s, v: s.update(system=v)),
    ("update_lock", "update_lock", lambda s, v: s.update(update_lock=v)),
    ("ssh_key", "ssh_keys", lambda s, v: s.update(ssh_keys=[v])),
    ("ssh_keys", "ssh_keys", lambda s, v: s.update(ssh_keys=v)),
    ("profile", "profiles", lambda s, v: s.update(profiles=[v])),
    ("test_suite", "test_suites", lambda s, v: s.update(test_suites=[v])),
    ("share_path", "shares", lambda s, v: s.update(shares={v if isinstance(v, str) else repr(v): {"tag": "x"}})),
    ("share_tag", "shares", lambda s, v: s.update(shares={"/mnt/x": {"tag": v}})),
    ("share_options", "shares", lambda s, v: s.update(shares={"/mnt/x": {"tag": "x", "options": [v]}})),
    ("override_pkg", "overrides", lambda s, v: s.update(overrides=[{"pkg": v, "src": "{S}/src"}])),
    ("override_src", "overrides", lambda s, v: s.update(overrides=[{"pkg": "fio", "src": v}])),
    ("override_ref", "overrides", lambda s, v: s.update(overrides=[{"pkg": "fio", "src": "https://x/y.git", "ref": v}])),
    ("catalog", "catalog", lambda s, v: s.update(catalog=v)),
    ("unknown_field", "bogus", lambda s, v: s.update(bogus=v)),
]  # fmt: skip


def spec_field_cases() -> Iterator[Case]:
    for pname, field, place in PLACEMENTS:
        for vname, value in VALUES.items():
            for fmt in ("yaml", "json"):
                spec = base_spec()
                place(spec, value)
                name = f"spec.{fmt}"
                files: dict[str, Entry] = {**LIB, "src/VERSION": b"1\n", name: dump(spec, fmt)}
                yield Case(
                    id=f"render-{pname}-{vname}-{fmt}",
                    argv=("render", f"{{S}}/{name}", "--root", "{S}/root", "-q")
                    + (("--json",) if fmt == "json" else ()),
                    files=files,
                    # A library that is no local path is handed to nix (the stand-in refuses).
                    expect=REJECT
                    if vname in HOSTILE_ALWAYS
                    else NIX
                    if field == "library"
                    else ANY,
                    mention=(field, name),
                )


def raw_spec_texts(rng: random.Random) -> Iterator[tuple[str, bytes, str]]:
    """(name, bytes, expectation) for whole spec files."""
    good_yaml = dump(base_spec(), "yaml")
    good_json = dump(base_spec(), "json")
    for levels in (3, 5, 7, 9, 12):
        yield f"alias-bomb-{levels}", alias_bomb(levels), REJECT
    yield "alias-bomb-wide", alias_bomb(4, fanout=1000), REJECT
    yield "alias-recursive", b"a: &a [*a]\n", REJECT
    yield "alias-undefined", b"vm_name: *nope\n", REJECT
    for depth in (65, 1000, 100_000):
        yield f"deep-yaml-flow-{depth}", deep_yaml(depth), REJECT
        yield f"deep-json-{depth}", deep_json(depth), REJECT
    yield "deep-yaml-block-70", deep_yaml(70, flow=False), REJECT
    yield "dup-key-top", good_yaml + b"vm_name: other\n", REJECT
    yield "dup-key-nested", good_yaml + b"shares:\n  /x: {tag: a, tag: b}\n", REJECT
    yield "dup-key-json", good_json[:-1] + b', "vm_name": "x"}', REJECT
    yield "bom-yaml", b"\xef\xbb\xbf" + good_yaml, ANY
    yield "crlf-yaml", good_yaml.replace(b"\n", b"\r\n"), ANY
    yield "bom-crlf-json", b"\xef\xbb\xbf" + good_json.replace(b", ", b",\r\n"), ANY
    yield "merge-key", b"base: &b {user_name: x}\n" + good_yaml, REJECT  # unknown field base
    yield "nul-byte", good_yaml + b"\x00\n", REJECT
    yield "surrogate-escape-json", good_json[:-1] + b', "user_name": "\\udc80"}', REJECT
    yield "surrogate-escape-yaml", good_yaml + b'user_name: "\\uD800"\n', REJECT
    yield "two-documents", good_yaml + b"---\nvm_name: x\n", REJECT
    yield "python-tag", b"vm_name: !!python/object/apply:os.system [id]\n", REJECT
    yield "custom-tag", b"vm_name: !foo bar\n", REJECT
    yield "binary-tag", b"vm_name: !!binary aGVsbG8=\n", REJECT
    yield "timestamp", b"vm_name: 2001-12-14t21:59:43.10-05:00\n", REJECT
    yield "huge-int", b"vm_name: " + b"9" * 5000 + b"\n", REJECT
    yield "huge-int-json", b'{"vm_name": ' + b"9" * 5000 + b"}", REJECT
    yield "nan-json", good_json[:-1] + b', "update_lock": NaN}', REJECT
    yield "inf-yaml", good_yaml + b"update_lock: .inf\n", REJECT
    yield "empty", b"", REJECT
    yield "comment-only", b"# nothing\n", REJECT
    yield "list-top", b"- vm_name: x\n", REJECT
    yield "scalar-top", b"just a string\n", REJECT
    yield "null-top", b"null\n", REJECT
    yield "huge-file", b"# " + b"x" * (17 * 1024 * 1024) + b"\n", REJECT
    yield "long-line-key", b"k" * 200_000 + b": 1\n", REJECT
    for i in range(25):
        yield f"not-utf8-{i}", corrupt(good_yaml, rng), REJECT
    for i in range(25):
        yield f"truncated-yaml-{i}", truncate(good_yaml, rng), ANY
    for i in range(15):
        yield f"truncated-json-{i}", truncate(good_json, rng), ANY


def raw_spec_cases(rng: random.Random) -> Iterator[Case]:
    for name, data, expect in raw_spec_texts(rng):
        ext = "json" if "json" in name else "yaml"
        fname = f"spec.{ext}"
        files = {**LIB, fname: data}
        argv = ("render", f"{{S}}/{fname}", "--root", "{S}/root", "-q", "--json")
        # Text the loader accepts is then refused by the spec model, naming a field.
        yield Case(f"render-raw-{name}", argv, files, expect, ("SPEC", fname, *SPEC_FIELDS))
        if rng.random() < 0.3:  # the same text on standard input
            yield Case(
                f"render-stdin-{name}",
                ("render", "-", "--root", "{S}/root"),
                LIB,
                expect,
                ("SPEC", "standard input", *SPEC_FIELDS),
                stdin=data,
            )


# Things found where a file (or a directory) was expected.
def path_variants(kind: str) -> dict[str, tuple[str, dict[str, Entry]]]:
    return {
        "missing": ("{S}/nope", {}),
        "proc1": ("/proc/1", {}),
        "dev-zero": ("/dev/zero", {}),
        "dev-null": ("/dev/null", {}),
        "directory" if kind == "file" else "a-file": ("{S}/thing", {"thing": DIR if kind == "file" else b"x\n"}),
        "fifo": ("{S}/fifo", {"fifo": FIFO}),
        "dangling-link": ("{S}/link", {"link": Link("{S}/gone")}),
        "link-loop": ("{S}/loop1", {"loop1": Link("{S}/loop2"), "loop2": Link("{S}/loop1")}),
        "link-to-proc": ("{S}/plink", {"plink": Link("/proc/1")}),
        "empty-name": ("", {}),
        "nul": ("{S}/a\x00b", {}),
        "not-utf8": ("{S}/\udcff\udcfe", {}),
        "long-name": ("{S}/" + "n" * 300, {}),
    }  # fmt: skip


def spec_path_cases() -> Iterator[Case]:
    for name, (path, files) in path_variants("file").items():
        for cmd in ("render", "run"):
            yield Case(
                f"{cmd}-spec-path-{name}",
                (cmd, path, "--root", "{S}/root", "--json"),
                {**LIB, **files},
                REJECT,
                ("SPEC", "spec", path.replace("{S}", "")[:20] or "SPEC"),
            )


def flag_cases() -> Iterator[Case]:
    spec: dict[str, Entry] = {**LIB, "spec.json": dump(base_spec(), "json")}
    argv0 = ("render", "{S}/spec.json", "--root", "{S}/root", "-q")
    for flag in ("--vm-name", "--user-name", "--profile", "--test-suite", "--ssh-key"):
        for vname, value in STRINGS.items():
            exp = REJECT if vname in HOSTILE_ALWAYS else ANY
            yield Case(
                f"render-flag{flag}-{vname}",
                (*argv0, flag, value),
                spec,
                exp,
                (
                    flag,
                    flag[2:].replace("-", "_"),
                    "vm_name",
                    "ssh_keys",
                    "profiles",
                    "test_suites",
                ),
            )
    for vname, value in STRINGS.items():
        exp = REJECT if vname in HOSTILE_ALWAYS else ANY
        yield Case(
            f"render-set-user-{vname}",
            (*argv0, "--set", f"user_name={value}"),
            spec,
            exp,
            ("--set", "user_name"),
        )
    sets = {
        "no-equals": "user_name", "empty-field": "=x", "bad-yaml": "shares={/mnt/x: [",
        "bomb": "shares=" + alias_bomb(9).decode().replace("\n", ", ").join("{}"),
        "deep": "profiles=" + "[" * 200 + "]" * 200, "dup": "shares={a: 1, a: 2}",
        "tag": "vm_name=!!python/object:os.system x", "unknown": "nosuch=1",
        "nested-name": "shares.x=1", "huge-int": "vm_name=" + "9" * 5000, "nan": "update_lock=.nan",
        "multi-doc": "vm_name=a\n---\nb", "tab": "vm_name=\tx",
    }  # fmt: skip
    for sname, value in sets.items():
        yield Case(
            f"render-set-{sname}",
            (*argv0, "--set", value, "--json"),
            spec,
            REJECT,
            ("--set", "SPEC", "nosuch", "shares"),
        )
    for name, (path, files) in {
        **path_variants("dir"),
        "proc-self": ("/proc/self", {}),
        "sys": ("/sys/kernel", {}),
        "dev": ("/dev", {}),
    }.items():
        if name in ("missing", "long-name", "dangling-link"):
            continue  # a new root is created: valid
        yield Case(
            f"render-root-{name}",
            ("render", "{S}/spec.json", "--root", path, "-q"),
            {**spec, **files},
            REJECT,
            ("root", path.replace("{S}", "")[:12] or "root"),
        )
    escape: dict[str, Entry] = {**spec, "outside": DIR, "root/vm1": Link("{S}/outside")}
    yield Case("render-root-vm-link-outside", (*argv0,), escape, REJECT, ("vm_name", "root"))
    for name, (path, files) in path_variants("dir").items():
        yield Case(
            f"render-library-{name}",
            ("render", "{S}/spec.json", "--root", "{S}/root", "--library", path),
            {**spec, **files},
            ANY if name == "empty-name" else REJECT,  # empty: the spec's library is used
            ("library", "--library"),
        )
    for name, (path, files) in path_variants("file").items():
        yield Case(
            f"render-catalog-path-{name}",
            (*argv0, "--catalog", path),
            {**spec, **files},
            ANY if name == "empty-name" else REJECT,  # empty: no catalog given
            ("--catalog",),
        )


def catalog_docs(rng: random.Random) -> Iterator[tuple[str, bytes, str]]:
    good: dict[str, Any] = {"profiles": ["devel"], "test_suites": ["ltp"]}
    yield "valid", json.dumps(good).encode(), ANY
    for field in (
        "profiles",
        "test_suites",
        "default_profiles",
        "host_roles",
        "gates",
        "reserved_tags",
        "library_input",
        "configuration",
        "bogus",
    ):
        for vname, value in VALUES.items():
            doc = dict(good)
            doc[field] = (
                [value]
                if field
                in ("profiles", "test_suites", "default_profiles", "host_roles", "reserved_tags")
                and vname in STRINGS
                else value
            )
            if field == "gates" and vname in STRINGS:
                doc[field] = {"devel": value}
            yield f"{field}-{vname}", dump(doc, "json"), REJECT if vname in HOSTILE_ALWAYS else ANY
    yield "dup-profiles", b'{"profiles": ["a"], "profiles": ["b"], "test_suites": []}', REJECT
    yield "deep", deep_json(5000), REJECT
    yield "not-utf8", corrupt(json.dumps(good).encode(), rng), REJECT
    yield "nul-name", b'{"profiles": ["a\\u0000b"], "test_suites": []}', REJECT
    yield "list-top", b"[]", REJECT
    yield "yaml-not-json", b"profiles: [a]\n", REJECT
    yield "default-unknown", b'{"profiles": ["a"], "test_suites": [], "default_profiles": ["b"]}', REJECT  # fmt: skip


def catalog_cases(rng: random.Random) -> Iterator[Case]:
    spec = {
        **LIB,
        "spec.json": dump({**base_spec(), "profiles": None, "test_suites": None}, "json"),
    }
    for name, data, expect in catalog_docs(rng):
        yield Case(
            f"render-catalog-{name}",
            ("render", "{S}/spec.json", "--root", "{S}/root", "-q", "--catalog", "{S}/cat.json"),
            {**spec, "cat.json": data},
            expect,
            ("--catalog", "cat.json"),
        )
        if rng.random() < 0.25:  # the same catalog shipped by the library
            yield Case(
                f"render-libcatalog-{name}",
                ("render", "{S}/spec.json", "--root", "{S}/root", "-q"),
                {**spec, "lib/nixlayer-catalog.json": data},
                expect,
                ("catalog",),
            )


# --- lock, build --------------------------------------------------------------------

RENDERED: dict[str, Entry] = {
    "root/vm1/flake.nix": b'{ inputs.nixos-flake.url = "path:/x"; outputs = _: { }; }\n',
    "root/vm1/default.nix": b"{ }\n",
}


def lock_docs(rng: random.Random) -> Iterator[tuple[str, bytes, str]]:
    good: dict[str, Any] = {"nodes": {"root": {"inputs": {"nixos-flake": "lib"}}, "lib": {"locked": {"type": "path", "path": "/x", "narHash": "sha256-x"}}}, "root": "root", "version": 7}  # fmt: skip
    yield "valid", json.dumps(good).encode(), NIX
    mutations: dict[str, Any] = {
        "nodes-list": {**good, "nodes": []}, "nodes-missing": {"root": "root"}, "root-missing": {**good, "root": "nope"},
        "root-list": {**good, "root": ["r"]}, "root-int": {**good, "root": 1}, "inputs-list": {**good, "nodes": {"root": {"inputs": ["a"]}}},
        "node-str": {**good, "nodes": {"root": "x"}}, "locked-str": {**good, "nodes": {**good["nodes"], "lib": {"locked": "x"}}},
        "path-int": {**good, "nodes": {**good["nodes"], "lib": {"locked": {"type": "path", "path": 1, "narHash": "x"}}}},
        "input-to-missing-node": {**good, "nodes": {"root": {"inputs": {"nixos-flake": "gone"}}}}, "top-list": [good], "top-str": "lock",
    }  # fmt: skip
    for name, doc in mutations.items():
        yield (
            name,
            json.dumps(doc).encode(),
            ANY if name in ("input-to-missing-node", "path-int", "locked-str") else REJECT,
        )
    text = json.dumps(good)
    yield "dup-key", text[:-1].encode() + b', "root": "root"}', REJECT
    yield "deep", deep_json(3000), REJECT
    yield "surrogate", text.replace('"/x"', '"\\udc80"').encode(), REJECT
    yield "nul", text.replace('"/x"', '"\\u0000"').encode(), REJECT
    yield "bom", b"\xef\xbb\xbf" + text.encode(), NIX
    yield "empty", b"", REJECT
    for i in range(8):
        yield f"not-utf8-{i}", corrupt(text.encode(), rng), REJECT
        yield f"truncated-{i}", truncate(text.encode(), rng), REJECT


def lock_build_cases(rng: random.Random) -> Iterator[Case]:
    for name, data, expect in lock_docs(rng):
        files = {**RENDERED, "root/vm1/flake.lock": data}
        yield Case(
            f"lock-flake.lock-{name}",
            ("lock", "{S}/root/vm1", "--json"),
            files,
            expect if expect != ANY else NIX,
            ("flake.lock",),
        )
    for name, (path, files) in path_variants("dir").items():
        yield Case(
            f"lock-dir-{name}",
            ("lock", path),
            files,
            REJECT,
            ("config_dir", "CONFIG_DIR", "flake.nix"),
        )
        yield Case(
            f"build-dir-{name}",
            ("build", path, "--json"),
            files,
            REJECT,
            ("config_dir", "CONFIG_DIR", "flake.nix"),
        )
    odd: dict[str, dict[str, Entry]] = {"flake-is-dir": {"root/vm1/flake.nix": DIR}, "flake-is-fifo": {"root/vm1/flake.nix": FIFO}, "flake-link-out": {"root/vm1/flake.nix": Link("/proc/1/environ")}}  # fmt: skip
    for name, files in odd.items():
        yield Case(
            f"lock-{name}", ("lock", "{S}/root/vm1"), files, REJECT, ("config_dir", "flake.nix")
        )
    for vname, value in STRINGS.items():
        for flag in ("--configuration", "--system"):
            yield Case(
                f"build{flag}-{vname}",
                ("build", "{S}/root/vm1", flag, value, "--json"),
                RENDERED,
                REJECT if vname in HOSTILE_ALWAYS else NIX,
                (flag,),
            )
    for name, (path, files) in path_variants("file").items():
        yield Case(
            f"build-out-link-{name}",
            ("build", "{S}/root/vm1", "--out-link", path),
            {**RENDERED, **files},
            NIX,
            ("--out-link",),
        )
