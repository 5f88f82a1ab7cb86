"""switch and prepare on the recording fake Nix: which commands, in which order. No Nix."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nixlayer.errors import InputError, NixError
from nixlayer.layer.switch import prepare, switch
from nixlayer.layer.where import Where
from tests.fakenix import FakeNix, captured, dialect_version

VERSIONS = ["2.8", "2.26", "2.34"]


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


@pytest.fixture
def where(tmp_path: Path) -> Where:
    current = tmp_path / "current-system"
    (current / "etc/systemd/system").mkdir(parents=True)
    return Where(current=current, runtime_dir=tmp_path / "run", state_dir=tmp_path / "state")


def fake(version: str, toplevel: Path) -> FakeNix:
    """Nix `version` as captured: the job's metadata (a `base` input, overridden), the
    configuration names, and a build whose output is `toplevel`."""
    nix = FakeNix(dialect_version(version))
    nix.on("nix", "flake", "metadata", stdout=captured(version, "flake-metadata-job.json"))
    nix.on("nix", "eval", "--json", stdout=captured(version, "eval-names.json"))
    build = json.loads(captured(version, "build.json"))
    build[0]["outputs"]["out"] = str(toplevel)
    nix.on("nix", "build", stdout=json.dumps(build))
    return nix


def metadata(job: Path, base: Path) -> list[str]:
    """How prepare and switch first read the job: as Nix would lock it over the base,
    without writing its lock."""
    return [
        "nix",
        "flake",
        "metadata",
        "--json",
        f"path:{job}",
        "--no-write-lock-file",
        "--override-input",
        "base",
        f"path:{base}",
    ]


def nix_error(version: str, name: str) -> tuple[int, str, str]:
    """(exit status, stderr, Nix's own error line) of a captured failure."""
    head, stderr = captured(version, name).split("\n", 1)
    line = next(ln for ln in stderr.splitlines() if ln.startswith("error: "))
    return int(head.removeprefix("exit ")), stderr, line.removeprefix("error: ")


@pytest.mark.parametrize("version", VERSIONS)
def test_prepare_rewrites_only_the_base_pin(job: Path, base: Path, version: str) -> None:
    nix = fake(version, job)
    out = prepare(job, base=str(base), nix=nix)
    assert nix.calls == [
        metadata(job, base),
        ["nix", "flake", "lock", f"path:{job}", "--override-input", "base", f"path:{base}"],
    ]
    assert out == {"lock_file": str(job / "flake.lock"), "base": f"path:{base}", "origin": "--base"}


@pytest.mark.parametrize("version", VERSIONS)
def test_prepare_relays_the_evaluation_error(job: Path, base: Path, version: str) -> None:
    nix = fake(version, job)
    code, stderr, cause = nix_error(version, "stderr/flake-metadata-throw.txt")
    nix.on("nix", "flake", "metadata", returncode=code, stderr=stderr)
    nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(InputError) as info:
        prepare(job, base=str(base), nix=nix)
    assert info.value.field == "FLAKE_DIR"
    assert str(info.value) == f"FLAKE_DIR: {job}/flake.nix does not evaluate: {cause}"
    assert nix.calls == [metadata(job, base)]


def test_prepare_refuses_a_job_without_a_base_input(job: Path, base: Path) -> None:
    """The library's own metadata (no `base` among its inputs): nothing is locked."""
    nix = fake("2.34", job)
    nix.on("nix", "flake", "metadata", stdout=captured("2.34", "flake-metadata-path.json"))
    nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(InputError) as info:
        prepare(job, base=str(base), nix=nix)
    assert "flake.nix has no `base` input" in str(info.value)
    assert nix.calls == [metadata(job, base)]


def names(job: Path, base: Path, attr: str = "nixosConfigurations") -> list[str]:
    """The configuration names of the job over the base."""
    return [
        "nix",
        "eval",
        "--json",
        f"path:{job}#{attr}",
        "--apply",
        "builtins.attrNames",
        "--override-input",
        "base",
        f"path:{base}",
    ]


def build(job: Path, base: Path, installable: str) -> list[str]:
    return [
        "nix",
        "build",
        f"path:{job}#{installable}",
        "--json",
        "--no-link",
        "--override-input",
        "base",
        f"path:{base}",
        "--no-write-lock-file",
    ]


@pytest.fixture
def host_vm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "vm.example.org")


@pytest.mark.usefixtures("host_vm")
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("named", [True, False], ids=["--name", "host-name"])
def test_switch_evaluates_builds_over_the_base_then_plans(
    job: Path, base: Path, where: Where, version: str, named: bool
) -> None:
    """The configuration it would be (--name's, else the host name's) is built straight
    away: no names asked for."""
    toplevel = where.state_dir.parent / "new-system"
    (toplevel / "etc/systemd/system").mkdir(parents=True)
    nix = fake(version, toplevel)
    result = switch(
        job,
        base=str(base),
        kind="system-manager",
        name="vm" if named else None,  # what the captured attrNames answer holds
        action="dry-activate",
        where=where,
        nix=nix,
    )
    assert nix.calls == [metadata(job, base), build(job, base, "systemConfigs.vm")]
    assert result.toplevel == str(toplevel) and result.configuration == "vm"
    assert not result.activated and result.outcome == "ok"


TOPLEVEL = "nixosConfigurations.{}.config.system.build.toplevel"


