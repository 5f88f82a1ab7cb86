"""nixlayer(1) in roff, generated from the argparse parser (`nixlayer man`).

Options every command shares (output, Nix options) are described once under COMMON
OPTIONS; each command's section lists only its own.
"""

from __future__ import annotations

import argparse

from nixlayer import __version__
from nixlayer.cli.completion import Command, commands, is_group, options, positionals

EXIT_STATUS = (
    ("0", "success"),
    ("1", "failure (a nix call, a build, a VM of a fleet, or an unexpected error)"),
    ("2", "bad input: a spec field, a flag, a file; nothing was written"),
    ("3", "refused by a guard (e.g. a protected unit would be restarted)"),
    ("130", "interrupted"),
)
ENVIRONMENT = (
    ("NIXLAYER_ROOT", "config root for render, lock, build, run and fleet (--root wins)"),
    ("WORKERS_DIR, WORKER_INDEX", "config root $WORKERS_DIR/$WORKER_INDEX/nix, if no other"),
    ("NIXLAYER_LIBRARY", "the library flake for specs that name none"),
    ("NIXLAYER_BASE", "the runner's base flake for switch and prepare (--base wins)"),
    ("NIXLAYER_REGISTRY", "the registry read for the nixlayer-base alias"),
    ("NIXLAYER_NIX", "the nix binary (default: nix on PATH)"),
    ("NIX_CONFIG", "passed on to every nix call, as Nix reads it"),
    ("NIXLAYER_TRACEBACK", "print the traceback of an internal error (as -vv does)"),
)
ENVELOPE = (
    ("version", "1"),
    ("command", "the command words, e.g. build or runner-store seed"),
    ("ok", "true when exit_code is 0"),
    ("exit_code", "the exit status"),
    ("result", "the command's data, or null when it failed before producing any"),
    (
        "error",
        "null, or {kind, message, field, nix}: kind is input, nix, guard, failure or "
        "interrupted; field names the bad input; nix holds the failed command and its stderr",
    ),
    ("warnings", "warnings printed on stderr, in order"),
)


def esc(text: str) -> str:
    """Text for a roff line: backslashes, dashes and a leading control character."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + out if out.startswith((".", "'")) else out


def _para(text: str | None) -> list[str]:
    return [esc(" ".join(text.split()))] if text else []


def _flags(action: argparse.Action) -> str:
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    if action.choices and not action.metavar:
        metavar = "{" + ",".join(str(c) for c in action.choices) + "}"
    names = ", ".join(f"\\fB{esc(f)}\\fR" for f in action.option_strings)
    return names if action.nargs == 0 else f"{names} \\fI{esc(str(metavar))}\\fR"


def _item(head: str, text: str | None) -> list[str]:
    return [".TP", head, *(_para(text) or [""])]


def _synopsis(cmd: Command, common: set[str]) -> str:
    words = " ".join(cmd.words)
    own = [a for a in options(cmd.parser) if a.dest not in common]
    parts = [f"\\fBnixlayer {esc(words)}\\fR"]
    parts += ["[\\fIoptions\\fR]"] if own or common else []
    for a in positionals(cmd.parser):
        name = a.metavar if isinstance(a.metavar, str) else a.dest.upper()
        shown = f"\\fI{esc(name)}\\fR"
        parts.append(f"[{shown}]" if a.nargs == "?" else shown)
    return " ".join(parts)


def _common_dests(leaves: list[Command]) -> set[str]:
    sets = [{a.dest for a in options(c.parser)} for c in leaves]
    return set.intersection(*sets) if sets else set()


def manpage(parser: argparse.ArgumentParser) -> str:
    cmds = list(commands(parser))
    leaves = [c for c in cmds if not is_group(c)]
    common = _common_dests(leaves)
    out = [
        f'.TH NIXLAYER 1 "" "nixlayer {esc(__version__)}" "User Commands"',
        ".SH NAME",
        "nixlayer \\- VM closures, CI job layers, switch plans and shared runner stores on Nix",
        ".SH SYNOPSIS",
        ".B nixlayer",
        "\\fICOMMAND\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]",
        ".br",
        ".B nixlayer",
        "\\fB\\-\\-version\\fR | \\fB\\-\\-help\\fR",
        ".SH DESCRIPTION",
        *_para(parser.description),
        ".SH COMMANDS",
    ]
    for cmd in leaves:
        out += [".SS " + _synopsis(cmd, common), *_para(cmd.parser.description or cmd.help)]
        for a in positionals(cmd.parser):
            name = a.metavar if isinstance(a.metavar, str) else a.dest.upper()
            choices = f" (one of: {', '.join(map(str, a.choices))})" if a.choices else ""
            out += _item(f"\\fI{esc(name)}\\fR", (a.help or "") + choices)
        for a in options(cmd.parser):
            if a.dest not in common:
                out += _item(_flags(a), a.help)
    out += [".SH COMMON OPTIONS", "Every command takes these."]
    sample = leaves[0].parser if leaves else parser
    for a in options(sample):
        if a.dest in common:
            out += _item(_flags(a), a.help)
    out += [".SH EXIT STATUS"]
    for code, text in EXIT_STATUS:
        out += _item(f"\\fB{code}\\fR", text)
    out += [
        ".SH JSON OUTPUT",
        *_para(
            "With --json, standard output holds exactly one JSON object, on success and on "
            "failure alike; its JSON Schema is printed by `nixlayer schema envelope`. Human "
            "messages, warnings and progress go to standard error."
        ),
    ]
    for key, text in ENVELOPE:
        out += _item(f"\\fB{key}\\fR", text)
    out += [".SH ENVIRONMENT"]
    for name, text in ENVIRONMENT:
        out += _item(f"\\fB{esc(name)}\\fR", text)
    out += [
        ".SH SHELL COMPLETION",
        *_para(
            "nixlayer completions bash|zsh|fish prints a completion script generated from "
            "the same parser as this page."
        ),
        ".SH SEE ALSO",
        "\\fBnix\\fR(1), \\fBnixos\\-rebuild\\fR(8), \\fBgitlab\\-runner\\fR(1)",
    ]
    return "\n".join(out) + "\n"
