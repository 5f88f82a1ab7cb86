"""Shared test helpers (not fixtures): keys, the stand-in library, running nix."""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


def ssh_key(comment: str = "", key_type: str = "ssh-ed25519", seed: bytes = b"k") -> str:
    t = key_type.encode()
    blob = struct.pack(">I", len(t)) + t + struct.pack(">I", 32) + (seed * 32)[:32]
    key = f"{key_type} {base64.b64encode(blob).decode()}"
    return f"{key} {comment}" if comment else key


def offline_nix_config(registry: Path) -> str:
    registry.write_text('{"flakes":[],"version":2}')
    return "\n".join(
        [
            "experimental-features = nix-command flakes",
            "substituters =",
            f"flake-registry = {registry}",
            # Builds run as the caller (root in CI), without the nixbld users.
            "build-users-group =",
        ]
    )


def run_nix(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["nix", *args], capture_output=True, text=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"nix {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def nix_eval_file(path: Path, apply: str) -> Any:
    return json.loads(run_nix("eval", "--json", "--file", str(path), "--apply", apply))


@dataclass(frozen=True)
class StandIn:
    """A locked copy of the stand-in library on top of the stand-in nixpkgs."""

    base: Path
    library: Path
    nixpkgs: Path


def make_stand_in(base: Path, name: str = "nixos-flake") -> StandIn:
    nixpkgs = base / "nixpkgs"
    if not nixpkgs.exists():
        shutil.copytree(FIXTURES / "nixpkgs", nixpkgs)
    library = base / name
    shutil.copytree(FIXTURES / "nixos-flake", library)
    run_nix("flake", "lock", f"path:{library}", "--override-input", "nixpkgs", f"path:{nixpkgs}")
    return StandIn(base=base, library=library, nixpkgs=nixpkgs)


def nixlayer_bin() -> str:
    found = shutil.which("nixlayer")
    venv = REPO / ".venv" / "bin" / "nixlayer"
    if venv.exists():
        return str(venv)
    if found:
        return found
    raise AssertionError("nixlayer is not installed (pip install -e .)")


def cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nixlayer_bin(), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        input=input_text,
        check=False,
    )


def json_result(proc: subprocess.CompletedProcess[str], ok: bool = True) -> Any:
    """The `result` of a command's --json envelope, after checking the envelope's shape."""
    env = json.loads(proc.stdout)
    assert set(env) == {"version", "command", "ok", "exit_code", "result", "error", "warnings"}
    assert env["ok"] is ok and env["exit_code"] == proc.returncode, env
    return env["result"]


def run_on_terminal(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    """Run nixlayer with stderr on a pseudo-terminal (live progress on); return its exit
    code, everything it showed there, and its stdout."""
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [nixlayer_bin(), *args], stdout=subprocess.PIPE, stderr=secondary, text=True
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data.decode(errors="replace"))
    out = proc.stdout.read() if proc.stdout else ""
    code = proc.wait(timeout=timeout)
    os.close(primary)
    return code, "".join(chunks), out
