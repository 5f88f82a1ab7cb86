"""render, lock, build, run and fleet on the recording fake Nix: which commands, in which
order, per dialect. No Nix needed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from nixlayer.closure.build import build_closure
from nixlayer.closure.fleet import fleet_build
from nixlayer.closure.fleet_eval import Target, fleet_expr
from nixlayer.closure.fleet_shared import locked_path_ref
from nixlayer.closure.fleetspec import FleetEntry
from nixlayer.closure.lock import lock_config
from nixlayer.closure.manifest import read_manifest
from nixlayer.closure.render import render_config
from nixlayer.closure.run import run_closure
from nixlayer.closure.spec import VMSpec
from nixlayer.errors import InputError
from nixlayer.fsutil import state_dir
from tests.fakenix import Answer, FakeNix, captured, dialect_version
from tests.helpers import FIXTURES, ssh_key

GITHUB = "github:linux-kdevops/nixos-flake"
TOPLEVEL = "/nix/store/hwazjyb1lf91mni1a42qd68m48cw4hm5-nixos-system-vm-26.05"
DRV = "/nix/store/18k8rmj61abj8kd8zk7cw8k5x87ryb4s-nixos-system-vm-26.05.drv"
INSTALLABLE = "packages.x86_64-linux.toplevel"
VERSIONS = ["2.8", "2.26", "2.34"]


def spec(name: str = "vm", src: Path | None = None, **extra: object) -> VMSpec:
    data: dict[str, object] = {
        "vm_name": name,
        "library": GITHUB,
        "ssh_keys": [ssh_key("ci")],
        "profiles": ["devel"],
        "test_suites": ["ltp"],
    }
    if src is not None:
        # fstests is what puts fio in the closure (as in the captured override check).
        data["overrides"] = [{"pkg": "fio", "src": str(src)}]
        data["test_suites"] = ["fstests"]
    return VMSpec.model_validate({**data, **extra})


def write_lock(version: str) -> object:
    """What `nix flake lock`/`nix flake update` leaves behind: a lock file in the flake."""

    def effect(argv: list[str], _stdin: str | None) -> None:
        ref = next(a for a in argv if a.startswith("path:"))
        lock = json.loads(captured(version, "flake.lock"))
        # The capture pinned a path: library; these specs name a GitHub one.
        locked = lock["nodes"]["nixos-flake"]["locked"]
        lock["nodes"]["nixos-flake"]["locked"] = {
            "type": "github",
            "owner": "linux-kdevops",
            "repo": "nixos-flake",
            "rev": "0" * 40,
            "narHash": locked["narHash"],
            "lastModified": locked["lastModified"],
        }
        d = Path(ref.removeprefix("path:"))
        if "fio-src" not in read_manifest(d).override_inputs:
            # The capture's VM overrides fio; Nix pins only the inputs a flake has.
            del lock["nodes"]["fio-src"], lock["nodes"]["root"]["inputs"]["fio-src"]
        (d / "flake.lock").write_text(json.dumps(lock))

    return effect


def evaluator(version: str, failing: frozenset[str] = frozenset()) -> Answer:
    """The shared evaluator's stderr for the targets in its expression: the captured
    trace lines of a VM that evaluates, and of one whose module throws (which ends
    the evaluator), under each target's name."""
    good = captured(version, "stderr/fleet-eval.txt")
    thrown = captured(version, "stderr/fleet-eval-throw.txt").split("\n", 1)[1]

    def answer(argv: list[str], _stdin: str | None) -> str:
        out = ""
        for name in re.findall(r'name = "([^"]+)";', argv[argv.index("--expr") + 1]):
            if name in failing:
                return out + thrown.replace("nixlayer-begin broken", f"nixlayer-begin {name}")
            out += good.replace("nixlayer-begin vm", f"nixlayer-begin {name}").replace(
                '"name":"vm"', f'"name":"{name}"'
            )
        return out

    return answer


