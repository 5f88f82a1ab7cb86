"""`nixlayer fleet build` and `nixlayer windmill export`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nixlayer.cli.nixopts import nix_from_args
from nixlayer.cli.output import emit_json


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    fleet = sub.add_parser("fleet", help="many VM closures at once")
    fsub = fleet.add_subparsers(dest="fleet_command", required=True, metavar="COMMAND")
    p = fsub.add_parser(
        "build",
        parents=[common],
        help="render, lock and build every VM of FLEET",
        description="Render, lock and build every VM of FLEET (a YAML/JSON file with `defaults` "
        "and `vms`, or a directory of spec files). One broken VM does not stop the others; the "
        "exit code is 0 only when all were built.",
    )
    p.add_argument("fleet", metavar="FLEET", nargs="?")
    p.add_argument("--jobs", "-j", type=int, default=1, help="VMs in flight at once (default 1)")
    p.add_argument(
        "--eval",
        choices=("shared", "per-vm"),
        default="shared",
        help="shared (default): one evaluator for all VMs, then one build graph; "
        "per-vm: one `nix build` per VM, --jobs at a time",
    )
    p.add_argument(
        "--max-memory",
        type=int,
        metavar="MIB",
        help="restart the shared evaluator past this resident size (default 4096)",
    )
    p.add_argument(
        "--flake",
        metavar="REF",
        help="build the nixosConfigurations of flake REF instead of a FLEET file",
    )
    p.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="GLOB",
        help="with --flake: only configurations whose name matches GLOB (repeatable)",
    )
    p.add_argument("--root", metavar="DIR", help="config root (as for `nixlayer run`)")
    p.add_argument("--library", metavar="FLAKEREF", help="library for VMs whose spec has none")
    p.set_defaults(handler=_fleet_build)

    wm = sub.add_parser("windmill", help="Windmill workspace fragments")
    wsub = wm.add_subparsers(dest="windmill_command", required=True, metavar="COMMAND")
    p = wsub.add_parser(
        "export",
        parents=[common],
        help="write render_config/lock_config/build_closure scripts and a flow",
        description="Write a Windmill workspace fragment under DIR: one Python script per step "
        "with its .script.yaml, and build.flow/flow.yaml (OpenFlow, same_worker).",
    )
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--folder", default="f/nixlayer", help="Windmill folder (default f/nixlayer)")
    p.set_defaults(handler=_windmill_export)


def _fleet_build(args: argparse.Namespace) -> int:
    from nixlayer.closure.fleet import fleet_build
    from nixlayer.closure.fleetspec import load_fleet
    from nixlayer.errors import InputError

    if args.jobs < 1:
        raise InputError("--jobs", f"must be at least 1, got {args.jobs}")
    if args.max_memory is not None and args.max_memory < 1:
        raise InputError("--max-memory", f"must be at least 1 MiB, got {args.max_memory}")
    if (args.flake is None) == (args.fleet is None):
        raise InputError("FLEET", "give either a FLEET file or directory, or --flake REF")
    if args.flake is not None:
        from nixlayer.closure.fleet_shared import flake_fleet_build
        from nixlayer.closure.paths import config_root

        if args.eval != "shared":
            raise InputError("--eval", "--flake builds with the shared evaluator only")
        outcomes = flake_fleet_build(
            args.flake,
            root=config_root(args.root),
            select=args.select,
            nix=nix_from_args(args),
            jobs=args.jobs,
            max_mb=args.max_memory,
        )
    else:
        if args.select:
            raise InputError("--select", "--select goes with --flake")
        outcomes = fleet_build(
            load_fleet(args.fleet),
            root=args.root,
            library=args.library,
            jobs=args.jobs,
            nix=nix_from_args(args),
            evaluation=args.eval,
            max_memory_mb=args.max_memory,
        )
    ok = all(o.status == "built" for o in outcomes)
    built = sum(o.status == "built" for o in outcomes)
    if args.json:
        emit_json(
            {"vms": [o.to_json() for o in outcomes]},
            exit_code=0 if ok else 1,
            message=f"{built}/{len(outcomes)} built",
        )
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("VM", "status", "toplevel", "time", box=None, pad_edge=False)
        for o in outcomes:
            style = "green" if o.status == "built" else "red"
            table.add_row(
                o.name,
                f"[{style}]{o.status}[/]",
                o.toplevel or (o.error or ""),
                f"{o.seconds:.1f}s",
            )
        # On a pipe, one row per line (no wrapping at an assumed 80 columns).
        width = None if sys.stdout.isatty() else 100_000
        Console(file=sys.stdout, highlight=False, width=width).print(table)
        print(f"{built}/{len(outcomes)} built")
    return 0 if ok else 1


def _windmill_export(args: argparse.Namespace) -> int:
    from nixlayer.closure.windmill import export

    written = export(args.directory, folder=args.folder)
    if args.json:
        emit_json({"written": [str(p) for p in written]})
    else:
        for p in written:
            print(p)
    return 0
