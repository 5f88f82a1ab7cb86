"""Must-show 3: every command, run with --json on success and on failure, prints exactly
one envelope that validates against the published schema (`nixlayer schema envelope`).

The list of commands comes from the parser: a new command without a scenario here
fails `test_every_command_has_scenarios`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nixlayer.cli.completion import commands, is_group
from nixlayer.cli.main import build_parser
from tests.helpers import REPO, StandIn, cli, ssh_key

pytestmark = pytest.mark.e2e

LEAVES = sorted(" ".join(c.words) for c in commands(build_parser()) if not is_group(c))


@dataclass
class World:
    """Everything the scenarios share: built once per module."""

    tmp: Path
    stand_in: StandIn
    _layered: Any = None
    _image: Path | None = None
    _daemon: Any = None

    def spec(self, name: str = "vm", **extra: Any) -> Path:
        data = {
            "vm_name": name,
            "library": str(self.stand_in.library),
            "profiles": ["devel"],
            "test_suites": ["ltp"],
            "ssh_keys": [ssh_key("ci@runner")],
            **extra,
        }
        f = self.tmp / f"{name}.json"
        f.write_text(json.dumps(data))
        return f

    def rendered(self, name: str) -> Path:
        root = self.tmp / "vms"
        assert cli("render", str(self.spec(name)), "--root", str(root), "-q").returncode == 0
        return root / name

    @property
    def layered(self) -> Any:
        if self._layered is None:
            from tests.layer.conftest import make_layered

            d = self.tmp / "layered"
            d.mkdir()
            self._layered = make_layered(d)
        return self._layered

    @property
    def image(self) -> Path:
        if self._image is None:
            from tests.runner_store.images import build_paths, docker_save, image_root, layers_for

            work = self.tmp / "image"
            work.mkdir()
            root = image_root(work, "img", build_paths(work, n=2, size=1000, tag="envelope"))
            self._image = docker_save(work / "image.tar", layers_for(root))
        return self._image

    @property
    def daemon_dir(self) -> Path:
        """A private host nix-daemon's store root, with settings configure accepts."""
        if self._daemon is None:
            from tests.runner_store import host_daemon

            self._daemon = host_daemon.start(self.tmp / "host-daemon")
        root: Path = self._daemon.root
        return root


@pytest.fixture(scope="module")
def world(stand_in: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("envelope"), stand_in)
    yield w
    if w._daemon is not None:
        from tests.runner_store import host_daemon

        host_daemon.stop(w._daemon)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    proc = cli("schema", "envelope")
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


# A scenario: (argv, env, expected exit code), given the world and a fresh directory.
Scenario = Callable[[World, Path], tuple[list[str], dict[str, str], int]]


def _plan_trees(d: Path) -> list[str]:
    from tests.planner.test_plan_cli import _setup

    old, new, units = _setup(d)
    return ["--from", str(old), "--to", str(new), "--units", str(units), "--runtime-dir", str(d)]


