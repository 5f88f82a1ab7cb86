"""A failed step, told so a user can act on it: one line for a table, the whole
text for JSON and the per-VM log file.

Nix's own error line is often not the useful part: "builder for '...drv' failed
with exit code 1;" ends in a dangling `;` before the log tail, and "program 'git'
failed" comes after git's own message. The summary keeps what explains the
failure: the first error, git's `fatal:` line, the last build-log line and the
`nix log` hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nixlayer.errors import NixError, NixlayerError
from nixlayer.nix.buildfail import builder_line, failed_builder, log_hint
from nixlayer.nix.progress import strip_ansi

_TOOL_FAILED = re.compile(r"program '[^']+' failed with exit code")


@dataclass(frozen=True)
class Failure:
    summary: str  # one line
    detail: str  # everything: the command and Nix's whole stderr
    log_tail: tuple[str, ...] = ()
    log_hint: str | None = None

    def short(self, width: int = 160) -> str:
        return shorten(self.summary, width)


def shorten(text: str, width: int = 160) -> str:
    """At most `width` characters, keeping a trailing "see `nix log ...`" whole."""
    if len(text) <= width:
        return text
    head, sep, hint = text.rpartition("; see `")
    if not sep:
        return text[: width - 1] + "…"
    keep = max(width - len(hint) - len(sep) - 1, 20)
    return head[:keep] + "…" + sep + hint


def describe(exc: NixlayerError, step: str = "") -> Failure:
    prefix = f"{step}: " if step else ""
    if not isinstance(exc, NixError):
        return Failure(summary=prefix + str(exc).splitlines()[0], detail=prefix + str(exc))
    text = strip_ansi(exc.stderr)
    lines = [ln.rstrip() for ln in text.splitlines()]
    tail = tuple(ln.strip().removeprefix(">").strip() for ln in lines if ln.strip().startswith(">"))
    hint = log_hint(text)
    failed = failed_builder(text)
    if hint is None and failed:
        hint = f"nix log {failed[0]}"
    errors = [i for i, ln in enumerate(lines) if ln.startswith("error:")]
    first = lines[errors[0]].removeprefix("error:").strip().rstrip(";") if errors else ""
    if failed and "builder for" not in first:
        first = builder_line(*failed)  # newer Nix: "Cannot build ..." then a Reason line
    parts = [first or exc.first_error()]
    if errors and _TOOL_FAILED.search(first):
        # The tool's own message (git's `fatal: ...`) precedes Nix's line.
        own = [ln.strip() for ln in lines[: errors[0]] if ln.strip()]
        fatal = [ln for ln in own if ln.startswith(("fatal:", "error:"))] or own[-1:]
        parts = [*fatal[:1], *parts]
    if tail:
        parts.append(f"last log line: {tail[-1]}")
    if hint:
        parts.append(f"see `{hint}`")
    detail = f"{prefix}$ {exc.command}\n{text.rstrip()}\n"
    return Failure(
        summary=prefix + "; ".join(p for p in parts if p),
        detail=detail,
        log_tail=tail,
        log_hint=hint,
    )


def failed_drv(error: str) -> str | None:
    """The derivation whose builder failed, as Nix names it in an error line."""
    failed = failed_builder(error)
    return failed[0] if failed else None


def describe_build(error: str, drv: str, log_text: str | None) -> Failure:
    """A failure from a build graph (one `nix-store --realise` for many VMs): Nix's
    line, the failed derivation's last log line from `nix log`, and the hint."""
    tail = tuple(ln.rstrip() for ln in strip_ansi(log_text or "").splitlines() if ln.strip())[-10:]
    hint = f"nix log {drv}"
    parts = [error.removeprefix("error:").strip().rstrip(";")]
    if tail:
        parts.append(f"last log line: {tail[-1].strip()}")
    parts.append(f"see `{hint}`")
    detail = f"{error}\n\n$ {hint}   # its last log lines:\n" + "\n".join(tail) + "\n"
    return Failure(summary="; ".join(parts), detail=detail, log_tail=tail, log_hint=hint)