def fake(version: str) -> FakeNix:
    """Nix `version` as captured: what render, lock, build and fleet run."""
    nix = FakeNix(dialect_version(version))
    nix.on("nix", "flake", "metadata", stdout=captured(version, "flake-metadata-path.json"))
    nix.on("nix", "flake", "lock", effect=write_lock(version))  # type: ignore[arg-type]
    nix.on("nix", "flake", "update", effect=write_lock(version))  # type: ignore[arg-type]
    nix.on("nix", "build", TOPLEVEL, stdout=captured(version, "build-store-path.json"))
    nix.on("nix", "build", stdout=captured(version, "build.json"))
    nix.on("nix", "eval", "--json", "--expr", answer=evaluator(version))
    nix.on("nix", "eval", contains=["--apply"], stdout=captured(version, "eval-override-drvs.json"))
    nix.on("nix", "eval", stdout=captured(version, "eval-initrd-file.json"))
    nix.on(
        "nix", "path-info", "--derivation", stdout=captured(version, "path-info-derivations.txt")
    )
    hashes = captured(version, "hash-path.txt").split()
    nix.on(
        "nix",
        "hash",
        "path",
        answer=lambda argv, _: "".join(f"{hashes[i % 2]}\n" for i in range(len(argv) - 5)),
    )
    # Every output asked about is missing until the build graph ran (one path a line,
    # as the capture prints an invalid one).
    built: list[bool] = []
    nix.on(
        "nix-store",
        "--check-validity",
        answer=lambda argv, _: "" if built else "".join(f"{p}\n" for p in argv[3:]),
    )
    nix.on(
        "nix-store",
        "--realise",
        stdout=captured(version, "realise.txt"),
        effect=lambda _argv, _stdin: built.append(True),
    )
    return nix


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "fio"
    d.mkdir()
    (d / "README").write_text("fio\n")
    return d


@pytest.mark.parametrize("version", VERSIONS)
def test_render_fetches_a_remote_library_once(tmp_path: Path, version: str) -> None:
    nix = fake(version)
    result = render_config(spec(), root=tmp_path, nix=nix)
    assert nix.calls == [["nix", "flake", "metadata", "--json", GITHUB]]
    assert result.flake_nix.is_file() and GITHUB in result.flake_nix.read_text()


