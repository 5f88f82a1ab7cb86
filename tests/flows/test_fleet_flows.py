"""fleet build on the recording fake Nix: one fetch per library, one lock per
distinct flake.nix, one evaluator, one build graph, per dialect. No Nix needed."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from nixlayer.closure.fleet import fleet_build
from nixlayer.closure.fleet_eval import evaluate
from nixlayer.closure.fleet_nix import Target, fleet_expr
from nixlayer.closure.fleet_shared import locked_path_ref
from nixlayer.closure.fleetspec import FleetEntry
from nixlayer.fsutil import state_dir
from tests.fakenix import FakeNix, captured
from tests.flows.closure_fake import (
    DRV,
    GITHUB,
    INSTALLABLE,
    TOPLEVEL,
    VERSIONS,
    evaluator,
    fake,
    spec,
    tree_hash,
    write_lock,
)


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
    refs = [locked_path_ref(d, tree_hash(d)) for d in dirs]
    links = [state_dir(tmp_path) / "results" / n for n in "abc"]
    targets = [
        Target(n, ref, ("packages", "x86_64-linux", "toplevel"), link)
        for n, ref, link in zip("abc", refs, links, strict=True)
    ]
    # The built outputs are held by a temporary GC root until the out-links exist.
    realise = graph[3]
    held = Path(realise[realise.index("--add-root") + 1])
    assert held.name == "out" and held.parent.name.startswith("nixlayer-built-")
    assert not held.parent.exists()  # removed once the out-links were made
    assert graph[:5] == [
        ["nix", "hash", "path", "--type", "sha256", *map(str, dirs)],
        ["nix", "eval", "--json", "--expr", fleet_expr(targets)],
        ["nix-store", "--check-validity", "--print-invalid", TOPLEVEL],
        ["nix-store", "--realise", "--keep-going", "--add-root", str(held), DRV],
        ["nix-store", "--check-validity", "--print-invalid", TOPLEVEL],
    ]
    # Out-links are made in parallel: in any order, one per VM.
    outlinks = sorted(graph[5:8])
    assert outlinks == [
        ["nix", "build", TOPLEVEL, "--json", "--out-link", str(link)] for link in links
    ]
    assert graph[8:] == [c for ref in refs for c in initrd_calls(ref)]


@pytest.mark.parametrize("version", VERSIONS)
def test_vms_named_at_boot_are_evaluated_once_and_linked_each(tmp_path: Path, version: str) -> None:
    """Three VMs of one design, host names set at boot: one config dir content, so
    the evaluator gets the first alone; each VM still gets its out-link and name."""
    nix = fake(version)
    entries = [FleetEntry(name=n, spec=spec(n, hostname="boot")) for n in "abc"]
    outcomes = fleet_build(entries, root=tmp_path, jobs=1, nix=nix)
    assert [(o.status, o.toplevel) for o in outcomes] == [("built", TOPLEVEL)] * 3
    assert [o.kernel_params for o in outcomes] == [(f"systemd.hostname={n}",) for n in "abc"]
    graph = nix.calls[fleet_locks(nix, tmp_path, "abc") :]
    first = tmp_path / "a"
    target = Target("a", locked_path_ref(first, tree_hash(first)), (*INSTALLABLE.split("."),),
                    state_dir(tmp_path) / "results" / "a")  # fmt: skip
    assert graph[1] == ["nix", "eval", "--json", "--expr", fleet_expr([target])]
    assert [c for c in graph if c[:3] == ["nix", "eval", "--json"] and "--expr" in c] == [graph[1]]
    outlinks = sorted(c for c in graph if "--out-link" in c)
    links = [state_dir(tmp_path) / "results" / n for n in "abc"]
    assert outlinks == [["nix", "build", TOPLEVEL, "--json", "--out-link", str(ln)] for ln in links]


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


def _share_targets(root: Path, version: str, names: str, lender: str) -> list[Target]:
    refs = {n: locked_path_ref(root / n, tree_hash(root / n)) for n in names}
    return [
        Target(
            n,
            refs[n],
            ("packages", "x86_64-linux", "toplevel"),
            state_dir(root) / "results" / n,
            config=("nixosConfigurations", "vm"),
            pkgs_from=refs[lender] if n != lender else None,
        )
        for n in names
    ]


def test_fleet_share_pkgs_lends_the_first_vms_package_set(tmp_path: Path) -> None:
    """VMs of one group take the first one's package set: one evaluator still, each
    of the others naming the flake it takes it from."""
    nix = fake("2.34")
    entries = [FleetEntry(name=n, spec=spec(n)) for n in "abc"]
    outcomes = fleet_build(entries, root=tmp_path, nix=nix, share_pkgs=True)
    assert [o.status for o in outcomes] == ["built"] * 3
    evals = [c for c in nix.calls if c[1:4] == ["eval", "--json", "--expr"]]
    assert evals == [["nix", "eval", "--json", "--expr", fleet_expr(_share_targets(
        tmp_path, "2.34", "abc", "a"))]]  # fmt: skip
    assert 'pkgsFrom = "path:' in evals[0][4] and "extendModules" in evals[0][4]


def test_fleet_share_pkgs_a_failed_lender_lends_nothing(tmp_path: Path) -> None:
    """The first VM's evaluation dies: the others are evaluated again, alone, so
    that a failure of theirs is their own."""
    nix = fake("2.34")
    failing = nix.rules[0].__class__(
        ["nix", "eval", "--json", "--expr"],
        returncode=1,
        answer=evaluator("2.34", frozenset({"a"})),
        effect=lambda _argv, _stdin: nix.rules.remove(failing),
    )
    nix.rules.insert(0, failing)
    entries = [FleetEntry(name=n, spec=spec(n)) for n in "abc"]
    a, b, c = fleet_build(entries, root=tmp_path, nix=nix, share_pkgs=True)
    assert a.status == "failed" and a.error == "error: mmtests is broken in lib-b"
    assert (b.status, c.status) == ("built", "built")
    evals = [c[4] for c in nix.calls if c[1:4] == ["eval", "--json", "--expr"]]
    alone = [replace(t, pkgs_from=None) for t in _share_targets(tmp_path, "2.34", "abc", "a")]
    assert len(evals) == 2 and evals[1] == fleet_expr(alone[1:])


def test_two_evaluators_a_borrower_goes_with_its_lender(tmp_path: Path) -> None:
    """Targets are dealt to the evaluators in turn, but one that takes another's
    package set is evaluated beside it (else its evaluator would build that set too)."""
    nix = fake("2.34")

    def target(name: str, lender: str | None = None) -> Target:
        flake = f"path:/{name}?narHash=h"
        lent = f"path:/{lender}?narHash=h" if lender else None
        attr = ("packages", "x86_64-linux", "toplevel")
        return Target(name, flake, attr, tmp_path / name, ("nixosConfigurations", "vm"), lent)

    targets = [target("a"), target("x"), target("b", "a"), target("y"), target("c", "a")]
    out = evaluate(targets, nix=nix, workers=2)
    assert sorted(out) == ["a", "b", "c", "x", "y"]
    evals = {c[4] for c in nix.calls if c[1:4] == ["eval", "--json", "--expr"]}
    by_name = {t.name: t for t in targets}
    assert evals == {
        fleet_expr([by_name[n] for n in "abyc"]),
        fleet_expr([by_name["x"]]),
    }


def test_an_invalid_vms_name_cannot_forge_lines_or_drive_the_terminal(tmp_path: Path) -> None:
    """A fleet file's key (or spec file name) with a newline or ESC in it: the invalid
    VM is reported (table, progress, log) on one line, its control characters escaped."""
    from tests.helpers import cli

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text('vms:\n  "bad\\nfake: built /nix/store/x\\e[2J":\n    profiles: [devel]\n')
    proc = cli("fleet", "build", str(fleet), "--root", str(tmp_path / "root"))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout + proc.stderr
    assert "\x1b" not in out
    assert not any(line.startswith("fake:") for line in out.splitlines()), out
    assert "bad\\nfake: built /nix/store/x\\x1b[2J" in out


@pytest.mark.parametrize("version", VERSIONS)
def test_the_fakes_directory_hash_has_the_shape_real_nix_prints(
    tmp_path: Path, version: str
) -> None:
    """The fake hashes content (tree_hash); what it prints has the shape of the
    capture from the real `nix hash path`."""
    (tmp_path / "f").write_text("x")
    sri = re.compile(r"sha256-[A-Za-z0-9+/]{43}=")
    for h in [*captured(version, "hash-path.txt").split(), tree_hash(tmp_path)]:
        assert sri.fullmatch(h), h
