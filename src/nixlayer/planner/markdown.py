"""The plan as a merge-request comment: the summary first, the details in collapsible
<details> sections, protected units flagged. Every value from the systems is escaped:
unit and package names end up in a web page."""

from __future__ import annotations

import html

from nixlayer.planner.closure_diff import ClosureDiff, PackageChange, human_size
from nixlayer.planner.document import PlanDocument
from nixlayer.planner.model import Decision

FLAG = "⚠️"
MAX_ROWS = 200  # GitLab notes are capped at 1,000,000 characters; keep far below
KIND_NAMES = {"nixos": "NixOS", "system-manager": "system-manager", "nix-darwin": "nix-darwin"}


def _cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"<code>{_cell(text)}</code>"


size = human_size  # one formatter for plan, markdown and switch


def _count(decisions: list[Decision]) -> str:
    order = (
        ("stop", "stopped"),
        ("restart", "restarted"),
        ("reload", "reloaded"),
        ("start", "started"),
        ("new", "started as new"),
        ("conflict", "stopped by Conflicts="),
        ("skip", "not restarted"),
        ("silent-skip", "not restarted (silently)"),
        ("swapoff", "swap devices off"),
    )
    parts = []
    for change, label in order:
        n = sum(1 for d in decisions if d.change == change)
        if n:
            parts.append(f"{n} {label}")
    return " · ".join(parts) or "nothing stopped, started, restarted or reloaded"


def _closure_summary(c: ClosureDiff) -> str:
    return (
        f"{c.old_paths:,} → {c.new_paths:,} store paths, {size(c.size_delta, True)} "
        f"({size(c.new_size)}); {len(c.added)} added, {len(c.removed)} removed, "
        f"{len(c.version)} version changes, {len(c.size)} size changes"
    )


def _decision_table(decisions: list[Decision], protected: set[str]) -> list[str]:
    rows = ["| Unit | Change | Reason |", "|---|---|---|"]
    for d in decisions[:MAX_ROWS]:
        flag = f"{FLAG} " if d.unit in protected else ""
        rows.append(f"| {flag}{_code(d.unit)} | {d.change} | {_cell(d.reason)} |")
    if len(decisions) > MAX_ROWS:
        rows.append(f"| … | | {len(decisions) - MAX_ROWS} more in the JSON plan |")
    return rows


def _package_rows(changes: list[PackageChange]) -> list[str]:
    rows = ["| Package | Change | Old | New | Size |", "|---|---|---|---|---|"]
    for c in changes[:MAX_ROWS]:
        rows.append(
            f"| {_code(c.name)} | {c.change} | {_cell(', '.join(c.old_versions))} | "
            f"{_cell(', '.join(c.new_versions))} | {size(c.size_delta, True)} |"
        )
    if len(changes) > MAX_ROWS:
        rows.append(f"| … | | | | {len(changes) - MAX_ROWS} more in the JSON plan |")
    return rows


def _details(summary: str, body: list[str]) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def render_markdown(doc: PlanDocument) -> str:
    plan, protected = doc.switch, set(doc.protected)
    kind = KIND_NAMES[doc.kind]
    out = [f"### nixlayer plan: `{doc.action}` ({kind})", ""]
    verdict = plan.inhibitors
    if verdict is not None and verdict.inhibited:
        out += [f"> ⛔ **The switch would be refused:** {_cell(verdict.note)}", ""]
    touched = doc.touched_protected()
    if touched:
        listed = ", ".join(f"{_code(u)} ({c})" for u, c in touched)
        out += [f"> {FLAG} **Protected units disturbed:** {listed}", ""]
    out.append(f"- **Systems:** {_code(doc.from_system)} → {_code(doc.to_system)}")
    out.append(f"- **Units:** {_count(plan.decisions)}")
    for user in plan.users:
        out.append(f"- **User units of {_code(user.user)}:** {_count(user.decisions)}")
    if plan.action == "dry-activate":
        out.append("- dry-activate: no user units, no reload re-check, no inhibitor check")
    if doc.closure is not None:
        out.append(f"- **Closure:** {_closure_summary(doc.closure)}")
    out.append("")
    if plan.decisions:
        out += _details(
            f"Unit decisions ({len(plan.decisions)})", _decision_table(plan.decisions, protected)
        )
    for user in plan.users:
        out += _details(
            f"User units of {_code(user.user)} ({len(user.decisions)})",
            _decision_table(user.decisions, protected),
        )
    if doc.closure is not None:
        c = doc.closure
        changes = [*c.added, *c.removed, *c.version]
        if changes:
            out += _details(f"Packages ({len(changes)})", _package_rows(changes))
        if c.size:
            biggest = sorted(c.size, key=lambda p: -abs(p.size_delta))
            out += _details(f"Size changes ({len(c.size)})", _package_rows(biggest))
    if verdict is not None and verdict.changed:
        rows = ["| Inhibitor | Running | New |", "|---|---|---|"]
        rows += [f"| {_code(i.name)} | {_code(i.old)} | {_code(i.new)} |" for i in verdict.changed]
        out += _details("Switch inhibitors", rows)
    printed = "\n".join(html.escape(line, quote=False) for line in plan.lines)
    out += _details("What switch-to-configuration prints", ["<pre>", printed, "</pre>"])
    out.append(f"<sub>{_cell(doc.models)}</sub>")
    return "\n".join(out) + "\n"