def _config(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    target = d / "config.toml"
    shutil.copyfile(REPO / "tests/runner_store/configs/seed002.toml", target)
    return target


def _configure(w: World, d: Path, *extra: str) -> list[str]:
    """Daemon mode against a running daemon whose settings configure accepts."""
    daemon = ["--mode", "daemon", "--dir", str(w.daemon_dir)]
    return ["runner-store", "configure", "--config", str(_config(d)), *daemon, *extra]


def _broken_flake(d: Path) -> Path:
    """A config dir whose flake Nix refuses to evaluate: a real `nix` failure."""
    d.mkdir(parents=True, exist_ok=True)  # a rendered config dir whose flake then throws
    (d / "flake.nix").write_text(
        '{ outputs = _: { packages.x86_64-linux.toplevel = throw "broken on purpose"; }; }\n'
    )
    return d


SUCCESS: dict[str, Scenario] = {
    "render": lambda w, d: (["render", str(w.spec("r1")), "--root", str(d)], {}, 0),
    "lock": lambda w, d: (["lock", str(w.rendered("l1"))], {}, 0),
    "build": lambda w, d: (["build", str(w.rendered("b1")), "--out-link", str(d / "res")], {}, 0),
    "run": lambda w, d: (["run", str(w.spec("u1")), "--root", str(d)], {}, 0),
    "plan": lambda w, d: (["plan", *_plan_trees(d)], {}, 0),
    "switch": lambda w, d: (w.layered.args("--action", "dry-activate"), w.layered.env, 0),
    "prepare": lambda w, d: (
        ["prepare", str(w.layered.job), "--base", str(w.layered.base)],
        w.layered.env,
        0,
    ),
    # Nothing was applied: restore has nothing to do and says so.
    "restore": lambda w, d: (w.layered.restore_args(), w.layered.env, 0),
    "fleet build": lambda w, d: (
        ["fleet", "build", str(_fleet(w, d, broken=False)), "--root", str(d / "root")],
        {},
        0,
    ),
    "windmill export": lambda w, d: (["windmill", "export", str(d / "wm")], {}, 0),
    "runner-store seed": lambda w, d: (
        ["runner-store", "seed", "--image-archive", str(w.image), "--dir", str(d / "store")],
        {},
        0,
    ),
    "runner-store configure": lambda w, d: (
        _configure(w, d),
        {},
        0,
    ),
    "runner-store status": lambda w, d: (
        ["runner-store", "status", "--config", str(_config(d))],
        {},
        0,
    ),
    "schema": lambda w, d: (["schema", "spec"], {}, 0),
    "completions": lambda w, d: (["completions", "fish"], {}, 0),
    "man": lambda w, d: (["man"], {}, 0),
}

FAILURE: dict[str, Scenario] = {
    "render": lambda w, d: (["render", str(w.spec("bad name")), "--root", str(d)], {}, 2),
    "lock": lambda w, d: (["lock", str(d)], {}, 2),
    "build": lambda w, d: (["build", str(_broken_flake(w.rendered("bf")))], {}, 1),  # nix fails
    "run": lambda w, d: (["run", str(d / "missing.yaml"), "--root", str(d)], {}, 2),
    "plan": lambda w, d: (["plan", "--to", str(d / "missing")], {}, 2),
    "switch": lambda w, d: (["switch", str(d), "--base", str(d / "none")], {}, 2),
    "prepare": lambda w, d: (["prepare", str(d), "--base", str(w.layered.base)], {}, 2),
    "restore": lambda w, d: (
        ["restore", "--kind", "nixos", "--state-dir", str(_a_file(d))],
        {},
        2,
    ),
    # One VM of two is broken: a failure that still carries the fleet's result.
    "fleet build": lambda w, d: (
        ["fleet", "build", str(_fleet(w, d, broken=True)), "--root", str(d / "root")],
        {},
        1,
    ),
    "windmill export": lambda w, d: (["windmill", "export", str(_a_file(d))], {}, 2),
    "runner-store seed": lambda w, d: (
        ["runner-store", "seed", "--image-archive", str(d / "none.tar"), "--dir", str(d / "s")],
        {},
        2,
    ),
    # --check on a file that would change: exit 1 with the diff as the result.
    "runner-store configure": lambda w, d: (
        _configure(w, d, "--check"),
        {},
        1,
    ),
    "runner-store status": lambda w, d: (
        ["runner-store", "status", "--config", str(d / "none.toml")],
        {},
        2,
    ),
    "schema": lambda w, d: (["schema", "nonesuch"], {}, 2),  # a usage error
    "completions": lambda w, d: (["completions", "tcsh"], {}, 2),
    "man": lambda w, d: (["man", "--no-such-flag"], {}, 2),
}


def _fleet(w: World, d: Path, *, broken: bool) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    fleet = d / "fleet.json"
    spec = json.loads(w.spec("fb").read_text())
    del spec["vm_name"]
    vms: dict[str, Any] = {"ok1": {}}
    if broken:
        vms["bad1"] = {"profiles": ["no-such-profile"]}
    fleet.write_text(json.dumps({"defaults": spec, "vms": vms}))
    return fleet


def _a_file(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "file").write_text("x")
    return d / "file"


def test_every_command_has_scenarios() -> None:
    assert set(LEAVES) == set(SUCCESS) == set(FAILURE), set(LEAVES) ^ set(SUCCESS)


@pytest.mark.parametrize("outcome", ["success", "failure"])
@pytest.mark.parametrize("command", LEAVES)
def test_json_envelope(
    command: str, outcome: str, world: World, schema: dict[str, Any], tmp_path: Path
) -> None:
    table = SUCCESS if outcome == "success" else FAILURE
    if command not in table:
        pytest.fail(f"no {outcome} scenario for {command!r}")
    argv, env, expected = table[command](world, tmp_path / "work")
    proc = cli(*argv, "--json", env=env)
    assert proc.returncode == expected, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    env_out = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    jsonschema.validate(env_out, schema)
    assert env_out["command"] == command
    assert env_out["exit_code"] == proc.returncode and env_out["ok"] is (expected == 0)
    if expected == 0:
        assert env_out["error"] is None and env_out["result"] is not None
    else:
        assert env_out["error"]["message"], env_out
        if expected == 2:
            assert env_out["error"]["kind"] == "input" and env_out["result"] is None
            assert proc.stderr.count("\n") == 1, proc.stderr
    if command == "build" and outcome == "failure":
        assert (
            env_out["error"]["kind"] == "nix"
            and "broken on purpose" in (env_out["error"]["nix"]["stderr"])
        )
    if command in ("fleet build", "runner-store configure") and outcome == "failure":
        assert env_out["result"], env_out  # the data is kept alongside the failure


def test_a_usage_error_is_an_envelope_too() -> None:
    proc = cli("frobnicate", "--json")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    env = json.loads(proc.stdout)
    assert env["command"] == "nixlayer" and env["error"]["kind"] == "input"
    proc = cli("fleet", "build", "--jobs", "x", "--json")
    env = json.loads(proc.stdout)
    assert env["command"] == "fleet build" and env["error"]["field"] == "--jobs"


def test_stray_prints_never_reach_stdout_under_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A handler that prints under --json (a bug) cannot corrupt the envelope."""
    from nixlayer.cli import main as entry
    from nixlayer.cli import schema as schema_cmd

    def noisy(args: Any) -> int:
        print("stray line")
        return schema_cmd._schema(args)

    real = entry.build_parser

    def parser() -> Any:
        p = real()
        p.set_defaults()
        sub = next(a for a in p._actions if a.dest == "command")
        assert isinstance(sub, argparse._SubParsersAction)
        sub.choices["schema"].set_defaults(handler=noisy)
        return p

    monkeypatch.setattr(entry, "build_parser", parser)
    assert entry.main(["schema", "envelope", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is True and "stray line" in err


def test_an_unexpected_exception_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nixlayer.cli import main as entry
    from nixlayer.cli import schema as schema_cmd

    def boom() -> dict[str, Any]:
        raise KeyError("surprise")

    monkeypatch.setitem(schema_cmd.SCHEMAS, "spec", boom)
    assert entry.main(["schema", "spec", "--json"]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "this is a bug" in err and "Traceback" not in err
    env = json.loads(out)
    assert env["error"]["kind"] == "failure" and "KeyError" in env["error"]["message"]
