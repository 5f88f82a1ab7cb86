"""Hostile inputs for fleet build, windmill export, plan, switch and prepare."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from tests.hostile.case import ANY, DIR, FIFO, NIX, REJECT, Case, Entry, Link
from tests.hostile.gen_closure import LIB, base_spec, path_variants
from tests.hostile.values import (
    HOSTILE_ALWAYS,
    STRINGS,
    VALUES,
    alias_bomb,
    corrupt,
    deep_json,
    dump,
    truncate,
)

# --- fleet build ----------------------------------------------------------------------


def fleet_docs(rng: random.Random) -> Iterator[tuple[str, Any]]:
    spec = {k: v for k, v in base_spec().items() if k != "vm_name"}
    yield "defaults-list", {"defaults": [], "vms": {"a": {}}}
    yield "defaults-str", {"defaults": "x", "vms": {"a": {}}}
    yield "vms-missing", {"defaults": spec}
    yield "vms-str", {"vms": "a"}
    yield "vms-int", {"vms": 3}
    yield "vms-empty-list", {"vms": []}
    yield "vms-empty-map", {"vms": {}}
    yield "top-list", [spec]
    yield "dup-names", {"defaults": spec, "vms": [{"vm_name": "a"}, {"vm_name": "a"}]}
    for vname, value in VALUES.items():
        yield f"name-{vname}", {"defaults": spec, "vms": [{"vm_name": value}]}
        yield f"defaults-field-{vname}", {"defaults": {**spec, "user_name": value}, "vms": {}}
        yield f"vms-entry-{vname}", {"defaults": spec, "vms": [value]} if vname not in STRINGS else {"defaults": spec, "vms": {"a": value}}  # fmt: skip


def fleet_cases(rng: random.Random) -> Iterator[Case]:
    for name, doc in fleet_docs(rng):
        for fmt in ("yaml", "json"):
            fname = f"fleet.{fmt}"
            yield Case(
                f"fleet-{name}-{fmt}",
                ("fleet", "build", f"{{S}}/{fname}", "--root", "{S}/root", "--json"),
                {**LIB, fname: dump(doc, fmt)},
                NIX,  # a fleet with a broken VM exits 1 and names it; the rest is refused
                ("FLEET", "vms", "defaults", fname, "SPEC"),
            )
    good = dump({"defaults": {k: v for k, v in base_spec().items() if k != "vm_name"}, "vms": {"a": {}}}, "yaml")  # fmt: skip
    raw = {
        "bomb": alias_bomb(9), "deep": deep_json(2000), "dup": b"vms: {}\nvms: {}\n",
        "not-utf8": corrupt(good, rng), "truncated": truncate(good, rng), "nul": good + b"\x00",
    }  # fmt: skip
    for name, data in raw.items():
        yield Case(f"fleet-raw-{name}", ("fleet", "build", "{S}/fleet.yaml", "--root", "{S}/root"), {**LIB, "fleet.yaml": data}, REJECT if name != "truncated" else NIX, ("FLEET", "SPEC", "fleet.yaml"))  # fmt: skip
    dirs: dict[str, dict[str, Entry]] = {
        "empty-dir": {"fl": DIR},
        "fifo-spec": {"fl/a.yaml": FIFO},
        "dir-named-yaml": {"fl/a.yaml": DIR},
        "link-to-dev-zero": {"fl/a.yaml": Link("/dev/zero")},
        "link-loop": {"fl/a.yaml": Link("{S}/fl/a.yaml")},
        "bomb-in-dir": {"fl/a.yaml": alias_bomb(9)},
        "bad-defaults": {"fl/defaults.yaml": b"- x\n", "fl/a.yaml": b"{}\n"},
        "not-utf8-name": {"fl/\udcff.yaml": b"{}\n"},
    }
    for name, files in dirs.items():
        yield Case(f"fleet-dir-{name}", ("fleet", "build", "{S}/fl", "--root", "{S}/root", "--json"), {**LIB, **files}, NIX, ("FLEET", "SPEC", "fl"))  # fmt: skip
    for name, (path, files) in path_variants("file").items():
        if name in ("directory",):
            continue
        yield Case(f"fleet-path-{name}", ("fleet", "build", path, "--root", "{S}/root"), files, REJECT, ("FLEET", "SPEC"))  # fmt: skip
    for jobs in ("0", "-1", "x", "1e3", "9" * 5000, "", " 1"):
        yield Case(f"fleet-jobs-{jobs[:8]}", ("fleet", "build", "{S}/f.yaml", "--jobs", jobs, "--json"), {"f.yaml": b"vms: {}\n"}, REJECT, ("--jobs", "-j", "FLEET", "f.yaml"))  # fmt: skip


# --- windmill export ------------------------------------------------------------------


def windmill_cases() -> Iterator[Case]:
    folders = {**STRINGS, "abs": "/etc", "up": "../../x", "f-up": "f/../../x", "u-ok": "u/alice", "f-ok": "f/ci", "trailing": "f/x/", "deep": "f/" + "/".join(["d"] * 50)}  # fmt: skip
    for name, folder in folders.items():
        yield Case(f"windmill-folder-{name}", ("windmill", "export", "{S}/out", "--folder", folder, "--json"), {}, REJECT if name in HOSTILE_ALWAYS | {"abs", "up", "f-up"} else ANY, ("--folder",))  # fmt: skip
    for name, (path, files) in path_variants("dir").items():
        if name in ("missing", "long-name", "dangling-link"):
            continue
        yield Case(f"windmill-dir-{name}", ("windmill", "export", path), files, REJECT, ("DIR", "directory", path.replace("{S}", "")[:10] or "DIR"))  # fmt: skip


# --- plan -----------------------------------------------------------------------------

UNIT = b"[Unit]\nDescription=a\n[Service]\nExecStart=/bin/true\n"


def system(prefix: str, units: dict[str, Entry] | None = None) -> dict[str, Entry]:
    files: dict[str, Entry] = {f"{prefix}/etc/systemd/system/a.service": UNIT}
    for name, body in (units or {}).items():
        files[f"{prefix}/etc/systemd/system/{name}"] = body
    return files


def snapshot_docs(rng: random.Random) -> Iterator[tuple[str, bytes, str]]:
    good = [{"unit": "a.service", "active": "active", "sub": "running"}]
    yield "valid", json.dumps(good).encode(), ANY
    docs: dict[str, Any] = {"object": {"unit": "a"}, "string": "a", "null": None, "list-of-str": ["a"], "missing-active": [{"unit": "a.service"}], "missing-unit": [{"active": "active"}]}  # fmt: skip
    for name, doc in docs.items():
        yield name, json.dumps(doc).encode(), REJECT
    for key in ("unit", "active", "sub", "fragment_path"):
        for vname, value in VALUES.items():
            entry: dict[str, Any] = {**good[0], key: value}
            yield (
                f"{key}-{vname}",
                dump([entry], "json"),
                REJECT if vname in HOSTILE_ALWAYS else ANY,
            )
    text = json.dumps(good).encode()
    yield "dup", b'[{"unit": "a.service", "unit": "b.service", "active": "active"}]', REJECT
    yield "deep", deep_json(5000), REJECT
    yield "huge-list", json.dumps(good * 50_000).encode(), ANY
    for i in range(10):
        yield f"not-utf8-{i}", corrupt(text, rng), REJECT
        yield f"truncated-{i}", truncate(text, rng), REJECT


def unit_bodies(rng: random.Random) -> Iterator[tuple[str, Entry]]:
    yield "not-utf8", b"[Service]\nExecStart=/bin/\xff\xfe\n"
    yield "nul", b"[Service]\nExecStart=/bin/a\x00b\n"
    yield "no-section", b"ExecStart=/bin/true\n"
    yield "bad-section", b"[Service\nExecStart=x\n"
    yield "continuation-eof", b"[Service]\nExecStart=/bin/x \\\n"
    yield "long-line", b"[Service]\nX=" + b"a" * 2_000_000 + b"\n"
    yield "many-sections", b"".join(b"[S%d]\nA=1\n" % i for i in range(20_000))
    yield "crlf", UNIT.replace(b"\n", b"\r\n")
    yield "bom", b"\xef\xbb\xbf" + UNIT
    yield "directory", DIR
    yield "fifo", FIFO
    yield "link-dev-zero", Link("/dev/zero")
    yield "link-loop", Link("{S}/to/etc/systemd/system/b.service")
    yield "link-dangling", Link("{S}/gone")
    for i in range(10):
        yield f"random-bytes-{i}", bytes(rng.randrange(256) for _ in range(200))


def plan_cases(rng: random.Random) -> Iterator[Case]:
    base = {**system("from"), **system("to")}
    argv = ("plan", "--from", "{S}/from", "--to", "{S}/to", "--units", "{S}/units.json", "--runtime-dir", "{S}/run")  # fmt: skip
    for name, data, expect in snapshot_docs(rng):
        yield Case(f"plan-units-{name}", (*argv, "--json"), {**base, "units.json": data}, expect, ("--units", "units.json"))  # fmt: skip
    units = {**base, "units.json": b"[]"}
    for name, body in unit_bodies(rng):
        files = {**units, **system("to", {"b.service": body})}
        yield Case(f"plan-unitfile-{name}", argv, files, ANY, ("unit", "b.service"))
    for flag in ("--from", "--to", "--runtime-dir", "--units"):
        for name, (path, files) in path_variants("file" if flag == "--units" else "dir").items():
            if flag == "--runtime-dir" and name in ("missing", "long-name", "dangling-link"):
                continue
            args = list(argv)
            args[args.index(flag) + 1] = path
            yield Case(f"plan{flag}-{name}", tuple(args), {**units, **files}, ANY if flag == "--runtime-dir" else REJECT, (flag,))  # fmt: skip
    for lst in ("start-list", "restart-list", "activation-restart-list"):
        for name, body in (("not-utf8", b"\xff\xfe\n"), ("nul", b"a\x00\n"), ("dir", DIR), ("fifo", FIFO), ("dev-zero", Link("/dev/zero"))):  # fmt: skip
            yield Case(f"plan-{lst}-{name}", argv, {**units, f"run/nixos/{lst}": body}, ANY, (lst,))
    for action in ("reboot", "", "switch\x00", "\udcff"):
        yield Case(f"plan-action-{action[:6]!r}", ("plan", "--to", "{S}/to", "--action", action), units, REJECT, ("--action",))  # fmt: skip


# --- switch and prepare ---------------------------------------------------------------

JOB: dict[str, Entry] = {
    "job/flake.nix": b'{ inputs.base.url = "path:/nope"; outputs = _: { }; }\n'
}


def registry_docs(rng: random.Random) -> Iterator[tuple[str, bytes, str]]:
    entry = {"from": {"type": "indirect", "id": "nixlayer-base"}, "to": {"type": "path", "path": "{S}/base"}}  # fmt: skip
    good = {"flakes": [entry], "version": 2}
    yield "valid", json.dumps(good).encode(), NIX
    docs: dict[str, Any] = {
        "flakes-str": {"flakes": "x"}, "flakes-obj": {"flakes": {}}, "top-list": [entry], "entry-str": {"flakes": ["x"]},
        "from-str": {"flakes": [{"from": "x", "to": {}}]}, "to-str": {"flakes": [{**entry, "to": "x"}]},
        "to-no-path": {"flakes": [{**entry, "to": {"type": "path"}}]}, "to-github-no-owner": {"flakes": [{**entry, "to": {"type": "github"}}]},
        "to-unknown-type": {"flakes": [{**entry, "to": {"type": "ftp"}}]}, "to-type-list": {"flakes": [{**entry, "to": {"type": []}}]},
    }  # fmt: skip
    for name, doc in docs.items():
        yield (
            name,
            json.dumps(doc).encode(),
            REJECT if name not in ("flakes-obj", "entry-str", "from-str") else NIX,
        )
    for vname, value in VALUES.items():
        doc = {"flakes": [{**entry, "to": {"type": "path", "path": value}}]}
        yield f"path-{vname}", dump(doc, "json"), REJECT if vname in HOSTILE_ALWAYS else NIX
    text = json.dumps(good).encode()
    yield "dup", text[:-1] + b', "flakes": []}', REJECT
    yield "deep", deep_json(3000), REJECT
    for i in range(6):
        yield f"not-utf8-{i}", corrupt(text, rng), REJECT
        yield f"truncated-{i}", truncate(text, rng), REJECT


def switch_cases(rng: random.Random) -> Iterator[Case]:
    base: dict[str, Entry] = {**JOB, "base/flake.nix": b"{ outputs = _: { }; }\n"}
    for name, data, expect in registry_docs(rng):
        files = {**base, "registry.json": data}
        env = {"NIXLAYER_REGISTRY": "{S}/registry.json"}
        for cmd in ("prepare", "switch"):
            if cmd == "switch" and rng.random() < 0.5:
                continue
            yield Case(f"{cmd}-registry-{name}", (cmd, "{S}/job", "--json"), files, expect, ("registry", "registry.json", "base", "FLAKE_DIR"), env=env, guard_ok=True)  # fmt: skip
    for name, (path, files) in path_variants("dir").items():
        yield Case(f"prepare-flake-dir-{name}", ("prepare", path, "--base", "{S}/base"), {**base, **files}, REJECT, ("FLAKE_DIR", "flake_dir"))  # fmt: skip
        yield Case(f"switch-base-{name}", ("switch", "{S}/job", "--base", path, "--json"), {**base, **files}, REJECT, ("base", "--base"))  # fmt: skip
    for vname, value in STRINGS.items():
        for flag in ("--name", "--protect", "--allow-restart", "--profile", "--current"):
            yield Case(f"switch{flag}-{vname}", ("switch", "{S}/job", "--base", "{S}/base", flag, value), base, REJECT if vname in HOSTILE_ALWAYS else NIX, (flag, "FLAKE_DIR"), guard_ok=True)  # fmt: skip
