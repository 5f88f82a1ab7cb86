"""Windmill's own tools for the tests: npm `windmill-cli` (wmill and its Python
parser) in the repository's .cache/npm, installed on first use."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO

WINDMILL_CLI = "windmill-cli@1.819.0"
CACHE = REPO / ".cache" / "npm"
WMILL = CACHE / "node_modules" / ".bin" / "wmill"
PARSER = CACHE / "node_modules" / "windmill-parser-wasm-py"


def ensure_windmill_cli() -> None:
    if WMILL.exists() and PARSER.is_dir():
        return
    if shutil.which("npm") is None:
        if os.environ.get("NIXLAYER_REQUIRE_NIX"):
            pytest.fail("npm is required to install windmill-cli (scripts/setup installs it)")
        pytest.skip("npm is not installed")
    proc = subprocess.run(
        ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", WINDMILL_CLI],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def parse_python(*files: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [
            "node",
            str(Path(__file__).with_name("windmill_parse.mjs")),
            str(PARSER),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def wmill(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WMILL), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HOME": str(home), "NO_COLOR": "1", "WMILL_CONFIG_DIR": str(home)},
        timeout=120,
        check=False,
    )


class _Backend(http.server.BaseHTTPRequestHandler):
    """What `wmill generate-metadata --schema-only` asks a server: who am I, and
    which scripts changed. It infers the schemas itself, locally."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer  # noqa: N815 - http.server's handler names
    do_POST = _answer  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def fake_backend() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
