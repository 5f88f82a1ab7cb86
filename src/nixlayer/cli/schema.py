"""`nixlayer schema [NAME]`: the published JSON Schemas (a VM spec, the --json envelope,
the plan)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from nixlayer.cli.output import emit_json


def _spec() -> dict[str, Any]:
    from nixlayer.closure.spec import VMSpec

    return VMSpec.model_json_schema()


def _envelope() -> dict[str, Any]:
    from nixlayer.cli.envelope import envelope_schema

    return envelope_schema()


def _plan() -> dict[str, Any]:
    from nixlayer.planner.document import plan_schema

    return plan_schema()


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "spec": _spec,
    "envelope": _envelope,
    "plan": _plan,
}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "schema",
        parents=[common],
        help="print a JSON Schema (spec: a VM spec; envelope: the --json output of every "
        "command; plan: the plan document in plan's result)",
    )
    p.add_argument("name", nargs="?", default="spec", choices=sorted(SCHEMAS))
    p.set_defaults(handler=_schema)


def _schema(args: argparse.Namespace) -> int:
    # Bare, the schema itself is the output (what tools consume); with --json it is the
    # envelope's result, like every other command's data.
    emit_json(SCHEMAS[args.name]())
    return 0
