"""`nixlayer fleet build` and `nixlayer windmill export`."""

from __future__ import annotations

import argparse
import sys
import threading
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
        "exit code is 0 only when all were built. Each VM's full story is in "
        "<root>/.nixlayer/logs/<vm>.log.",
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
        "--share-pkgs",
        action="store_true",
        help="VMs with the same system, library pin, overrides and library modules "
        "evaluate on one package set (nixpkgs instantiated once per group, as Colmena's "
        "meta.nixpkgs). Opt-in: a library module that sets nixpkgs.overlays or "
        "nixpkgs.config differently per VM is only partly detected",
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
        "with its .script.yaml and .script.lock, and build.flow/flow.yaml (OpenFlow, "
        "same_worker). --layout kdevops-ng writes f/nix/build with kdevops-ng's grouped inputs.",
    )
    p.add_argument("directory", metavar="DIR")
    p.add_argument(
        "--layout",
        choices=["nixlayer", "kdevops-ng"],
        default="nixlayer",
        help="nixlayer: a flat flow under --folder; kdevops-ng: a drop-in for its f/nix/build",
    )
    p.add_argument(
        "--folder", default=None, help="Windmill folder (default f/nixlayer; f/nix for kdevops-ng)"
    )
    p.add_argument(
        "--requirement",
        metavar="PEP508",
        help="how workers install nixlayer (default: the wheel "
        "/opt/nixlayer/nixlayer-<version>-py3-none-any.whl on the worker)",
    )
    p.set_defaults(handler=_windmill_export)


class _FleetProgress:
    """A live status line on a terminal; one line per finished VM on a pipe."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.active: dict[str, str] = {}
        self.lock = threading.Lock()
        self.status: Any = None

    def __enter__(self) -> _FleetProgress:
        if self.enabled and self.tty:
            from rich.console import Console

            from nixlayer.cli.output import set_live_console

            console = Console(stderr=True)
            self.status = console.status("fleet: planning")
            self.status.__enter__()
            set_live_console(console)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            from nixlayer.cli.output import set_live_console

            set_live_console(None)
            self.status.__exit__(*exc)

    def __call__(self, ev: Any) -> None:
        if not self.enabled:
            return
        with self.lock:
            if ev.phase in ("locking", "building"):
                self.active[ev.vm_name] = ev.phase
            else:
                self.active.pop(ev.vm_name, None)
                if not self.tty:
                    tail = f": {ev.error}" if ev.error else ""
                    sys.stderr.write(
                        f"fleet: [{ev.done}/{ev.total}] {ev.vm_name} {ev.phase} "
                        f"in {ev.seconds:.1f}s{tail}\n"
                    )
                    sys.stderr.flush()
            if self.status is not None:
                from rich.markup import escape

                busy = ", ".join(f"{n} ({p})" for n, p in list(self.active.items())[:4])
                more = len(self.active) - 4
                busy += f" +{more}" if more > 0 else ""
                self.status.update(escape(f"fleet: {ev.done}/{ev.total} done; {busy}"))


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
        if args.share_pkgs:
            raise InputError("--share-pkgs", "--share-pkgs goes with a FLEET file, not --flake")
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
        if args.share_pkgs and args.eval != "shared":
            raise InputError("--share-pkgs", "--share-pkgs needs --eval shared")
        with _FleetProgress(not args.quiet) as progress:
            outcomes = fleet_build(
                load_fleet(args.fleet),
                root=args.root,
                library=args.library,
                jobs=args.jobs,
                nix=nix_from_args(args),
                on_event=progress,
                evaluation=args.eval,
                max_memory_mb=args.max_memory,
                share_pkgs=args.share_pkgs,
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
        _table(outcomes)
        print(f"{built}/{len(outcomes)} built")
    return 0 if ok else 1


def _table(outcomes: list[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from nixlayer.closure.failure import shorten

    table = Table("VM", "status", "time", "toplevel / error", box=None, pad_edge=False)
    for o in outcomes:
        style = "green" if o.status == "built" else "red"
        if o.status == "built":
            what = o.toplevel or ""
        else:
            what = shorten(o.error or "")
            if o.log_file:
                what += f" (log: {o.log_file})"
        # Names and errors are user and Nix text: never rich markup.
        table.add_row(
            escape(o.vm_name), f"[{style}]{o.status}[/]", f"{o.seconds:.1f}s", escape(what)
        )
    # On a pipe, one row per line (no wrapping at an assumed 80 columns).
    width = None if sys.stdout.isatty() else 100_000
    Console(file=sys.stdout, highlight=False, width=width).print(table)


def _windmill_export(args: argparse.Namespace) -> int:
    from nixlayer.closure.windmill import export

    written = export(
        args.directory, layout=args.layout, folder=args.folder, requirement=args.requirement
    )
    if args.json:
        emit_json({"written": [str(p) for p in written]})
    else:
        for p in written:
            print(p)
    return 0
