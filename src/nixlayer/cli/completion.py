"""`nixlayer completions bash|zsh|fish` and `nixlayer man`: generated from the parser,
so they never drift from the commands. bash and zsh through shtab; fish (which shtab
does not cover) and the man page (cli/manpage.py) by walking the parser here."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nixlayer.cli.output import emit_json

SHELLS = ("bash", "zsh", "fish")
# Metavars that name files or directories: the shells complete paths for them.
FILE_METAVARS = {"FILE", "SPEC", "FLEET", "PATH", "FLAKEREF", "URL"}
DIR_METAVARS = {"DIR", "CONFIG_DIR", "FLAKE_DIR"}


@dataclass(frozen=True)
class Command:
    """One runnable command: its words (`fleet build`), parser and one-line help."""

    words: tuple[str, ...]
    parser: argparse.ArgumentParser
    help: str


def subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def commands(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = (), help_text: str = ""
) -> Iterator[Command]:
    """Every command and command group, depth first, in the parser's order."""
    if words:
        yield Command(words, parser, help_text)
    sub = subparsers(parser)
    if sub is None:
        return
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    for name, child in sub.choices.items():
        yield from commands(child, (*words, name), helps.get(name, ""))


def is_group(cmd: Command) -> bool:
    return subparsers(cmd.parser) is not None


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.option_strings and a.help != argparse.SUPPRESS and not isinstance(a, _HELP)
    ]


def positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    ]


_HELP = argparse._HelpAction


def path_kind(action: argparse.Action) -> str | None:
    """'file', 'dir' or None: what a shell should complete for this argument."""
    metavar = action.metavar if isinstance(action.metavar, str) else None
    if action.choices or action.nargs == 0:
        return None
    if metavar in DIR_METAVARS:
        return "dir"
    if metavar in FILE_METAVARS:
        return "file"
    return None


# --- bash and zsh: shtab -----------------------------------------------------------


def shtab_script(parser: argparse.ArgumentParser, shell: str) -> str:
    import shtab

    for cmd in commands(parser):
        for action in cmd.parser._actions:
            kind = path_kind(action)
            if kind is not None:
                action.complete = shtab.DIRECTORY if kind == "dir" else shtab.FILE  # type: ignore[attr-defined]
    script: str = shtab.complete(parser, shell=shell, root_prefix="nixlayer")
    return script


# --- fish --------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _first_line(text: str | None) -> str:
    return " ".join((text or "").split())[:120]


def fish_script(parser: argparse.ArgumentParser) -> str:
    cmds = list(commands(parser))
    groups = {"", *(" ".join(c.words) for c in cmds if is_group(c))}
    known = " ".join(_fish_quote(" ".join(c.words)) for c in cmds)
    out = [
        "# fish completion for nixlayer, generated from its parser (`nixlayer completions fish`)",
        f"set -g __nixlayer_commands {known}",
        "function __nixlayer_path --description 'the nixlayer command typed so far'",
        "    set -l path",
        "    for t in (commandline -opc)[2..-1]",
        "        string match -q -- '-*' $t; and continue",
        "        set -l next (string join ' ' $path $t)",
        "        contains -- $next $__nixlayer_commands; or break",
        "        set path $path $t",
        "    end",
        "    string join ' ' $path",
        "end",
        "function __nixlayer_is",
        "    set -l typed (__nixlayer_path)",
        '    test "$typed" = "$argv[1]"',
        "end",
        "complete -c nixlayer -f",
        "complete -c nixlayer -n '__nixlayer_is \"\"' -l version -d 'print the version'",
        "complete -c nixlayer -s h -l help -d 'show help'",
    ]
    for cmd in cmds:
        parent = " ".join(cmd.words[:-1])
        cond = _fish_quote(f'__nixlayer_is "{parent}"')
        out.append(
            f"complete -c nixlayer -n {cond} -a {_fish_quote(cmd.words[-1])} "
            f"-d {_fish_quote(_first_line(cmd.help))}"
        )
    for cmd in cmds:
        name = " ".join(cmd.words)
        if name in groups:
            continue
        cond = _fish_quote(f'__nixlayer_is "{name}"')
        for action in options(cmd.parser):
            out.append(_fish_option(cond, action))
        for action in positionals(cmd.parser):
            kind = path_kind(action)
            if action.choices:
                values = " ".join(str(c) for c in action.choices)
                out.append(f"complete -c nixlayer -n {cond} -a {_fish_quote(values)}")
            elif kind is not None or action.metavar in (None, "SPEC"):
                out.append(f"complete -c nixlayer -n {cond} -F")
    return "\n".join(out) + "\n"


def _fish_option(cond: str, action: argparse.Action) -> str:
    parts = [f"complete -c nixlayer -n {cond}"]
    for flag in action.option_strings:
        if flag.startswith("--"):
            parts.append(f"-l {flag[2:]}")
        elif len(flag) == 2:
            parts.append(f"-s {flag[1]}")
    if action.nargs != 0:
        parts.append("-r")
        if action.choices:
            parts.append("-f -a " + _fish_quote(" ".join(str(c) for c in action.choices)))
        elif path_kind(action) is not None:
            parts.append("-F")
    parts.append(f"-d {_fish_quote(_first_line(action.help))}")
    return " ".join(parts)


# --- the commands ------------------------------------------------------------------


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "completions",
        parents=[common],
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script generated from nixlayer's own parser. "
        "bash: `source <(nixlayer completions bash)` or save it as "
        "/usr/share/bash-completion/completions/nixlayer; zsh: save it as `_nixlayer` in a "
        "directory of $fpath; fish: save it as ~/.config/fish/completions/nixlayer.fish.",
    )
    p.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash, zsh or fish")
    p.set_defaults(handler=_completions)
    p = sub.add_parser(
        "man",
        parents=[common],
        help="print the manual page (roff; `nixlayer man | man -l -`)",
        description="Print nixlayer(1) in roff, generated from the parser. Install it with "
        "`nixlayer man > /usr/local/share/man/man1/nixlayer.1`.",
    )
    p.set_defaults(handler=_man)


def _parser() -> argparse.ArgumentParser:
    from nixlayer.cli.main import build_parser

    return build_parser()


def script_for(shell: str) -> str:
    parser = _parser()
    return fish_script(parser) if shell == "fish" else shtab_script(parser, shell)


def _completions(args: argparse.Namespace) -> int:
    script = script_for(args.shell)
    if args.json:
        emit_json({"shell": args.shell, "script": script})
    else:
        print(script, end="")
    return 0


def _man(args: argparse.Namespace) -> int:
    from nixlayer.cli.manpage import manpage

    text = manpage(_parser())
    if args.json:
        emit_json({"section": 1, "roff": text})
    else:
        print(text, end="")
    return 0
