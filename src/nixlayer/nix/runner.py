"""The one subprocess wrapper around `nix`.

Every command is logged as a line that pastes into a shell: the command as the user would
type it, without the `--log-format internal-json -v` that nixlayer adds to read progress.
Failures raise `NixError` carrying Nix's own error text; warnings are logged whole.

Each `nix` runs in its own process group, so a terminal's Ctrl-C reaches nixlayer, not
Nix. On SIGINT or SIGTERM (handlers installed by the CLI) nixlayer forwards the signal to
every running `nix`, waits for them to end (then kills what is left), and only then lets
the `Interrupted` exception unwind: locks held around a `nix` call are released after it.
"""

from __future__ import annotations

import copy
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Protocol

from nixlayer.errors import (
    Interrupted,
    NixError,
    NixNotFoundError,
    NixOutputError,
    nix_messages,
)
from nixlayer.nix import commands
from nixlayer.nix.nixjson import version as version_json
from nixlayer.nix.progress import BuildProgress
from nixlayer.nix.version import NixVersion

log = logging.getLogger("nixlayer.nix")

ProgressCallback = Callable[[BuildProgress], None]


class Streaming(Protocol):
    """A running `nix` whose stderr is read as it comes (a subprocess.Popen)."""

    @property
    def pid(self) -> int: ...

    @property
    def stderr(self) -> IO[str] | None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


_version_cache: dict[str, NixVersion] = {}
_version_lock = threading.Lock()
# How long a signalled `nix` gets to end its builds before it is killed.
GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class NixResult:
    """What a successful `nix` printed."""

    command: str  # the pasteable line that was logged
    stdout: str
    stderr: str

    @property
    def warnings(self) -> list[str]:
        """Nix's warnings, each whole (with its indented and `• …` lines)."""
        return [text for level, text in nix_messages(self.stderr) if level == "warning"]


