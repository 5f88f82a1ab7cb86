"""Must-show 4: the generated hostile-input corpus (issue 10).

Every case runs in process through `nixlayer.cli.main.main` in its own sandbox: no
traceback, a rejection is exit 2 with one line naming the field or file, nothing in
the sandbox changes; valid input may succeed. A sample runs as real processes too.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import nixlayer_bin
from tests.hostile.case import Case
from tests.hostile.corpus import FAKE_NIX, Outcome, cases, check, materialize, run_in_process
from tests.hostile.values import alias_bomb

CASES = cases()


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("fake-nix")
    nix = d / "nix"
    nix.write_text(FAKE_NIX)
    nix.chmod(0o755)
    return {
        "NIXLAYER_NIX": str(nix),
        "NIXLAYER_REGISTRY": str(d / "no-registry.json"),
        "HOME": str(d),
    }


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from nixlayer.cli.envelope import envelope_schema

    return envelope_schema()


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def test_the_corpus_is_large_and_covers_every_command() -> None:
    assert len(CASES) >= 2000, len(CASES)
    words = Counter(" ".join(w for w in c.argv[:2] if not w.startswith(("-", "{"))) for c in CASES)
    for command in (
        "render", "lock", "build", "run", "plan", "switch", "prepare", "fleet build",
        "windmill export", "runner-store seed", "runner-store configure", "runner-store status",
    ):  # fmt: skip
        assert words[command] >= 5, (command, words)


@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)), ids=[c.id for c in CASES])
def test_case(
    index: int, case: Case, sandboxes: Path, corpus_env: dict[str, str], schema: dict[str, Any]
) -> None:
    got = run_in_process(case, sandboxes / str(index), corpus_env)
    check(case, got, schema)


def test_alias_bomb_is_refused_fast_with_bounded_memory(tmp_path: Path) -> None:
    from nixlayer.errors import InputError
    from nixlayer.safeload import parse_yaml

    bomb = alias_bomb(9).decode()  # 9**9 = 387 million strings if expanded
    tracemalloc.start()
    start = time.monotonic()
    with pytest.raises(InputError, match="expands to over"):
        parse_yaml(bomb, "SPEC", "bomb.yaml")
    elapsed = time.monotonic() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2 and peak < 20 * 1024 * 1024, (elapsed, peak)
    # And as a real process under a 1 GiB address-space limit (the old code needed 2.9 GB).
    spec = tmp_path / "bomb.yaml"
    spec.write_text(bomb)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run(
        [nixlayer_bin(), "render", str(spec), "--root", str(tmp_path / "root")],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "expands to over" in proc.stderr
    assert not (tmp_path / "root").exists()


def test_a_sample_as_real_processes(
    tmp_path: Path, corpus_env: dict[str, str], schema: dict[str, Any]
) -> None:
    """The installed command agrees with the in-process runs (stdout, exit, one line)."""
    rng = random.Random(7)
    sample = [c for c in CASES if "\x00" not in "".join(c.argv) and c.stdin is None]
    for i, case in enumerate(rng.sample(sample, 40)):
        box = tmp_path / str(i)
        materialize(case, box)
        from tests.hostile.corpus import snapshot

        before = snapshot(box)
        argv = [a.replace("{S}", str(box)) for a in case.argv]
        own = {k: v.replace("{S}", str(box)) for k, v in case.env.items()}
        env = {**os.environ, **corpus_env, **own}
        proc = subprocess.run(
            [nixlayer_bin(), *argv],
            capture_output=True,
            cwd=box,
            env=env,
            timeout=60,
            check=False,
        )
        after = snapshot(box)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        stdout = proc.stdout.decode()
        if "--json" in case.argv:
            json.loads(stdout)
        err = proc.stderr.decode(errors="replace")
        got = Outcome(proc.returncode, stdout, err, changed, argv)
        check(case, got, schema)
