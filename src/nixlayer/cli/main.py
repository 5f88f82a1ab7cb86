"""Entry point: parse, dispatch, map errors to exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input or usage, 3 refused by a guard, 130 interrupted
(SIGINT), 143 terminated (SIGTERM), 129 (SIGHUP).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nixlayer import __version__
from nixlayer.cli import closure, fleet, plan, runner_store, schema, switch
from nixlayer.cli.nixopts import add_nix_options
from nixlayer.cli.output import emit_failure, error, setup_logging, start_json
from nixlayer.errors import GuardRefusedError, InputError, Interrupted, NixError, NixlayerError
from nixlayer.nix.runner import end_children, install_signal_handlers


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine output on stdout")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more detail")
    common.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings and errors on stderr"
    )
    add_nix_options(common)
    parser = argparse.ArgumentParser(
        prog="nixlayer",
        description="Build per-VM NixOS closures from a typed spec, and predict NixOS "
        "switches before doing them.",
    )
    parser.add_argument("--version", action="version", version=f"nixlayer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    closure.register(sub, common)
    plan.register(sub, common)
    switch.register(sub, common)
    fleet.register(sub, common)
    runner_store.register(sub, common)
    schema.register(sub, common)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """'build', 'fleet build', 'runner-store seed': the words the user typed to pick it."""
    words = [args.command]
    words += [v for k, v in sorted(vars(args).items()) if k.endswith("_command") and v]
    return " ".join(words)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    start_json(command_name(args), bool(getattr(args, "json", False)))
    install_signal_handlers()
    try:
        code: int = args.handler(args)
        return code
    except KeyboardInterrupt as exc:
        end_children()  # no `nix` outlives us (the runner already ended its own)
        status = exc.exit_code if isinstance(exc, Interrupted) else 130
        error("interrupted")
        emit_failure(status, {"kind": "interrupted", "message": "interrupted"})
        return status
    except NixError as exc:
        error(f"nix failed (exit {exc.returncode}): {exc.command}")
        sys.stderr.write(exc.stderr.rstrip() + "\n" if exc.stderr.strip() else "")
        nix = {"command": exc.command, "returncode": exc.returncode, "stderr": exc.stderr}
        emit_failure(exc.exit_code, {"kind": "nix", "message": exc.first_error(), "nix": nix})
        return exc.exit_code
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
        emit_failure(exc.exit_code, {"kind": kind, "message": str(exc), "field": field})
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