@dataclass
class Nix:
    """How to run nix: which binary, extra options for every call, and a wrapper
    every call runs under (nix/confine.py: a mount namespace)."""

    binary: str = field(default_factory=lambda: os.environ.get("NIXLAYER_NIX", "nix"))
    options: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    wrapper: Sequence[str] = ()
    # The variables of `env` the logged command shows: those nixlayer chose (with_env),
    # never a caller's whole environment (the daemon's may hold access tokens).
    shown_env: Sequence[str] = ()

    def argv(self, args: Sequence[str], tool: str = "nix") -> list[str]:
        if tool == "nix":
            return [*self.wrapper, self.binary, *args, *self.options]
        # Other Nix tools (nix-env) come from the same installation as `nix`.
        found = shutil.which(self.binary)
        sibling = os.path.join(os.path.dirname(found), tool) if found else tool
        return [*self.wrapper, sibling if os.path.exists(sibling) else tool, *args, *self.options]

    def version(self) -> NixVersion:
        """Detect once per binary per process."""
        with _version_lock:
            cached = _version_cache.get(self.binary)
            if cached is None:
                # Without self.options: they are for real work, not the version probe.
                probe = Nix(binary=self.binary, env=self.env)
                out = probe.run(commands.version(), log_level=logging.DEBUG).stdout
                try:
                    cached = version_json.parse(out)
                except NixOutputError as exc:
                    raise NixNotFoundError(f"{self.binary}: {exc}") from exc
                _version_cache[self.binary] = cached
            return cached

    def with_env(self, extra: Mapping[str, str]) -> Nix:
        """This Nix, with `extra` in the environment of every call (shown in the log)."""
        if not extra:
            return self
        other = copy.copy(self)  # keeps a subclass's state (the recording fake's log)
        other.env = {**(self.env or {}), **extra}
        other.shown_env = (*self.shown_env, *extra)
        return other

    def _shown(self) -> dict[str, str]:
        env = self.env or {}
        return {k: env[k] for k in self.shown_env if k in env}

    def prefetch_version(self) -> None:
        """Start detecting the version beside the caller's own work; `version()` then
        waits for it. Whatever goes wrong is left for `version()` to raise, in the
        caller's thread (a thread's own exception would print a traceback)."""

        def detect() -> None:
            with suppress(BaseException):
                self.version()

        threading.Thread(target=detect, name="nix-version", daemon=True).start()

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: str | None = None,
        progress: ProgressCallback | None = None,
        tool: str = "nix",
        stdin: str | None = None,
        log_level: int = logging.INFO,
        warning_level: int = logging.WARNING,
    ) -> NixResult:
        """Run `nix args...`; raise NixError on a non-zero exit.

        With `progress`, Nix logs internal JSON on stderr; each update is handed to the
        callback, and Nix's messages are reassembled into a human stderr.
        """
        argv = self.argv(args, tool)
        if progress is not None and not _has_progress_flags(argv):
            argv += commands.PROGRESS_FLAGS
        line = display(argv, self._shown())
        log.log(log_level, "$ %s", line)
        returncode, stdout, stderr = self.execute(argv, cwd=cwd, stdin=stdin, progress=progress)
        if returncode != 0:
            raise NixError(line, returncode, stderr)
        result = NixResult(command=line, stdout=stdout, stderr=stderr)
        for warning in result.warnings:
            log.log(warning_level, "nix: %s", warning)
        return result

    def execute(
        self,
        argv: list[str],
        *,
        cwd: str | None = None,
        stdin: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[int, str, str]:
        """Run one process: (exit status, stdout, stderr). The recording fake Nix of the
        flow tests replaces only this."""
        _check_found(argv, self.wrapper)
        env = {**os.environ, **self.env} if self.env else None
        return _children.run(argv, cwd, env, stdin, progress)

    @contextmanager
    def stream(self, args: Sequence[str], *, tool: str = "nix") -> Iterator[Streaming]:
        """Start `nix args...` with stderr piped, stdout discarded, for a caller that
        reads stderr line by line (the fleet's shared evaluator). Logged, and one of the
        runner's children like every other `nix`, so a signal ends it too."""
        argv = self.argv(args, tool)
        log.info("$ %s", display(argv, self._shown()))
        with self.spawn(argv) as proc:
            yield proc

    def spawn(self, argv: list[str]) -> AbstractContextManager[Streaming]:
        """Start one process for `stream`. The recording fake Nix replaces only this."""
        _check_found(argv, self.wrapper)
        env = {**os.environ, **self.env} if self.env else None
        return _children.spawn(argv, env)


def _check_found(argv: list[str], wrapper: Sequence[str]) -> None:
    """The Nix tool itself must exist (after any wrapper, which confine() checked)."""
    tool = argv[len(wrapper)] if argv[: len(wrapper)] == list(wrapper) else argv[0]
    if shutil.which(tool) is None and not os.path.exists(tool):
        raise NixNotFoundError(
            f"cannot find {tool!r}: install Nix, or set NIXLAYER_NIX to its path"
        )


def display(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The pasteable line for `argv`: the environment nixlayer adds in front, without
    the progress flags nixlayer adds."""
    flags = commands.PROGRESS_FLAGS
    shown = list(argv)
    for i in range(len(shown) - len(flags) + 1):
        if shown[i : i + len(flags)] == flags:
            del shown[i : i + len(flags)]
            break
    # NAME=value stays an assignment to a shell only with the value alone quoted.
    assignments = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()]
    return " ".join([*assignments, shlex.join(shown)])


def _has_progress_flags(argv: list[str]) -> bool:
    return display(argv) != shlex.join(argv)


class _Children:
    """The running `nix` processes, so that a signal can end them all."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # the signal handler may run while it is held
        self._procs: set[subprocess.Popen[str]] = set()
        self._local = threading.local()
        self.stopping: int | None = None  # the signal that asked us to stop

    @contextmanager
    def _bookkeeping(self) -> Iterator[None]:
        """While the set of children changes, a signal handler must not raise: it would
        leave a started `nix` unrecorded. The handler defers; we raise after."""
        self._local.busy = True
        try:
            with self._lock:
                yield
        finally:
            self._local.busy = False

    def may_raise(self) -> bool:
        return not getattr(self._local, "busy", False)

    def run(
        self,
        argv: list[str],
        cwd: str | None,
        env: Mapping[str, str] | None,
        stdin: str | None,
        progress: ProgressCallback | None,
    ) -> tuple[int, str, str]:
        with self._bookkeeping():
            if self.stopping is not None:
                raise Interrupted(self.stopping)
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=cwd,
                env=env,
                process_group=0,
            )
            self._procs.add(proc)
        try:
            if self.stopping is not None:  # a signal came while we were starting it
                raise Interrupted(self.stopping)
            if progress is None:
                stdout, stderr = proc.communicate(stdin)
            else:
                stdout, stderr = _stream(proc, progress)
        except BaseException:
            _end(proc, self.stopping or signal.SIGTERM)
            with self._bookkeeping():
                self._procs.discard(proc)
            raise
        with self._bookkeeping():
            self._procs.discard(proc)
        if self.stopping is not None:
            # Asked to stop while it ran: what it printed is not a result.
            raise Interrupted(self.stopping)
        return proc.returncode, stdout, stderr

    @contextmanager
    def spawn(
        self, argv: list[str], env: Mapping[str, str] | None
    ) -> Iterator[subprocess.Popen[str]]:
        """A child whose stderr the caller reads; ended (and forgotten) on the way out."""
        with self._bookkeeping():
            if self.stopping is not None:
                raise Interrupted(self.stopping)
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                process_group=0,
            )
            self._procs.add(proc)
        try:
            yield proc
        finally:
            _end(proc, self.stopping or signal.SIGTERM)
            with self._bookkeeping():
                self._procs.discard(proc)
        if self.stopping is not None:
            raise Interrupted(self.stopping)

    def stop(self, signum: int) -> None:
        """Forward `signum` to every running `nix` (its whole process group)."""
        with self._lock:
            self.stopping = self.stopping or signum
            procs = list(self._procs)
        for proc in procs:
            _signal_group(proc, signum)

    def end_all(self, timeout: float = GRACE_SECONDS) -> None:
        """Wait for every running `nix` to end (killing the ones that take too long)."""
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _end(proc, self.stopping or signal.SIGTERM, timeout)

    def reset(self) -> None:
        """Forget a stop (tests run many commands in one process)."""
        self.stopping = None


