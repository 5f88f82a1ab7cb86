"""Entry point: parse, dispatch, map errors to exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input or usage, 3 refused by a guard, 130 interrupted
(SIGINT), 143 terminated (SIGTERM), 129 (SIGHUP). Whatever happens, stderr gets one line
per error (never a traceback) and, under `--json`, stdout gets exactly one envelope.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from nixlayer import __version__
from nixlayer.cli import closure, completion, fleet, plan, runner_store, schema, switch
from nixlayer.cli.nixopts import add_nix_options
from nixlayer.cli.output import (
    emit_json,
    error,
    finish_json,
    json_enabled,
    one_line,
    setup_logging,
    start_json,
)
from nixlayer.errors import GuardRefusedError, InputError, Interrupted, NixError, NixlayerError
from nixlayer.nix.runner import end_children, install_signal_handlers
from nixlayer.safeload import show

# errnos that say "this path is no good" rather than "the system failed".
PATH_ERRNOS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENOENT,
        errno.EACCES,
        errno.EPERM,
        errno.ENXIO,
        errno.ENODEV,
    }
)
BUG = "this is a bug in nixlayer; please report it with the command line"


class UsageError(Exception):
    """argparse refused the command line (exit 2)."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        super().__init__(message)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and an envelope under --json), not a
    usage dump and a bare exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(_usage_field(message), f"{self.prog}: {message}")


