"""`nixlayer plan`: predict a NixOS switch without performing it."""

from __future__ import annotations

import argparse
from typing import Any

from nixlayer.cli.output import emit_json

_STYLES = {
    "stop": "red",
    "restart": "yellow",
    "reload": "cyan",
    "start": "green",
    "skip": "magenta",
    "filtered": "dim",
}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "plan",
        parents=[common],
        help="predict which units a switch stops, starts, restarts and reloads",
        description="Predict exactly what `switch-to-configuration ACTION` would do, without "
        "root and without touching systemd. DIR is a system root or a system toplevel.",
    )
    p.add_argument(
        "--from",
        dest="from_root",
        default="/",
        metavar="DIR",
        help="the running system (default /)",
    )
    p.add_argument(
        "--to", dest="to_root", required=True, metavar="DIR", help="the new system (a toplevel)"
    )
    p.add_argument(
        "--units",
        metavar="FILE",
        help="snapshot from `systemctl list-units --all --output=json` (default: ask systemctl)",
    )
    p.add_argument(
        "--runtime-dir",
        default="/run",
        metavar="DIR",
        help="where nixos/*-list files live (default /run)",
    )
    p.add_argument("--action", default="switch", choices=["switch", "test", "dry-activate"])
    p.set_defaults(handler=_plan)


def _plan(args: argparse.Namespace) -> int:
    from nixlayer.planner.plan import plan_switch

    plan = plan_switch(
        args.to_root,
        from_root=args.from_root,
        action=args.action,
        units_file=args.units,
        runtime_dir=args.runtime_dir,
    )
    if args.json:
        emit_json(plan.to_json())
        return 0
    from rich.console import Console

    console = Console(highlight=False)
    rows = [
        ("stop", plan.stop),
        ("skip", plan.skip),
        ("reload", plan.reload),
        ("restart", plan.restart),
        ("start", plan.start),
        ("filtered", plan.filtered),
    ]
    for verb, units in rows:
        if units:
            style = _STYLES[verb]
            console.print(f"[{style}]{verb:>8}[/] {len(units):>4}  " + ", ".join(units))
    if plan.swapoff:
        console.print(f"[red]{'swapoff':>8}[/] {len(plan.swapoff):>4}  " + ", ".join(plan.swapoff))
    if plan.restart_systemd:
        console.print("[bold red]systemd would be re-executed[/]")
    if not any(units for _, units in rows[:5]):
        console.print("nothing to stop, start, restart or reload")
    return 0
