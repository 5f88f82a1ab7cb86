"""The generated hostile-input corpus and the one check every case must pass.

`cases()` is deterministic for a seed (NIXLAYER_CORPUS_SEED, default 10): the same
cases on every CI run, a different draw when someone wants to explore.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.hostile import gen_closure, gen_other, gen_store
from tests.hostile.case import ANY, NIX, REJECT, Case, Dir, Fifo, Link

SEED = int(os.environ.get("NIXLAYER_CORPUS_SEED", "10"))

# The stand-in nix: answers --version, refuses everything else as Nix would fail.
FAKE_NIX = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "nix (Nix) 2.8.0"; exit 0; fi
echo "error: the hostile-input corpus's stand-in nix does not run '$1'" >&2
exit 1
"""


def cases(seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    out: list[Case] = []
    out += gen_closure.spec_field_cases()
    out += gen_closure.raw_spec_cases(rng)
    out += gen_closure.spec_path_cases()
    out += gen_closure.flag_cases()
    out += gen_closure.catalog_cases(rng)
    out += gen_closure.lock_build_cases(rng)
    out += gen_other.fleet_cases(rng)
    out += gen_other.windmill_cases()
    out += gen_other.plan_cases(rng)
    out += gen_other.switch_cases(rng)
    out += gen_store.store_cases(rng)
    out += gen_store.flag_cases()
    seen: set[str] = set()
    unique = []
    for c in out:
        if c.id not in seen:
            seen.add(c.id)
            unique.append(c)
    return unique


def _fill(text: str, sandbox: Path) -> str:
    return text.replace("{S}", str(sandbox))


def materialize(case: Case, sandbox: Path) -> None:
    sandbox.mkdir(parents=True)
    for rel, entry in case.files.items():
        path = sandbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(entry, Dir):
            path.mkdir(exist_ok=True)
        elif isinstance(entry, Fifo):
            os.mkfifo(path)
        elif isinstance(entry, Link):
            os.symlink(_fill(entry.target, sandbox), path)
        else:
            path.write_bytes(entry.replace(b"{S}", str(sandbox).encode()))


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything under root, without following links: kind, mode, size, content."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            out[os.path.relpath(p, root)] = (
                stat.S_IFMT(st.st_mode),
                st.st_mode,
                st.st_size,
                digest,
            )
    return out


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    changed: list[str]
    argv: list[str]


@contextlib.contextmanager
def _environment(env: dict[str, str], cwd: Path, stdin: bytes | None) -> Iterator[None]:
    old_env = dict(os.environ)
    old_cwd = os.getcwd()
    old_stdin = sys.stdin
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    try:
        yield
    finally:
        sys.stdin = old_stdin
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)


def run_in_process(case: Case, sandbox: Path, base_env: dict[str, str]) -> Outcome:
    from nixlayer.cli.main import main

    materialize(case, sandbox)
    before = snapshot(sandbox)
    argv = [_fill(a, sandbox) for a in case.argv]
    env = {**base_env, **{k: _fill(v, sandbox) for k, v in case.env.items()}}
    out, err = io.StringIO(), io.StringIO()
    with (
        _environment(env, sandbox, case.stdin),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(argv)
    after = snapshot(sandbox)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return Outcome(code, out.getvalue(), err.getvalue(), changed, argv)


def check(case: Case, got: Outcome, schema: dict[str, Any]) -> None:
    """The rules of issue 10 for one case."""
    import jsonschema

    where = f"{case.id}: exit {got.code}\nstderr: {got.stderr[:2000]!r}"
    assert isinstance(got.code, int), where
    assert "Traceback" not in got.stderr, where
    assert "this is a bug" not in got.stderr, where
    env = None
    if "--json" in case.argv:
        env = json.loads(got.stdout)  # the whole of stdout is one envelope
        jsonschema.validate(env, schema)
        assert env["exit_code"] == got.code, where
    if got.code == 2:
        lines = got.stderr.splitlines()
        if case.expect == NIX:  # it got as far as running nix: those commands are logged
            lines = [ln for ln in lines if not ln.startswith("$ ")]
        assert len(lines) == 1 and lines[0].startswith("nixlayer: error: "), where
        if case.mention:
            # The field, or the file itself (a path given on the command line).
            files = tuple(a for a in got.argv if "/" in a and len(a) > 1)
            assert any(m in lines[0] for m in (*case.mention, *files)), (
                f"names none of {case.mention}: {where}"
            )
        assert not got.changed, f"wrote {got.changed[:5]}: {where}"
        return
    assert case.expect != REJECT, f"not refused: {where}"
    if got.code == 0:
        assert case.expect in (ANY, NIX), where
    elif got.code == 3:
        assert case.guard_ok, where
    elif got.code == 1:
        # Only the stand-in nix's refusal (or a fleet whose VMs failed, each named).
        assert case.expect == NIX, where
        assert "nix" in got.stderr or "built" in got.stderr or (env and env["result"]), where
    else:
        raise AssertionError(f"unexpected exit: {where}")