def _usage_field(message: str) -> str | None:
    """The flag argparse complains about, from its message."""
    for prefix in ("argument ", "the following arguments are required: "):
        if message.startswith(prefix):
            return message.removeprefix(prefix).split(":")[0].split(",")[0].split("/")[0]
    if message.startswith("unrecognized arguments: "):
        return message.removeprefix("unrecognized arguments: ").split(" ")[0]
    return None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine output on stdout")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more detail")
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only warnings and errors on stderr (no progress, no commands)",
    )
    add_nix_options(common)
    parser = Parser(
        prog="nixlayer",
        description="Build per-VM NixOS closures from a typed spec, layer a CI job over a "
        "runner's base and switch safely, predict NixOS switches before doing them, and share "
        "one Nix store across GitLab docker runners.",
        epilog="Exit status: 0 ok, 1 failure, 2 bad input, 3 refused by a guard, 130 "
        "interrupted. With --json, stdout holds one envelope (`nixlayer schema envelope`).",
    )
    parser.add_argument("--version", action="version", version=f"nixlayer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    closure.register(sub, common)
    plan.register(sub, common)
    switch.register(sub, common)
    fleet.register(sub, common)
    runner_store.register(sub, common)
    schema.register(sub, common)
    completion.register(sub, common)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """'build', 'fleet build', 'runner-store seed': the words the user typed to pick it."""
    words = [args.command]
    words += [v for k, v in sorted(vars(args).items()) if k.endswith("_command") and v]
    return " ".join(words)


def _words(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """The command words in `argv`, for a line argparse refused (best effort)."""
    words: list[str] = []
    current: argparse.ArgumentParser | None = parser
    for token in argv:
        if current is None or token.startswith("-"):
            continue
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        choices: dict[str, argparse.ArgumentParser] = subs[0].choices if subs else {}
        if token not in choices:
            break
        words.append(token)
        current = choices[token]
    return " ".join(words) or "nixlayer"


def _leaf(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    """The parser of the command `words` names (`fleet build`)."""
    for word in words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser = subs[0].choices[word]
    return parser


def _flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """dest -> how the user spells it (`--root`, `SPEC`), over every subcommand."""
    names: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                names.update(_flag_names(child))
        elif action.option_strings:
            names.setdefault(action.dest, max(action.option_strings, key=len))
        else:
            metavar = action.metavar if isinstance(action.metavar, str) else None
            names.setdefault(action.dest, metavar or action.dest.upper())
    return names


def _check_argv_text(args: argparse.Namespace, names: dict[str, str]) -> None:
    """Arguments are text: NUL (possible in-process) and bytes that are not UTF-8
    (surrogate-escaped by Python) are refused here, before any reader sees them."""

    def check(dest: str, value: Any) -> None:
        if isinstance(value, list | tuple):
            for v in value:
                check(dest, v)
        elif isinstance(value, str):
            flag = names.get(dest, dest)
            if "\0" in value:
                raise InputError(flag, f"contains a NUL character: {show(value)}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(flag, f"is not valid UTF-8: {show(value)}") from None

    for dest, value in vars(args).items():
        check(dest, value)


@contextlib.contextmanager
def _stdout_for(json_mode: bool) -> Iterator[None]:
    """Under --json, stray prints land on stderr: stdout is the envelope alone."""
    if not json_mode:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    json_mode = "--json" in argv
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        setup_logging(0, False)
        start_json(_words(parser, argv), json_mode)
        error(str(exc))
        finish_json(2, {"kind": "input", "message": str(exc), "field": exc.field})
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    json_mode = bool(getattr(args, "json", False))
    setup_logging(args.verbose, args.quiet)
    start_json(command_name(args), json_mode, stdout=sys.stdout)
    restore_signals = install_signal_handlers()
    try:
        code, err = _dispatch(args, parser, verbose=args.verbose)
        finish_json(code, err)
    finally:
        restore_signals()
    return code


def _dispatch(
    args: argparse.Namespace, parser: argparse.ArgumentParser, *, verbose: int
) -> tuple[int, dict[str, Any] | None]:
    """Run the handler; return its exit code and, for a failure it raised, the error."""
    try:
        with _stdout_for(bool(getattr(args, "json", False))):
            leaf = _leaf(parser, command_name(args).split())
            _check_argv_text(args, _flag_names(leaf))
            code: int = args.handler(args)
        return code, None
    except KeyboardInterrupt as exc:
        end_children()  # no `nix` outlives us (the runner already ended its own)
        status = exc.exit_code if isinstance(exc, Interrupted) else 130
        error("interrupted")
        return status, {"kind": "interrupted", "message": "interrupted"}
    except NixError as exc:
        error(f"nix failed (exit {exc.returncode}): {exc.command}")
        sys.stderr.write(exc.stderr.rstrip() + "\n" if exc.stderr.strip() else "")
        nix = {"command": exc.command, "returncode": exc.returncode, "stderr": exc.stderr}
        return exc.exit_code, {"kind": "nix", "message": exc.first_error(), "nix": nix}
    except NixlayerError as exc:
        error(str(exc))
        kind = (
            "input"
            if isinstance(exc, InputError)
            else "guard"
            if isinstance(exc, GuardRefusedError)
            else "failure"
        )
        field = exc.field if isinstance(exc, InputError) else None
        # Some failures carry data for the envelope (a refused switch names its units).
        carried = getattr(exc, "result", None)
        if carried is not None and json_enabled():
            emit_json(carried)
        return exc.exit_code, {"kind": kind, "message": one_line(str(exc)), "field": field}
    except OSError as exc:
        # A system call failed where no reader expected it: say which file and why, in
        # one line. A path that cannot name a usable file (too long, a symlink loop,
        # missing, forbidden) is bad input; anything else (a full disk) a failure.
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"{where}{exc.strerror or exc}"
        error(message)
        _debug(verbose)
        if exc.errno in PATH_ERRNOS and exc.filename:
            return 2, {"kind": "input", "message": message, "field": str(exc.filename)}
        return 1, {"kind": "failure", "message": message}
    except Exception as exc:
        message = f"internal error: {type(exc).__name__}: {one_line(str(exc))} ({BUG})"
        error(message)
        _debug(verbose)
        return 1, {"kind": "failure", "message": message}


def _debug(verbose: int) -> None:
    """The traceback, only when asked for (-vv or NIXLAYER_TRACEBACK=1)."""
    if verbose > 1 or os.environ.get("NIXLAYER_TRACEBACK"):
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
