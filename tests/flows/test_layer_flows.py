"""switch and prepare on the recording fake Nix: which commands, in which order. No Nix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nixlayer.errors import InputError
from nixlayer.layer.switch import prepare, switch
from nixlayer.layer.where import Where
from tests.fakenix import FakeNix, captured, dialect_version

VERSIONS = ["2.8", "2.26", "2.34"]
EVAL_INPUTS = "f: builtins.attrNames (f.inputs or { })"


@pytest.fixture
def job(tmp_path: Path) -> Path:
    d = tmp_path / "job"
    d.mkdir()
    (d / "flake.nix").write_text('{ inputs.base.url = "path:/x"; outputs = _: { }; }\n')
    return d


@pytest.fixture
def base(tmp_path: Path) -> Path:
    d = tmp_path / "base"
    d.mkdir()
    (d / "flake.nix").write_text("{ outputs = _: { }; }\n")
    return d


def fake(version: str, toplevel: Path) -> FakeNix:
    nix = FakeNix(dialect_version(version))
    nix.on("nix", "eval", "--json", "--file", stdout='["base","nixpkgs"]')
    nix.on("nix", "eval", "--json", stdout='["default","runner"]')
    build = [{"drvPath": "/nix/store/x.drv", "outputs": {"out": str(toplevel)}}]
    nix.on("nix", "build", stdout=json.dumps(build))
    return nix


@pytest.mark.parametrize("version", VERSIONS)
def test_prepare_rewrites_only_the_base_pin(job: Path, base: Path, version: str) -> None:
    nix = fake(version, job)
    out = prepare(job, base=str(base), nix=nix)
    assert nix.calls == [
        ["nix", "eval", "--json", "--file", str(job / "flake.nix"), "--apply", EVAL_INPUTS],
        ["nix", "flake", "lock", f"path:{job}", "--override-input", "base", f"path:{base}"],
    ]
    assert out["base"] == f"path:{base}"


@pytest.mark.parametrize("version", VERSIONS)
def test_prepare_relays_the_evaluation_error(job: Path, base: Path, version: str) -> None:
    nix = fake(version, job)
    nix.on("nix", "eval", returncode=1, stderr=captured(version, "stderr/eval-file-throw.txt"))
    nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(InputError) as info:
        prepare(job, base=str(base), nix=nix)
    assert str(info.value).endswith("does not evaluate: the job's inputs are broken")
    assert len(nix.calls) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_switch_evaluates_builds_over_the_base_then_plans(
    tmp_path: Path, job: Path, base: Path, version: str
) -> None:
    toplevel, current = tmp_path / "new-system", tmp_path / "current-system"
    for d in (toplevel, current):
        (d / "etc/systemd/system").mkdir(parents=True)
    nix = fake(version, toplevel)
    result = switch(
        job,
        base=str(base),
        kind="system-manager",
        name="runner",
        action="dry-activate",
        where=Where(current=current, runtime_dir=tmp_path / "run", state_dir=tmp_path / "state"),
        nix=nix,
    )
    override = ["--override-input", "base", f"path:{base}"]
    assert nix.calls == [
        ["nix", "eval", "--json", "--file", str(job / "flake.nix"), "--apply", EVAL_INPUTS],
        [
            "nix",
            "eval",
            "--json",
            f"path:{job}#systemConfigs",
            "--apply",
            "builtins.attrNames",
            *override,
        ],
        [
            "nix",
            "build",
            f"path:{job}#systemConfigs.runner",
            "--json",
            "--no-link",
            *override,
            "--no-write-lock-file",
        ],
    ]
    assert result.toplevel == str(toplevel) and not result.activated


def test_switch_over_a_broken_base_says_why(job: Path, base: Path, tmp_path: Path) -> None:
    nix = fake("2.34", tmp_path)
    nix.on(
        "nix",
        "eval",
        "--json",
        f"path:{job}#nixosConfigurations",
        returncode=1,
        stderr=captured("2.34", "stderr/build-throw.txt"),
    )
    nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(InputError) as info:
        switch(job, base=str(base), kind="nixos", action="dry-activate", nix=nix)
    assert str(info.value).endswith("mmtests is broken in lib-b")
    assert [c[1] for c in nix.calls] == ["eval", "eval"]
