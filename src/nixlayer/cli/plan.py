"""`nixlayer plan`: predict a switch without performing it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nixlayer.cli.output import emit_json, json_enabled
from nixlayer.errors import InputError

if TYPE_CHECKING:
    from nixlayer.layer.protection import Family
    from nixlayer.planner.document import PlanDocument
    from nixlayer.planner.users import UserInputs

_STYLES = {
    "stop": "red",
    "conflict": "red",
    "restart": "yellow",
    "reload": "cyan",
    "start": "green",
    "new": "green",
    "skip": "magenta",
    "silent-skip": "magenta",
    "filtered": "dim",
    "swapoff": "red",
    "post-activation": "blue",
}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "plan",
        parents=[common],
        help="predict what a switch stops, starts, restarts and reloads, and what it installs",
        description="Predict exactly what `switch-to-configuration ACTION` would do, with a "
        "reason for every unit, user units, the switch-inhibitor verdict and the closure "
        "diff, without root and without touching systemd. A system is a directory (a system "
        "root or a toplevel) or a flake reference REF#NAME, which is built first.",
    )
    p.add_argument(
        "--from",
        dest="from_root",
        default="/",
        metavar="SYSTEM",
        help="the running system (default /)",
    )
    p.add_argument("--to", dest="to_root", required=True, metavar="SYSTEM", help="the new system")
    p.add_argument(
        "--kind",
        choices=["auto", "nixos", "system-manager", "nix-darwin"],
        default="auto",
        help="which activation to model (default: from the new system's layout)",
    )
    p.add_argument(
        "--units",
        metavar="FILE",
        help="snapshot from `systemctl list-units --all --output=json` (default: ask systemctl)",
    )
    p.add_argument(
        "--user-units",
        action="append",
        default=[],
        metavar="USER=FILE",
        help="a logged-in user's `systemctl --user list-units --all --output=json` (repeat)",
    )
    p.add_argument(
        "--runtime-dir",
        default="/run",
        metavar="DIR",
        help="where nixos/*-list files live (default /run)",
    )
    p.add_argument("--action", default="switch", choices=["switch", "test", "dry-activate"])
    p.add_argument(
        "--format",
        choices=["human", "json", "markdown"],
        default=None,
        help="human (default), json (the plan document) or markdown (a merge-request comment)",
    )
    p.add_argument(
        "--no-closure", action="store_true", help="skip the closure diff (no nix path-info)"
    )
    p.add_argument(
        "--protect",
        action="append",
        default=[],
        metavar="UNIT",
        help="flag this unit too (besides the defaults and what the systems publish)",
    )
    p.set_defaults(handler=_plan)


def _users(specs: list[str]) -> list[UserInputs]:
    from nixlayer.planner.snapshot import parse_snapshot, read_json_file
    from nixlayer.planner.users import UserInputs

    out = []
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not file or "\0" in spec:
            raise InputError("--user-units", f"{spec!r} is not USER=FILE")
        source = f"--user-units {file}"
        data = read_json_file(Path(file), source)
        config_home = data.get("config_home") if isinstance(data, dict) else None
        runtime = data.get("runtime_dir") if isinstance(data, dict) else None
        out.append(
            UserInputs(
                name=name,
                snapshot=parse_snapshot(data, source),
                config_home=config_home if isinstance(config_home, str) else None,
                runtime_dir=Path(runtime) if isinstance(runtime, str) else None,
            )
        )
    return out


def build_document(args: argparse.Namespace) -> PlanDocument:
    from nixlayer.cli.nixopts import nix_from_args
    from nixlayer.layer.protection import default_units, normalize_unit, published
    from nixlayer.planner.closure_diff import closure_diff
    from nixlayer.planner.document import plan_document
    from nixlayer.planner.model import Kind
    from nixlayer.planner.others import plan_darwin, plan_system_manager
    from nixlayer.planner.plan import plan_switch
    from nixlayer.planner.systems import detect_kind, resolve_system, store_path

    nix = nix_from_args(args)
    guess: Kind = "nixos" if args.kind == "auto" else args.kind
    to_root = resolve_system(args.to_root, "--to", guess, nix)
    kind: Kind = detect_kind(to_root) if args.kind == "auto" else args.kind
    from_root = resolve_system(args.from_root, "--from", kind, nix)
    if kind == "nixos":
        plan = plan_switch(
            to_root,
            from_root=from_root,
            action=args.action,
            units_file=args.units,
            runtime_dir=args.runtime_dir,
            users=_users(args.user_units),
        )
    elif kind == "system-manager":
        plan = plan_system_manager(from_root, to_root, args.action)
    else:
        plan = plan_darwin(from_root, to_root, args.action)
    old_store, new_store = store_path(from_root), store_path(to_root)
    closure = None
    if not args.no_closure and old_store and new_store:
        closure = closure_diff(old_store, new_store, nix)
    family: Family = "launchd" if kind == "nix-darwin" else "systemd"
    protected = set(default_units(family)) | {normalize_unit(u, family) for u in args.protect}
    for root in (from_root, to_root):
        protected |= set(published(root))
    return plan_document(
        plan,
        from_system=old_store or str(from_root),
        to_system=new_store or str(to_root),
        closure=closure,
        protected=frozenset(protected),
    )


def _plan(args: argparse.Namespace) -> int:
    doc = build_document(args)
    fmt = args.format or ("json" if json_enabled() else "human")
    if fmt == "json" or json_enabled():
        emit_json(doc.to_json())
    elif fmt == "markdown":
        from nixlayer.planner.markdown import render_markdown

        print(render_markdown(doc), end="")
    else:
        _human(doc)
    return 0


def _human(doc: PlanDocument) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    plan, protected = doc.switch, set(doc.protected)
    dry = plan.action == "dry-activate"
    if dry:
        console.print(
            "[bold]dry-activate[/]: what would happen; nothing is stopped or started. "
            "No user units, no reload re-check, no inhibitor check."
        )
    else:
        console.print(f"[bold]{plan.action}[/] ({doc.kind}): {escape(doc.to_system)}")
    verdict = plan.inhibitors
    if verdict is not None and verdict.inhibited:
        console.print(f"[bold red]switch inhibitors:[/] {escape(verdict.note)}")

    def rows(decisions: list[Any], indent: str = "") -> None:
        for d in decisions:
            verb = f"would {d.change}" if dry and d.change in _STYLES else d.change
            flag = " [bold red]\\[protected][/]" if d.unit in protected else ""
            console.print(
                f"{indent}[{_STYLES.get(d.change, 'white')}]{verb:>15}[/] "
                f"{escape(d.unit)}{flag}  [dim]{escape(d.reason)}[/]"
            )

    rows(plan.decisions)
    for user in plan.users:
        console.print(f"user units of {escape(user.user)}:")
        rows(user.decisions, "  ")
    if plan.restart_systemd:
        console.print("[bold red]systemd would be re-executed[/]")
    if not plan.decisions:
        console.print("nothing to stop, start, restart or reload")
    c = doc.closure
    if c is not None:
        console.print(escape(c.summary()))
        for p in [*c.added, *c.removed, *c.version]:
            old, new = ", ".join(p.old_versions) or "-", ", ".join(p.new_versions) or "-"
            console.print(f"  {p.change:>8} {escape(p.name)} {escape(old)} -> {escape(new)}")