_children = _Children()


def _signal_group(proc: subprocess.Popen[str], signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _end(proc: subprocess.Popen[str], signum: int, timeout: float = GRACE_SECONDS) -> None:
    """Ask a `nix` to stop (it stops its builds), then kill its group if it does not."""
    if proc.poll() is None:
        _signal_group(proc, signum)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _stream(proc: subprocess.Popen[str], progress: ProgressCallback) -> tuple[str, str]:
    stdout_chunks: list[str] = []
    reader = threading.Thread(
        target=lambda: stdout_chunks.append(proc.stdout.read() if proc.stdout else ""),
        daemon=True,
    )
    reader.start()
    assert proc.stderr is not None
    text = fold_stderr(proc.stderr, progress)
    reader.join()
    proc.wait()
    return "".join(stdout_chunks), text


def fold_stderr(lines: Iterable[str], progress: ProgressCallback | None = None) -> str:
    """Fold `--log-format internal-json` stderr into progress updates, and return the
    human stderr: Nix's errors and warnings (each message whole) and any plain lines."""
    state = BuildProgress()
    plain: list[str] = []
    for raw in lines:
        if state.feed(raw.rstrip("\n")):
            if progress is not None:
                progress(state)
        else:
            plain.append(raw)
    return "".join(plain) + "\n".join(m for level, m in state.messages if level <= 1)


def install_signal_handlers() -> Callable[[], None]:
    """SIGINT, SIGTERM and SIGHUP end the running `nix` children, then raise `Interrupted`
    in the main thread (exit 130, 143, 129). For the CLI; a library keeps its caller's.
    Returns what puts the previous handlers back (main() run in-process restores them)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        first = _children.stopping is None
        _children.stop(signum)
        if first and _children.may_raise():
            raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # only the main thread may set handlers (main() from a worker)
    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in signums}

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


def end_children() -> None:
    """After an interruption: every `nix` this process started has ended when this returns."""
    _children.end_all()
