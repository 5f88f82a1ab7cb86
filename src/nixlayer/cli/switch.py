"""`nixlayer switch`, `restore` and `prepare`: a CI job's layer over the runner's base."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nixlayer.cli.nixopts import nix_from_args
from nixlayer.cli.output import build_progress, emit_json, info, progress_enabled
from nixlayer.layer.kinds import ACTIONS, KIND_NAMES

if TYPE_CHECKING:
    from nixlayer.layer.predict import Prediction
    from nixlayer.layer.where import Where


def _system_options(p: argparse.ArgumentParser) -> None:
    """Where the running system is and how to activate: shared by switch and restore."""
    p.add_argument(
        "--kind",
        choices=KIND_NAMES,
        help="default: darwin on macOS, nixos where /etc/NIXOS exists, else system-manager",
    )
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
    p.add_argument(
        "--units",
        metavar="FILE",
        help="unit snapshot from `systemctl list-units --all --output=json` "
        "(default: ask systemctl)",
    )
    p.add_argument("--runtime-dir", default="/run", metavar="DIR")
    p.add_argument("--profile", metavar="PATH", help="system profile to update")
    p.add_argument(
        "--state-dir",
        default="/var/lib/nixlayer",
        metavar="DIR",
        help="where the base system and interrupted activations are recorded "
        "(default /var/lib/nixlayer)",
    )
    p.add_argument(
        "--transient",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="activate in a transient systemd unit that survives this command "
        "(default: where systemd runs)",
    )


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
        "switch, refuse it (exit 3) if a protected unit would be stopped or restarted or a "
        "switch inhibitor differs, else activate it in a transient systemd unit. A failed "
        "activation rolls back to the generation recorded before; failed units (exit 4 of "
        "switch-to-configuration) are reported and kept.",
    )
    p.add_argument(
        "--action",
        default="test",
        choices=ACTIONS,
        help="test (default): activate now, leaving the boot entry and the profile alone; "
        "switch also makes it the boot default; boot only makes it the boot default",
    )
    p.add_argument("--name", help="configuration name (default: host name, then `default`)")
    p.add_argument(
        "--on-inhibit",
        choices=("refuse", "boot"),
        default="refuse",
        help="when a switch inhibitor differs: refuse (exit 3, default), or make the new "
        "system the boot default instead (--action switch; a reboot is needed)",
    )
    _system_options(p)
    p.set_defaults(handler=_switch)

    p = sub.add_parser(
        "restore",
        parents=[common],
        help="return a shared runner to the system it ran before the job's switches",
        description="Switch back to the system recorded before the first `nixlayer switch`, "
        "through the same guard. Nothing to do (exit 0) when nothing was applied or the base "
        "already runs; run it in after_script.",
    )
    _system_options(p)
    p.set_defaults(handler=_restore)

    p = sub.add_parser(
        "prepare",
        parents=[common, base],
        help="only point the job's flake.lock at the runner's base",
        description="Rewrite only the `base` entry of the job's flake.lock, so that a plain "
        "`nixos-rebuild switch --flake .` builds over this runner's base.",
    )
    p.set_defaults(handler=_prepare)


def _where(args: argparse.Namespace) -> Where:
    from nixlayer.layer.where import Where

    return Where(
        current=Path(args.current) if args.current else None,
        units_file=Path(args.units) if args.units else None,
        runtime_dir=Path(args.runtime_dir),
        profile=Path(args.profile) if args.profile else None,
        state_dir=Path(args.state_dir),
        transient=args.transient,
    )


def show_prediction(prediction: Prediction) -> None:
    """The plan, before anything is activated, in nixlayer's words (not the activation's)."""
    plan = prediction.plan
    info(f"predicted by nixlayer for `{prediction.action}` (before activating; not yet done):")
    rows = [
        ("stop", plan.stop),
        ("not restarted", plan.skip),
        ("reload", plan.reload),
        ("restart", plan.restart),
        ("start", plan.start),
    ]
    shown = False
    for verb, units in rows:
        if units:
            info(f"  {verb:>13}: {', '.join(units)}")
            shown = True
    if not shown:
        info("  no unit changes")
    if prediction.closure is not None:
        info(f"  {prediction.closure.summary()}")


def _quiet_plan(args: argparse.Namespace) -> Any:
    return None if args.quiet else show_prediction


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
            on_inhibit=args.on_inhibit,
            where=_where(args),
            progress=progress,
            nix=nix_from_args(args),
            on_plan=_quiet_plan(args),
        )
    if args.json:
        emit_json(result.to_json())
        return 0
    if result.action == "dry-activate":
        done = "planned (nothing activated)"
    elif result.action == "boot":
        done = "boot default (reboot to use it)"
    else:
        done = "activated"
    print(f"{result.kind} {result.configuration} over {result.base}: {done} {result.toplevel}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from nixlayer.layer.restore import restore

    result = restore(
        kind=args.kind,
        protect=args.protect,
        allow_restart=args.allow_restart,
        where=_where(args),
        nix=nix_from_args(args),
        on_plan=_quiet_plan(args),
    )
    if args.json:
        emit_json(result.to_json())
    else:
        print(result.reason)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from nixlayer.layer.switch import prepare

    out = prepare(args.flake_dir, base=args.base, nix=nix_from_args(args))
    if args.json:
        emit_json(out)
    else:
        print(f"{out['lock_file']}: base -> {out['base']} (from {out['origin']})")
    return 0
