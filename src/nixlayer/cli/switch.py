"""`nixlayer switch` and `nixlayer prepare`: a CI job's layer over the runner's base."""

from __future__ import annotations

import argparse
from typing import Any

from nixlayer.cli.nixopts import nix_from_args
from nixlayer.cli.output import build_progress, emit_json, info, progress_enabled


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    base = argparse.ArgumentParser(add_help=False)
    base.add_argument(
        "flake_dir",
        nargs="?",
        default=".",
        metavar="FLAKE_DIR",
        help="the job's flake (default: the current directory)",
    )
    base.add_argument(
        "--base",
        metavar="REF",
        help="the runner's base flake (default $NIXLAYER_BASE, the registry alias "
        "nixlayer-base in /etc/nix/registry.json, then /etc/nixos)",
    )

    p = sub.add_parser(
        "switch",
        parents=[common, base],
        help="build the job's layer over the base and switch, never bouncing protected units",
        description="Build the job flake's configuration over the runner's base, predict the "
        "switch, refuse it (exit 3) if a protected unit would be stopped or restarted, else "
        "activate it; a failed activation rolls back.",
    )
    p.add_argument("--action", default="switch", choices=["switch", "test", "boot", "dry-activate"])
    p.add_argument(
        "--kind",
        choices=["nixos", "system-manager", "darwin"],
        help="default: darwin on macOS, nixos where /etc/NIXOS exists, else system-manager",
    )
    p.add_argument("--name", help="configuration name (default: host name, then `default`)")
    p.add_argument(
        "--protect", action="append", default=[], metavar="UNIT", help="also protect UNIT (repeat)"
    )
    p.add_argument(
        "--allow-restart",
        action="append",
        default=[],
        metavar="UNIT",
        help="let UNIT be stopped or restarted even though it is protected (repeat)",
    )
    p.add_argument(
        "--current",
        metavar="DIR",
        help="the running system (default /run/current-system, or system-manager's profile)",
    )
    p.add_argument("--units", metavar="FILE", help="unit snapshot instead of asking systemctl")
    p.add_argument("--runtime-dir", default="/run", metavar="DIR")
    p.add_argument("--profile", metavar="PATH", help="system profile to update")
    p.set_defaults(handler=_switch)

    p = sub.add_parser(
        "prepare",
        parents=[common, base],
        help="only point the job's flake.lock at the runner's base",
        description="Rewrite only the `base` entry of the job's flake.lock, so that a plain "
        "`nixos-rebuild switch --flake .` builds over this runner's base.",
    )
    p.set_defaults(handler=_prepare)


def _switch(args: argparse.Namespace) -> int:
    from nixlayer.layer.switch import switch

    with build_progress(progress_enabled(args)) as progress:
        result = switch(
            args.flake_dir,
            base=args.base,
            action=args.action,
            kind=args.kind,
            name=args.name,
            protect=args.protect,
            allow_restart=args.allow_restart,
            current=args.current,
            units_file=args.units,
            runtime_dir=args.runtime_dir,
            profile=args.profile,
            progress=progress,
            nix=nix_from_args(args),
        )
    if args.json:
        emit_json(result.to_json())
        return 0
    for line in result.plan.lines:
        info(f"  {line}")
    done = "activated" if result.activated else "planned (nothing activated)"
    print(f"{result.kind} {result.configuration} over {result.base}: {done} {result.toplevel}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from nixlayer.layer.switch import prepare

    out = prepare(args.flake_dir, base=args.base, nix=nix_from_args(args))
    if args.json:
        emit_json(out)
    else:
        print(f"{out['lock_file']}: base -> {out['base']} (from {out['origin']})")
    return 0
