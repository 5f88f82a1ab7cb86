"""Hostile inputs for runner-store configure, status and seed, and for every
command's flags."""

from __future__ import annotations

import io
import json
import random
import tarfile
from collections.abc import Iterator
from typing import Any

from tests.hostile.case import ANY, NIX, REJECT, Case, Entry
from tests.hostile.gen_closure import path_variants
from tests.hostile.values import HOSTILE_ALWAYS, STRINGS, corrupt, truncate

CONFIG = b"""concurrent = 2

[[runners]]
  name = "docker-1"
  url = "https://gitlab.example.com"
  executor = "docker"
  [runners.docker]
    image = "alpine:3"
    volumes = ["/cache"]
"""
# A store root without a daemon: daemon mode refuses it (exit 2, naming --dir) once the
# file and the flags have passed, whatever the machine runs at /.
NO_DAEMON = ("--dir", "{S}/store")


def toml_docs(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    yield "valid", CONFIG
    yield "crlf", CONFIG.replace(b"\n", b"\r\n")
    yield "bom", b"\xef\xbb\xbf" + CONFIG
    yield "empty", b""
    yield "no-runners", b"concurrent = 1\n"
    yield "runners-str", b'runners = "x"\n'
    yield "runners-int-list", b"runners = [1, 2]\n"
    yield "dup-key", CONFIG + b'  name = "again"\n'
    yield "dup-table", CONFIG + b"  [runners.docker]\n    image = 'x'\n"
    yield "deep-array", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n"
    yield "deep-inline", b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n"
    yield "huge-int", b"concurrent = " + b"9" * 5000 + b"\n"
    yield "nul", CONFIG + b"\x00"
    yield "nul-escape", CONFIG.replace(b'"alpine:3"', b'"a\\u0000b"')
    yield "surrogate-escape", CONFIG.replace(b'"alpine:3"', b'"\\ud800"')
    yield "unterminated", b'[[runners]]\nname = "x\n'
    replacements: dict[str, bytes] = {
        "executor-int": b"executor = 1", "name-int": b"name = 1", "name-table": b"name = {a = 1}",
        "volumes-str": b'volumes = "/x:/y"', "volumes-ints": b"volumes = [1, 2]", "volumes-nested": b"volumes = [[\"/a\"]]",
        "docker-str": b"executor = \"docker\"\n  docker = 1", "image-list": b'image = ["a"]', "date": b"executor = 1979-05-27T07:32:00Z",
    }  # fmt: skip
    for name, line in replacements.items():
        key = line.split(b" ")[0]
        old = next(ln for ln in CONFIG.splitlines() if ln.strip().startswith(key + b" "))
        yield name, CONFIG.replace(old, b"    " + line)
    for i in range(12):
        yield f"not-utf8-{i}", corrupt(CONFIG, rng)
        yield f"truncated-{i}", truncate(CONFIG, rng)


def store_cases(rng: random.Random) -> Iterator[Case]:
    for name, data in toml_docs(rng):
        # A seeded store (as configure checks it) so copy mode gets as far as the file.
        files: dict[str, Entry] = {"config.toml": data, "store/nix/var/nix/db/db.sqlite": b""}
        for mode in ("daemon", "copy"):
            argv = ("runner-store", "configure", "--config", "{S}/config.toml", "--mode", mode)
            # Daemon mode reads the daemon at DIR, after the file: there is none at {S}/store.
            yield Case(f"configure-{mode}-{name}", (*argv, *NO_DAEMON, "--json"), files, ANY, ("--config", "config.toml", "--runner", "--image", "--dir"), guard_ok=True)  # fmt: skip
        yield Case(f"status-{name}", ("runner-store", "status", "--config", "{S}/config.toml", "--json"), files, ANY, ("--config", "config.toml"))  # fmt: skip
    good: dict[str, Entry] = {"config.toml": CONFIG}
    for vname, value in STRINGS.items():
        exp = REJECT if vname in HOSTILE_ALWAYS else ANY
        base = ("runner-store", "configure", "--config", "{S}/config.toml", "--mode", "daemon")
        yield Case(
            f"configure-runner-{vname}",
            (*base, *NO_DAEMON, "--runner", value),
            good,
            exp,
            ("--runner", "--dir"),
        )
        # --check exits 1 when the file would change (the diff is the result).
        yield Case(f"configure-image-{vname}", (*base, *NO_DAEMON, "--image", value, "--check", "--json"), good, REJECT if vname in HOSTILE_ALWAYS else NIX, ("--image", "--dir"))  # fmt: skip
        yield Case(f"configure-dir-{vname}", (*base, "--dir", value), good, exp, ("--dir",))
    for name, (path, files) in path_variants("file").items():
        yield Case(f"configure-config-{name}", ("runner-store", "configure", "--config", path, "--mode", "daemon"), files, REJECT, ("--config",))  # fmt: skip
        yield Case(f"status-config-{name}", ("runner-store", "status", "--config", path, "--json"), files, REJECT, ("--config",))  # fmt: skip
    yield from seed_cases(rng)


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def archives(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    layer = _tar({"nix/store/abc-x/file": b"x"})
    manifest: Any = [{"Layers": ["l.tar"]}]
    yield "no-db", _tar({"manifest.json": json.dumps(manifest).encode(), "l.tar": layer})
    bad_manifests: dict[str, bytes] = {
        "manifest-not-json": b"{", "manifest-obj": b"{}", "manifest-empty-list": b"[]", "manifest-str": b'"x"',
        "layers-str": b'[{"Layers": "l.tar"}]', "layers-missing": b"[{}]", "layer-missing": b'[{"Layers": ["nope.tar"]}]',
        "dup-key": b'[{"Layers": [], "Layers": []}]', "deep": b"[" * 5000 + b"]" * 5000, "not-utf8": b'[{"Layers": ["\xff"]}]',
        "nul": b'[{"Layers": ["a\\u0000"]}]', "surrogate": b'[{"Layers": ["\\udc80"]}]', "traversal": b'[{"Layers": ["../../etc/passwd"]}]',
    }  # fmt: skip
    for name, data in bad_manifests.items():
        yield name, _tar({"manifest.json": data, "l.tar": layer})
    yield "layer-not-tar", _tar({"manifest.json": json.dumps(manifest).encode(), "l.tar": b"junk" * 200})  # fmt: skip
    index: dict[str, bytes] = {
        "index-not-json": b"[", "index-empty": b'{"manifests": []}', "index-digest-int": b'{"manifests": [{"digest": 1}]}',
        "index-digest-traversal": b'{"manifests": [{"digest": "sha256:../../../etc/passwd"}]}',
        "index-digest-missing": b'{"manifests": [{"digest": "sha256:' + b"0" * 64 + b'"}]}',
    }  # fmt: skip
    for name, data in index.items():
        yield name, _tar({"index.json": data})
    yield "neither", _tar({"hello": b"x"})
    yield "empty-file", b""
    yield "random-bytes", bytes(rng.randrange(256) for _ in range(4096))
    full = _tar({"manifest.json": json.dumps(manifest).encode(), "l.tar": layer})
    for i in range(6):
        yield f"truncated-{i}", truncate(full, rng)
        yield f"corrupt-{i}", corrupt(full, rng)


def seed_cases(rng: random.Random) -> Iterator[Case]:
    argv = ("runner-store", "seed", "--image-archive", "{S}/image.tar", "--dir", "{S}/store", "--json")  # fmt: skip
    for name, data in archives(rng):
        yield Case(f"seed-archive-{name}", argv, {"image.tar": data}, REJECT, ("--image-archive", "image.tar"))  # fmt: skip
    for name, (path, files) in path_variants("file").items():
        args = list(argv)
        args[3] = path
        yield Case(f"seed-archive-path-{name}", tuple(args), files, REJECT, ("--image-archive",))
    dirs = {**{k: v for k, v in path_variants("dir").items() if k not in ("missing", "long-name", "dangling-link")}, "relative": ("store", {}), "in-nix-store": ("/nix/store/x", {}), "root": ("/", {})}  # fmt: skip
    for name, (path, files) in dirs.items():
        args = list(argv)
        args[5] = path
        yield Case(f"seed-dir-{name}", tuple(args), {"image.tar": b"", **files}, REJECT, ("--dir", "--image-archive"))  # fmt: skip


def flag_cases() -> Iterator[Case]:
    """Usage errors on every command: one line, exit 2, the flag named."""
    commands: dict[str, tuple[str, ...]] = {
        "render": ("render", "{S}/s.yaml"), "lock": ("lock", "{S}"), "build": ("build", "{S}"),
        "run": ("run", "{S}/s.yaml"), "plan": ("plan", "--to", "{S}"), "switch": ("switch",), "prepare": ("prepare",),
        "fleet": ("fleet", "build", "{S}/f.yaml"), "windmill": ("windmill", "export", "{S}/w"),
        "seed": ("runner-store", "seed", "--dir", "{S}/d", "--image-archive", "{S}/a.tar"),
        "configure": ("runner-store", "configure", "--config", "{S}/c.toml", "--mode", "daemon"),
        "status": ("runner-store", "status", "--config", "{S}/c.toml"), "schema": ("schema",),
        "completions": ("completions", "bash"), "man": ("man",),
    }  # fmt: skip
    for name, argv in commands.items():
        yield Case(f"flags-{name}-unknown", (*argv, "--no-such-flag", "--json"), {}, REJECT, ("--no-such-flag",))  # fmt: skip
        yield Case(f"flags-{name}-option-one", (*argv, "--option", "x"), {}, REJECT, ("--option",))
        for vname in ("nul", "surrogate"):
            value = STRINGS[vname]
            yield Case(f"flags-{name}-option-{vname}", (*argv, "--option", "cores", value, "--json"), {}, REJECT, ("--option",))  # fmt: skip
            yield Case(f"flags-{name}-store-{vname}", (*argv, "--store", value), {}, REJECT, ("--store",))  # fmt: skip
            yield Case(f"flags-{name}-max-jobs-{vname}", (*argv, "--max-jobs", value), {}, REJECT, ("--max-jobs",))  # fmt: skip
    usage = {
        "no-command": (), "bad-command": ("frobnicate",), "plan-no-to": ("plan",), "fleet-no-sub": ("fleet",),
        "rs-no-sub": ("runner-store",), "seed-both": ("runner-store", "seed", "--dir", "/x", "--image", "a", "--image-archive", "b"),
        "seed-none": ("runner-store", "seed", "--dir", "/x"), "configure-mode": ("runner-store", "configure", "--config", "x", "--mode", "rw"),
        "switch-kind": ("switch", "--kind", "windows"), "switch-action": ("switch", "--action", "reboot"),
        "schema-bad": ("schema", "nope"), "completions-bad": ("completions", "tcsh"), "build-system-choice": ("render", "x", "--system", "mips"),
    }  # fmt: skip
    for name, argv in usage.items():
        yield Case(f"usage-{name}", (*argv, "--json") if argv else argv, {}, REJECT, ())