@pytest.mark.parametrize("version", VERSIONS)
def test_switch_names_a_missing_configuration_after_its_build_fails(
    job: Path, base: Path, where: Where, tmp_path: Path, version: str
) -> None:
    """The build of a name the job lacks fails; the names Nix then gives say why, as the
    error about `--name` (exit 2), not Nix's missing attribute."""
    nix = fake(version, tmp_path)
    nix.on("nix", "build", returncode=1, stderr=captured(version, "stderr/build-missing-attr.txt"))
    nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(InputError) as info:
        switch(job, base=str(base), kind="nixos", name="nope", action="dry-activate",
               where=where, nix=nix)  # fmt: skip
    assert info.value.field == "--name"
    assert str(info.value) == (
        f"--name: the base path:{base} has no nixosConfigurations.nope (it has: vm)"
    )
    assert nix.calls == [
        metadata(job, base),
        build(job, base, TOPLEVEL.format("nope")),
        names(job, base),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_switch_keeps_the_build_error_of_a_configuration_it_has(
    job: Path, base: Path, where: Where, tmp_path: Path, version: str
) -> None:
    """The named configuration exists, so the build's own error is the one raised."""
    nix = fake(version, tmp_path)
    nix.on("nix", "build", returncode=1, stderr=captured(version, "stderr/build-throw.txt"))
    nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(NixError) as info:
        switch(job, base=str(base), kind="nixos", name="vm", action="dry-activate",
               where=where, nix=nix)  # fmt: skip
    assert info.value.first_error() == "mmtests is broken in lib-b"
    assert info.value.command.startswith("nix build ")
    assert nix.calls == [
        metadata(job, base),
        build(job, base, TOPLEVEL.format("vm")),
        names(job, base),
    ]


@pytest.mark.usefixtures("host_vm")
@pytest.mark.parametrize("version", VERSIONS)
def test_switch_falls_back_to_default_when_the_host_has_none(
    job: Path, base: Path, where: Where, version: str
) -> None:
    """No configuration for the host name: its build fails, the names say `default` is
    there, and that is built (as the rebuild tools pick it)."""
    toplevel = where.state_dir.parent / "new-system"
    (toplevel / "etc/systemd/system").mkdir(parents=True)
    nix = fake(version, toplevel)
    missing = captured(version, "stderr/build-missing-attr.txt")
    nix.on("nix", "build", f"path:{job}#systemConfigs.vm", returncode=1, stderr=missing)
    nix.on("nix", "eval", "--json", stdout='["default","other"]')
    nix.rules[:0] = nix.rules[-2:]
    del nix.rules[-2:]
    kind = "system-manager"
    result = switch(job, base=str(base), kind=kind, action="dry-activate", where=where, nix=nix)
    assert nix.calls == [
        metadata(job, base),
        build(job, base, "systemConfigs.vm"),
        names(job, base, "systemConfigs"),
        build(job, base, "systemConfigs.default"),
    ]
    assert result.configuration == "default" and result.toplevel == str(toplevel)


@pytest.mark.usefixtures("host_vm")
@pytest.mark.parametrize("named", [True, False], ids=["--name", "host-name"])
def test_switch_over_a_broken_base_says_why(
    job: Path, base: Path, where: Where, tmp_path: Path, named: bool
) -> None:
    """The build fails, then the names cannot be had either: the error about the base,
    not the build's."""
    nix = fake("2.34", tmp_path)
    for tool in ("eval", "build"):
        nix.on("nix", tool, returncode=1, stderr=captured("2.34", "stderr/build-throw.txt"))
        nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(InputError) as info:
        switch(job, base=str(base), kind="nixos", name="vm" if named else None,
               action="dry-activate", where=where, nix=nix)  # fmt: skip
    assert info.value.field == "base"
    assert str(info.value) == (
        f"base: cannot evaluate the job over path:{base}: mmtests is broken in lib-b"
    )
    assert nix.calls == [
        metadata(job, base),
        build(job, base, TOPLEVEL.format("vm")),
        names(job, base),
    ]


@pytest.fixture
def running_in_store(monkeypatch: pytest.MonkeyPatch) -> str:
    """The running system is a store path, so switch queries its closure."""
    old = "/nix/store/" + "a" * 32 + "-nixos-system-vm-26.05"
    monkeypatch.setattr("nixlayer.layer.switch.running_store_path", lambda _cur: old)
    return old


@pytest.mark.usefixtures("running_in_store")
def test_a_failed_build_is_reported_without_waiting_for_the_closure_query(
    job: Path, base: Path, where: Where, tmp_path: Path
) -> None:
    """The running system's closure is queried beside the build; when the build fails,
    its error comes at once, not after that query."""
    nix = fake("2.34", tmp_path)
    nix.on("nix", "path-info", effect=lambda _argv, _stdin: time.sleep(4))
    nix.on("nix", "build", returncode=1, stderr=captured("2.34", "stderr/build-throw.txt"))
    nix.rules[:0] = nix.rules[-2:]
    del nix.rules[-2:]
    started = time.monotonic()
    with pytest.raises(NixError):
        switch(job, base=str(base), kind="nixos", name="vm", action="dry-activate",
               where=where, nix=nix)  # fmt: skip
    assert time.monotonic() - started < 3


@pytest.mark.usefixtures("host_vm", "running_in_store")
def test_a_closure_query_that_breaks_the_parser_leaves_the_switch_alone(
    job: Path, base: Path, where: Where
) -> None:
    """path-info prints JSON nested past Python's recursion limit: no closure diff, and
    the switch goes on (before, RecursionError reached the user as a bug)."""
    toplevel = where.state_dir.parent / "new-system"
    (toplevel / "etc/systemd/system").mkdir(parents=True)
    nix = fake("2.34", toplevel)
    nix.on("nix", "path-info", stdout="[" * 100_000 + "]" * 100_000)
    nix.rules.insert(0, nix.rules.pop())
    result = switch(job, base=str(base), kind="system-manager", action="dry-activate",
                    where=where, nix=nix)  # fmt: skip
    assert result.closure is None and result.outcome == "ok"
