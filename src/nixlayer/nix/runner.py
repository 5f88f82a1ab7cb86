"""The one subprocess wrapper around `nix`.

Every command is logged as a line that can be pasted into a shell. Failures
raise `NixError` carrying Nix's own error text.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from nixlayer.errors import NixError, NixNotFoundError
from nixlayer.nix import commands
from nixlayer.nix.progress import BuildProgress
from nixlayer.nix.version import NixVersion, parse_version

log = logging.getLogger("nixlayer.nix")

ProgressCallback = Callable[[BuildProgress], None]

_version_cache: dict[str, NixVersion] = {}
_version_lock = threading.Lock()


@dataclass
class Nix:
    """How to run nix: which binary, and extra options for every call."""

    binary: str = field(default_factory=lambda: os.environ.get("NIXLAYER_NIX", "nix"))
    options: Sequence[str] = ()
    env: Mapping[str, str] | None = None

    def argv(self, args: Sequence[str], tool: str = "nix") -> list[str]:
        if tool == "nix":
            return [self.binary, *args, *self.options]
        # Other Nix tools (nix-env) come from the same installation as `nix`.
        found = shutil.which(self.binary)
        sibling = os.path.join(os.path.dirname(found), tool) if found else tool
        return [sibling if os.path.exists(sibling) else tool, *args, *self.options]

    def version(self) -> NixVersion:
        """Detect once per binary per process."""
        with _version_lock:
            cached = _version_cache.get(self.binary)
            if cached is None:
                # Without self.options: they are for real work, not the version probe.
                out = Nix(binary=self.binary, env=self.env).run(commands.version()).stdout
                try:
                    cached = parse_version(out)
                except ValueError as exc:
                    raise NixNotFoundError(f"{self.binary}: {exc}") from exc
                _version_cache[self.binary] = cached
            return cached

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: str | None = None,
        progress: ProgressCallback | None = None,
        tool: str = "nix",
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `nix args...`; raise NixError on a non-zero exit.

        With `progress`, stderr is read line by line as internal JSON and each
        update is handed to the callback (the argv must ask for that log format).
        """
        argv = self.argv(args, tool)
        line = shlex.join(argv)
        log.info("$ %s", line)
        if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
            raise NixNotFoundError(
                f"cannot find {argv[0]!r}: install Nix, or set NIXLAYER_NIX to its path"
            )
        env = {**os.environ, **self.env} if self.env else None
        if progress is None:
            proc = subprocess.run(
                argv, check=False, capture_output=True, text=True, cwd=cwd, env=env, input=stdin
            )
            stderr = proc.stderr
        else:
            proc, stderr = self._run_streaming(argv, cwd, env, progress)
        if proc.returncode != 0:
            raise NixError(line, proc.returncode, stderr)
        for warning in _warnings(stderr):
            log.info("%s", warning)
        return proc

    @staticmethod
    def _run_streaming(
        argv: list[str],
        cwd: str | None,
        env: Mapping[str, str] | None,
        progress: ProgressCallback,
    ) -> tuple[subprocess.CompletedProcess[str], str]:
        state = BuildProgress()
        plain: list[str] = []
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env
        ) as proc:
            stdout_chunks: list[str] = []
            reader = threading.Thread(
                target=lambda: stdout_chunks.append(proc.stdout.read() if proc.stdout else ""),
                daemon=True,
            )
            reader.start()
            assert proc.stderr is not None
            for raw in proc.stderr:
                if state.feed(raw.rstrip("\n")):
                    progress(state)
                else:
                    plain.append(raw)
            reader.join()
            returncode = proc.wait()
        # Reassemble a human stderr: Nix's messages (errors, warnings) plus any plain lines.
        text = "".join(plain) + "\n".join(m for level, m in state.messages if level <= 1)
        return subprocess.CompletedProcess(argv, returncode, "".join(stdout_chunks), text), text


def _warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("warning:")]