def test_render_of_a_local_library_runs_no_nix(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(FIXTURES / "nixos-flake", lib)
    nix = fake("2.34")
    render_config(spec(library=str(lib)), root=tmp_path, nix=nix)
    assert nix.calls == []


@pytest.mark.parametrize(
    ("version", "repin"),
    [
        ("2.8", ["nix", "flake", "lock", "path:{d}", "--update-input", "fio-src"]),
        ("2.26", ["nix", "flake", "update", "--flake", "path:{d}", "fio-src"]),
        ("2.34", ["nix", "flake", "update", "--flake", "path:{d}", "fio-src"]),
    ],
)
def test_lock_pins_then_repins_the_source_override(
    tmp_path: Path, src: Path, version: str, repin: list[str]
) -> None:
    nix = fake(version)
    d = render_config(spec(src=src), root=tmp_path, nix=nix).config_dir
    nix.calls.clear()
    lock_config(d, nix=nix)
    assert nix.calls == [["nix", "flake", "lock", f"path:{d}"]]
    nix.calls.clear()
    # The next lock moves the override (a developer's checkout), never the library.
    lock_config(d, nix=nix)
    assert nix.calls == [[a.format(d=d) for a in repin]]


def test_lock_update_library_repins_it_too(tmp_path: Path, src: Path) -> None:
    nix = fake("2.34")
    d = render_config(spec(src=src), root=tmp_path, nix=nix).config_dir
    lock_config(d, nix=nix)
    nix.calls.clear()
    lock_config(d, update_library=True, nix=nix)
    repin = ["nix", "flake", "update", "--flake", f"path:{d}", "fio-src", "nixos-flake"]
    assert nix.calls == [repin]


def test_lock_relays_nix_warnings_whole(
    tmp_path: Path, src: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nix = fake("2.34")
    d = render_config(spec(src=src), root=tmp_path, nix=nix).config_dir
    lock_config(d, nix=nix)
    nix.on("nix", "flake", "update", stderr=captured("2.34", "stderr/lock-update.txt"))
    nix.rules.insert(0, nix.rules.pop())
    caplog.set_level("WARNING", logger="nixlayer")
    lock_config(d, nix=nix)
    (record,) = [r for r in caplog.records if "updating lock file" in r.getMessage()]
    assert "• Updated input 'fio-src':" in record.getMessage()
    assert "→ 'path:" in record.getMessage()


def test_lock_checks_a_stale_path_library(tmp_path: Path) -> None:
    """A `path:` library pin is compared with the directory by `nix hash path`."""
    lib = tmp_path / "nixos-flake"
    shutil.copytree(FIXTURES / "nixos-flake", lib)
    nix = fake("2.34").on("nix", "hash", "path", stdout="sha256-changed\n")
    nix.rules.insert(0, nix.rules.pop())
    d = render_config(spec(library=str(lib)), root=tmp_path / "vms", nix=nix).config_dir
    lock = json.loads(captured("2.34", "flake.lock"))
    lock["nodes"]["nixos-flake"]["locked"]["path"] = str(lib)
    del lock["nodes"]["fio-src"], lock["nodes"]["root"]["inputs"]["fio-src"]
    (d / "flake.lock").write_text(json.dumps(lock))
    nix.rules = [r for r in nix.rules if r.prefix[:3] != ["nix", "flake", "lock"]]
    result = lock_config(d, nix=nix)
    assert nix.calls == [
        ["nix", "hash", "path", "--type", "sha256", str(lib)],
        ["nix", "flake", "lock", f"path:{d}"],
    ]
    assert "changed on disk since it was pinned" in result.warnings[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_build_then_the_initrd_when_there_is_no_bootspec(tmp_path: Path, version: str) -> None:
    nix = fake(version)
    d = render_config(spec(), root=tmp_path, nix=nix).config_dir
    nix.calls.clear()
    result = build_closure(d, nix=nix)
    link = state_dir(tmp_path) / "results" / "vm"
    base = f"path:{d}#nixosConfigurations.vm.config.system"
    assert nix.calls == [
        ["nix", "build", f"path:{d}#{INSTALLABLE}", "--json", "--out-link", str(link)],
        ["nix", "eval", "--json", f"{base}.boot.loader.initrdFile"],
        ["nix", "build", f"{base}.build.initialRamdisk", "--json", "--no-link"],
    ]
    assert result.toplevel == TOPLEVEL and result.init == f"{TOPLEVEL}/init"


def test_build_with_progress_asks_nix_for_internal_json(tmp_path: Path) -> None:
    nix = fake("2.34")
    d = render_config(spec(), root=tmp_path, nix=nix).config_dir
    nix.calls.clear()
    build_closure(d, nix=nix, progress=lambda _p: None, system="x86_64-linux")
    assert nix.calls[0][:3] == ["nix", "build", f"path:{d}#packages.x86_64-linux.toplevel"]
    assert nix.calls[0][-3:] == ["--log-format", "internal-json", "-v"]
    # ... and the logged command leaves them out.
    assert "--log-format" not in nix.commands()[0]


def test_options_reach_every_command(tmp_path: Path) -> None:
    nix = fake("2.34")
    nix.options = ["--option", "max-jobs", "2"]
    run_closure(spec(), root=tmp_path, nix=nix)
    assert all(c[-3:] == ["--option", "max-jobs", "2"] for c in nix.calls)


@pytest.mark.parametrize("version", VERSIONS)
def test_run_is_render_lock_build(tmp_path: Path, src: Path, version: str) -> None:
    nix = fake(version)
    result = run_closure(spec(src=src), root=tmp_path, nix=nix)
    d = result.render.config_dir
    config = f"path:{d}#nixosConfigurations.vm"
    link = state_dir(tmp_path) / "results" / "vm"
    assert nix.calls[:2] == [
        ["nix", "flake", "metadata", "--json", GITHUB],
        ["nix", "flake", "lock", f"path:{d}"],
    ]
    # The override check: fio's derivation, then the closure it must be in.
    check, closure, *rest = nix.calls[2:]
    assert check[:3] == ["nix", "eval", "--json"] and check[3:5] == [config, "--apply"]
    assert 'builtins.fromJSON "[\\"fio\\"]"' in check[5] and len(check) == 6
    assert closure == ["nix", "path-info", "--derivation", "--recursive", f"path:{d}#{INSTALLABLE}"]
    assert rest == [
        ["nix", "build", f"path:{d}#{INSTALLABLE}", "--json", "--out-link", str(link)],
        ["nix", "eval", "--json", f"{config}.config.system.boot.loader.initrdFile"],
        ["nix", "build", f"{config}.config.system.build.initialRamdisk", "--json", "--no-link"],
    ]
    assert result.build.toplevel == TOPLEVEL


def test_build_refuses_an_override_its_closure_does_not_use(tmp_path: Path, src: Path) -> None:
    """fio's derivation is not among the closure's: the overlay would change nothing."""
    nix = fake("2.34")
    (fio,) = json.loads(captured("2.34", "eval-override-drvs.json"))
    others = [p for p in captured("2.34", "path-info-derivations.txt").split() if p != fio]
    assert len(others) < len(captured("2.34", "path-info-derivations.txt").split())
    nix.on("nix", "path-info", "--derivation", stdout="\n".join(others) + "\n")
    nix.rules.insert(0, nix.rules.pop())
    with pytest.raises(InputError) as info:
        run_closure(spec(src=src), root=tmp_path, nix=nix)
    assert info.value.field == "overrides[0].pkg"
    assert "'fio' is not in this VM's closure" in str(info.value)
    assert [c[1] for c in nix.calls] == ["flake", "flake", "eval", "path-info"]


def test_a_nix_failure_stops_run_before_build(tmp_path: Path) -> None:
    from nixlayer.errors import NixError

    nix = fake("2.34")
    nix.rules.insert(
        0,
        nix.rules[0].__class__(
            ["nix", "flake", "lock"],
            returncode=1,
            stderr=captured("2.34", "stderr/eval-file-throw.txt"),
        ),
    )
    with pytest.raises(NixError) as info:
        run_closure(spec(), root=tmp_path, nix=nix)
    assert info.value.first_error() == "the job's inputs are broken"
    assert [c[:3] for c in nix.calls] == [["nix", "flake", "metadata"], ["nix", "flake", "lock"]]


def fleet_locks(nix: FakeNix, root: Path, names: str) -> int:
    """The library fetched once, by render; the first VM locked; the others, whose
    flake.nix is the same, given that lock (Nix would make the same one). Returns
    how many calls that was."""
    assert nix.calls[:2] == [
        ["nix", "flake", "metadata", "--json", GITHUB],
        ["nix", "flake", "lock", f"path:{root / names[0]}"],
    ]
    first = (root / names[0] / "flake.lock").read_text()
    assert "nixos-flake" in json.loads(first)["nodes"]
    assert all((root / n / "flake.lock").read_text() == first for n in names)
    return 2


def initrd_calls(ref: str) -> list[list[str]]:
    system = f"{ref}#nixosConfigurations.vm.config.system"
    return [
        ["nix", "eval", "--json", f"{system}.boot.loader.initrdFile"],
        ["nix", "build", f"{system}.build.initialRamdisk", "--json", "--no-link"],
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_fleet_evaluates_every_vm_in_one_evaluator_and_builds_one_graph(
    tmp_path: Path, version: str
) -> None:
    """The default: one `nix eval` for all VMs, one `nix-store --realise`, out-links."""
    nix = fake(version)
    entries = [FleetEntry(name=n, spec=spec(n)) for n in "abc"]
    outcomes = fleet_build(entries, root=tmp_path, jobs=1, nix=nix)
    assert [(o.status, o.toplevel) for o in outcomes] == [("built", TOPLEVEL)] * 3
    graph = nix.calls[fleet_locks(nix, tmp_path, "abc") :]
    dirs = [tmp_path / n for n in "abc"]
    hashes = captured(version, "hash-path.txt").split()
    refs = [locked_path_ref(d, hashes[i % 2]) for i, d in enumerate(dirs)]
    links = [state_dir(tmp_path) / "results" / n for n in "abc"]
    targets = [
        Target(n, ref, ("packages", "x86_64-linux", "toplevel"), link)
        for n, ref, link in zip("abc", refs, links, strict=True)
    ]
    assert graph[:5] == [
        ["nix", "hash", "path", "--type", "sha256", *map(str, dirs)],
        ["nix", "eval", "--json", "--expr", fleet_expr(targets)],
        ["nix-store", "--check-validity", "--print-invalid", TOPLEVEL],
        ["nix-store", "--realise", "--keep-going", DRV],
        ["nix-store", "--check-validity", "--print-invalid", TOPLEVEL],
    ]
    # Out-links are made in parallel: in any order, one per VM.
    outlinks = sorted(graph[5:8])
    assert outlinks == [
        ["nix", "build", TOPLEVEL, "--json", "--out-link", str(link)] for link in links
    ]
    assert graph[8:] == [c for ref in refs for c in initrd_calls(ref)]


@pytest.mark.parametrize("version", VERSIONS)
def test_fleet_per_vm_locks_each_library_once_and_builds_every_vm(
    tmp_path: Path, version: str
) -> None:
    nix = fake(version)
    entries = [FleetEntry(name=n, spec=spec(n)) for n in "abc"]
    outcomes = fleet_build(entries, root=tmp_path, jobs=1, nix=nix, evaluation="per-vm")
    assert [(o.status, o.toplevel) for o in outcomes] == [("built", TOPLEVEL)] * 3
    first = fleet_locks(nix, tmp_path, "abc")
    builds = []
    for n in "abc":
        link = state_dir(tmp_path) / "results" / n
        ref = f"path:{tmp_path / n}"
        builds += [
            ["nix", "build", f"{ref}#{INSTALLABLE}", "--json", "--out-link", str(link)],
            *initrd_calls(ref),
        ]
    assert nix.calls[first:] == builds


@pytest.mark.parametrize("version", VERSIONS)
def test_fleet_isolates_a_throwing_module(tmp_path: Path, version: str) -> None:
    """The shared evaluator dies on the throwing VM, which alone fails, with Nix's cause."""
    nix = fake(version)
    nix.on("nix", "eval", "--json", "--expr", answer=evaluator(version, frozenset({"bad"})))
    nix.rules[-1].returncode = 1
    nix.rules.insert(0, nix.rules.pop())
    entries = [FleetEntry(name=n, spec=spec(n)) for n in ("good", "bad")]
    good, bad = fleet_build(entries, root=tmp_path, jobs=1, nix=nix)
    assert good.status == "built" and good.toplevel == TOPLEVEL
    assert bad.status == "failed" and bad.error == "error: mmtests is broken in lib-b"
    assert [c[3] for c in nix.calls if c[1] == "eval"].count("--expr") == 1  # good: once
    assert [c[1] for c in nix.calls if c[0] == "nix-store"] == [
        "--check-validity",
        "--realise",
        "--check-validity",
    ]


def test_fleet_per_vm_isolates_a_throwing_module(tmp_path: Path) -> None:
    nix = fake("2.34")
    nix.on(
        "nix",
        "build",
        contains=[f"path:{tmp_path / 'bad'}#{INSTALLABLE}"],
        returncode=1,
        stderr=captured("2.34", "stderr/build-throw.txt"),
    )
    nix.rules.insert(0, nix.rules.pop())
    entries = [FleetEntry(name=n, spec=spec(n)) for n in ("good", "bad")]
    good, bad = fleet_build(entries, root=tmp_path, jobs=1, nix=nix, evaluation="per-vm")
    assert good.status == "built" and bad.status == "failed"
    assert bad.error == "build: mmtests is broken in lib-b"


def test_fleet_fetches_each_library_once_and_hashes_each_pinned_dir_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three VMs of one remote library, each with a lock of its own that pins the
    library to a local copy (so each lock checks that copy for edits): one `nix
    flake metadata`, one `nix hash path` of the copy, a warning for every VM."""
    nix = fake("2.34")
    lib = tmp_path / "lib-copy"
    lib.mkdir()
    root = tmp_path / "vms"
    # Different overrides: different flake.nix files, so each VM is locked on its own.
    pkgs = {"a": "fio", "b": "xfsprogs", "c": "ltp"}
    for name in pkgs:
        lock = json.loads(captured("2.34", "flake.lock"))
        lock["nodes"]["nixos-flake"]["locked"]["path"] = str(lib)
        del lock["nodes"]["fio-src"], lock["nodes"]["root"]["inputs"]["fio-src"]
        (root / name).mkdir(parents=True)
        (root / name / "flake.lock").write_text(json.dumps(lock))
    src = tmp_path / "src"
    src.mkdir()
    entries = [
        FleetEntry(name=n, spec=spec(n, overrides=[{"pkg": p, "src": str(src)}]))
        for n, p in pkgs.items()
    ]
    caplog.set_level("WARNING", logger="nixlayer")
    outcomes = fleet_build(entries, root=root, jobs=2, nix=nix)
    assert [o.status for o in outcomes] == ["built"] * 3
    assert [c[:3] for c in nix.calls].count(["nix", "flake", "metadata"]) == 1
    assert [c for c in nix.calls if c[1:3] == ["hash", "path"] and len(c) == 6] == [
        ["nix", "hash", "path", "--type", "sha256", str(lib)]
    ]
    stale = [r for r in caplog.records if "changed on disk since it was pinned" in r.getMessage()]
    assert len(stale) == 3


@pytest.mark.parametrize("path", ["{d}/sub", "./sub"])
def test_fleet_locks_each_vm_whose_lock_names_its_own_directory(tmp_path: Path, path: str) -> None:
    """A lock that pins a path in (or relative to) the VM's directory is that VM's
    alone: the same flake.nix elsewhere is locked on its own."""
    nix = fake("2.34")
    base = write_lock("2.34")

    def own_input(argv: list[str], stdin: str | None) -> None:
        base(argv, stdin)  # type: ignore[operator]
        d = Path(next(a for a in argv if a.startswith("path:")).removeprefix("path:"))
        lock = json.loads((d / "flake.lock").read_text())
        lock["nodes"]["sub"] = {"locked": {"type": "path", "path": path.format(d=d)}}
        (d / "flake.lock").write_text(json.dumps(lock))

    nix.rules.insert(0, nix.rules[0].__class__(["nix", "flake", "lock"], effect=own_input))
    entries = [FleetEntry(name=n, spec=spec(n)) for n in "abc"]
    outcomes = fleet_build(entries, root=tmp_path, jobs=1, nix=nix)
    assert [o.status for o in outcomes] == ["built"] * 3
    locks = [c for c in nix.calls if c[1:3] == ["flake", "lock"]]
    assert locks == [["nix", "flake", "lock", f"path:{tmp_path / n}"] for n in "abc"]
