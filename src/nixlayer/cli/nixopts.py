"""One group of Nix options, on every command: what the user passes reaches every nix call."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nixlayer.nix.runner import Nix


def add_nix_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("Nix options (passed to every nix call)")
    g.add_argument(
        "--option",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a Nix setting, e.g. --option builders @/etc/nix/machines",
    )
    g.add_argument(
        "--builders",
        metavar="SPEC",
        help="remote builders, e.g. @/etc/nix/machines or 'ssh://b1 x86_64-linux'",
    )
    g.add_argument("--max-jobs", metavar="N", help="local build jobs (0: only remote builders)")
    g.add_argument("--store", metavar="URL", help="the store to build in")
    g.add_argument("--eval-store", metavar="URL", help="the store to evaluate in")


def nix_option_args(args: argparse.Namespace) -> list[str]:
    """The argv tail every nix call gets (pure: tests compare it)."""
    out: list[str] = []
    for name, value in getattr(args, "option", None) or []:
        out += ["--option", name, value]
    if getattr(args, "builders", None) is not None:
        out += ["--option", "builders", args.builders]
    if getattr(args, "max_jobs", None) is not None:
        out += ["--max-jobs", str(args.max_jobs)]
    if getattr(args, "store", None):
        out += ["--store", args.store]
    if getattr(args, "eval_store", None):
        out += ["--eval-store", args.eval_store]
    return out


def nix_from_args(args: argparse.Namespace) -> Nix:
    from nixlayer.nix.runner import Nix

    return Nix(options=nix_option_args(args))
