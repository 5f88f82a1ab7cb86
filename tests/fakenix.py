"""A recording stand-in for the Nix runner, for flow tests that run without Nix.

Injected where flows take `nix: Nix`. It records every argv (tool first: `nix`,
`nix-store`, `nix-env`) and answers from rules, first match wins; unmatched calls succeed
with empty output. Canned answers are what real Nix printed (tests/data/nix-json), so the
flows are fed the shapes they meet in the field. This is the argv-sequence style of
nixos-rebuild-ng's tests: the real-Nix layer proves the commands work, these prove which
commands each flow runs, in which order, with which arguments, on every dialect.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nixlayer.nix.nixjson.version import parse as parse_version
from nixlayer.nix.runner import Nix, ProgressCallback, Streaming, display
from nixlayer.nix.version import NixVersion

DATA = Path(__file__).parent / "data" / "nix-json"

Effect = Callable[[list[str], str | None], None]
Answer = Callable[[list[str], str | None], str]


@dataclass
class Rule:
    prefix: list[str]
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0
    effect: Effect | None = None  # e.g. write the flake.lock that `nix flake lock` would
    contains: list[str] = field(default_factory=list)
    answer: Answer | None = None  # stdout computed from the call, instead of `stdout`

    def matches(self, argv: list[str]) -> bool:
        return argv[: len(self.prefix)] == self.prefix and all(c in argv for c in self.contains)


class FakeNix(Nix):
    def __init__(self, version: str = "2.8.0", options: Sequence[str] = ()) -> None:
        super().__init__(binary="nix", options=options)
        self.nix_version = parse_version(f"nix (Nix) {version}")
        self.calls: list[list[str]] = []
        self.rules: list[Rule] = []

    def on(
        self,
        *prefix: str,
        stdout: str = "",
        stderr: str = "",
        returncode: int = 0,
        effect: Effect | None = None,
        contains: Sequence[str] = (),
        answer: Answer | None = None,
    ) -> FakeNix:
        rule = Rule(list(prefix), stdout, stderr, returncode, effect, list(contains), answer)
        self.rules.append(rule)
        return self

    def version(self) -> NixVersion:
        return self.nix_version

    def argv(self, args: Sequence[str], tool: str = "nix") -> list[str]:
        return [*self.wrapper, tool, *args, *self.options]

    def _bare(self, argv: list[str]) -> list[str]:
        """What the rules match: the call without its wrapper (nix/confine.py)."""
        n = len(self.wrapper)
        return argv[n:] if n and argv[:n] == list(self.wrapper) else argv

    def execute(
        self,
        argv: list[str],
        *,
        cwd: str | None = None,
        stdin: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[int, str, str]:
        """Everything of the real runner runs (argv, logging, warnings, errors) but this."""
        self.calls.append(argv)
        rule = next((r for r in self.rules if r.matches(self._bare(argv))), None)
        if rule is None:
            return 0, "", ""
        if rule.effect is not None:
            rule.effect(argv, stdin)
        stdout = rule.answer(argv, stdin) if rule.answer is not None else rule.stdout
        return rule.returncode, stdout, rule.stderr

    @contextmanager
    def spawn(self, argv: list[str]) -> Iterator[Streaming]:
        """A streamed `nix` (the fleet's shared evaluator): recorded like the others; its
        stderr is the rule's `answer` (or `stderr`), its exit status the rule's."""
        self.calls.append(argv)
        rule = next((r for r in self.rules if r.matches(self._bare(argv))), None)
        if rule is None:
            yield _Spawned(io.StringIO(""), 0)
            return
        if rule.effect is not None:
            rule.effect(argv, None)
        stderr = rule.answer(argv, None) if rule.answer is not None else rule.stderr
        yield _Spawned(io.StringIO(stderr), rule.returncode)

    def commands(self) -> list[str]:
        """The calls as pasteable lines: what a user would see logged."""
        return [display(c) for c in self.calls]


@dataclass
class _Spawned:
    """What `Nix.spawn` gives the caller, already finished."""

    stderr: io.StringIO
    returncode: int
    pid: int = field(default_factory=os.getpid)  # some live process, for its memory

    def kill(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode


def captured(version: str, name: str) -> str:
    """What Nix `version` (e.g. "2.34") printed, from tests/data/nix-json."""
    return (DATA / version / name).read_text()


def dialect_version(version: str) -> str:
    """A full version number for a capture directory name."""
    return parse_version(captured(version, "version.txt")).text.split()[-1]
