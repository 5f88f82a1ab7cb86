"""The recording fake Nix as render, lock, build, run and fleet meet it: canned
answers captured from each Nix version, and specs to feed them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from nixlayer.closure.manifest import read_manifest
from nixlayer.closure.spec import VMSpec
from tests.fakenix import Answer, FakeNix, captured, dialect_version
from tests.helpers import ssh_key

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


def tree_hash(directory: Path) -> str:
    """What `nix hash path` says of a directory, in kind: the same for the same
    content wherever it lies, different for different content."""
    h = hashlib.sha256()
    for p in sorted(directory.rglob("*")):
        h.update(str(p.relative_to(directory)).encode() + b"\0")
        h.update((p.read_bytes() if p.is_file() else b"") + b"\0")
    return "sha256-" + base64.b64encode(h.digest()).decode()


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
    nix.on(
        "nix",
        "hash",
        "path",
        answer=lambda argv, _: "".join(f"{tree_hash(Path(d))}\n" for d in argv[5:]),
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
