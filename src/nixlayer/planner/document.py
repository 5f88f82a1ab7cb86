"""The plan document: one versioned shape for NixOS, system-manager and nix-darwin plans
(the `result` of `nixlayer plan --json`), published as JSON Schema (`nixlayer schema
plan`) and rendered as a merge-request comment (planner/markdown.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from nixlayer.planner.closure_diff import ClosureDiff
from nixlayer.planner.model import MODELS, Action, Kind, SwitchPlan

SCHEMA_VERSION: Literal[1] = 1
SCHEMA_ID = "https://nixlayer.invalid/schema/plan/v1.json"


@dataclass(frozen=True)
class PlanDocument:
    version: Literal[1]
    kind: Kind
    action: Action
    models: str  # the upstream behaviour the prediction follows
    from_system: str
    to_system: str
    switch: SwitchPlan
    closure: ClosureDiff | None  # None: a side is not in the Nix store (or --no-closure)
    protected: list[str]  # units flagged because disturbing them would cut a CI job off

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def touched_protected(self) -> list[tuple[str, str]]:
        """(unit, change) for protected units the switch disturbs."""
        protected = set(self.protected)
        bad: tuple[str, ...] = ("stop", "restart", "skip", "silent-skip", "conflict")
        if self.kind == "nix-darwin":
            bad += ("reload",)
        decisions = [*self.switch.decisions, *(d for u in self.switch.users for d in u.decisions)]
        return [(d.unit, d.change) for d in decisions if d.unit in protected and d.change in bad]


def plan_document(
    plan: SwitchPlan,
    *,
    from_system: str,
    to_system: str,
    closure: ClosureDiff | None,
    protected: frozenset[str] | list[str] = frozenset(),
) -> PlanDocument:
    models = MODELS if plan.kind == "nixos" else f"nixlayer's {plan.kind} model (planner/others.py)"
    return PlanDocument(
        version=SCHEMA_VERSION,
        kind=plan.kind,
        action=plan.action,
        models=models,
        from_system=from_system,
        to_system=to_system,
        switch=plan,
        closure=closure,
        protected=sorted(protected),
    )


def plan_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of PlanDocument: closed objects, every field required, so a
    renamed or dropped field fails validation."""
    from pydantic import TypeAdapter

    schema: dict[str, Any] = TypeAdapter(PlanDocument).json_schema(mode="serialization")

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])  # every field is always written
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "nixlayer plan",
        "description": "A predicted switch (NixOS, system-manager or nix-darwin), version "
        f"{SCHEMA_VERSION}: unit decisions with reasons, the lines switch-to-configuration "
        "prints, user units, the switch-inhibitor verdict and the closure diff.",
    }
