"""Must-show 6: bash, zsh and fish completions and a man page, generated from the parser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nixlayer.cli.completion import commands, is_group
from nixlayer.cli.main import build_parser
from tests.helpers import cli

pytestmark = pytest.mark.e2e


def _script(shell: str, tmp_path: Path) -> Path:
    proc = cli("completions", shell)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / f"nixlayer.{shell}"
    out.write_text(proc.stdout)
    return out


def _shell(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (scripts/setup installs it)")
    return found


def _bash_complete(script: Path, line: str) -> list[str]:
    """What bash's completion function offers for `line` (cursor at its end)."""
    words = line.split(" ")
    prog = f"""
source {script}
complete -p nixlayer
COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({" ".join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}
_shtab_nixlayer nixlayer {words[-1]!r} {words[-2]!r}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [_shell("bash"), "--norc", "-c", prog], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("complete ") and lines[0].endswith(" nixlayer")
    return [w.strip() for w in lines[1:]]


def test_bash_completes_subcommands_and_their_options(tmp_path: Path) -> None:
    script = _script("bash", tmp_path)
    assert _bash_complete(script, "nixlayer ru") == ["run", "runner-store"]
    assert _bash_complete(script, "nixlayer runner-store s") == ["seed", "status"]
    assert "--image-archive" in _bash_complete(script, "nixlayer runner-store seed --i")
    assert _bash_complete(script, "nixlayer plan --act") == ["--action"]
    # Every command of the parser is offered (generated, so a new command appears).
    top = _bash_complete(script, "nixlayer ")
    names = {c.words[0] for c in commands(build_parser())}
    assert names <= set(top), names - set(top)


def test_bash_completes_choices_and_files(tmp_path: Path) -> None:
    script = _script("bash", tmp_path)
    assert sorted(_bash_complete(script, "nixlayer completions ")) == ["bash", "fish", "zsh"]
    assert _bash_complete(script, "nixlayer switch --kind n") == ["nixos"]
    (tmp_path / "vm-spec.yaml").write_text("{}")
    got = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [
            _shell("bash"),
            "--norc",
            "-c",
            f"cd {tmp_path} && source {script} && COMP_WORDS=(nixlayer render vm-) "
            "COMP_CWORD=2 && _shtab_nixlayer nixlayer vm- render && "
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "vm-spec.yaml" in got.stdout, got.stderr


def test_zsh_script_is_valid_and_defines_the_completion(tmp_path: Path) -> None:
    script = _script("zsh", tmp_path)
    proc = subprocess.run(
        [_shell("zsh"), "-n", str(script)], check=False, capture_output=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    text = script.read_text()
    assert text.startswith("#compdef nixlayer")
    assert "runner-store" in text and "--image-archive" in text
    # Loaded by compinit from $fpath, it registers _nixlayer for the command.
    (tmp_path / "fp").mkdir()
    (tmp_path / "fp" / "_nixlayer").write_text(text)
    loaded = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [
            _shell("zsh"),
            "-f",
            "-c",
            f"fpath=({tmp_path}/fp $fpath); autoload -Uz compinit; "
            f"compinit -u -d {tmp_path}/zcd; print -r -- $_comps[nixlayer]",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "_nixlayer", (loaded.stdout, loaded.stderr)


def test_fish_completes_nested_commands_and_choices(tmp_path: Path) -> None:
    script = _script("fish", tmp_path)
    fish = _shell("fish")
    assert subprocess.run([fish, "-n", str(script)], check=False, timeout=30).returncode == 0

    def complete(line: str) -> list[str]:
        proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted
            [fish, "--no-config", "-c", f"source {script}; complete -C {line!r}"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == 0, proc.stderr
        return [ln.split("\t")[0] for ln in proc.stdout.splitlines()]

    assert complete("nixlayer fleet ") == ["build"]
    assert {"render", "runner-store", "completions", "man"} <= set(complete("nixlayer "))
    assert complete("nixlayer plan --action ") == ["dry-activate", "switch", "test"]
    opts = complete("nixlayer fleet build --")
    assert "--jobs" in opts and "--json" in opts and "--max-jobs" in opts
    assert "--out-link" not in opts  # build's options are not fleet build's


def test_man_page_renders_and_documents_every_command(tmp_path: Path) -> None:
    proc = cli("man")
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "nixlayer.1"
    page.write_text(proc.stdout)
    groff = shutil.which("groff")
    if groff is None:
        pytest.fail("groff is not installed")
    rendered = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [groff, "-man", "-Tutf8", "-ww", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
    )
    assert rendered.returncode == 0 and not rendered.stderr, rendered.stderr
    # groff renders hyphens as U+2010 and may break lines: compare plain words.
    plain = re.sub(".\x08", "", rendered.stdout)  # overstruck bold and underline
    text = " ".join(plain.replace("\u2010", "-").replace("\u2212", "-").split())
    for cmd in commands(build_parser()):
        if not is_group(cmd):
            assert f"nixlayer {' '.join(cmd.words)}" in text
    for section in ("EXIT STATUS", "JSON OUTPUT", "COMMON OPTIONS", "ENVIRONMENT"):
        assert section in text
    assert "--image-archive FILE" in text and "--max-jobs N" in text
    if shutil.which("man"):
        shown = subprocess.run(  # noqa: PLW1510 - the return code is asserted
            ["man", "-l", str(page)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "MANPAGER": "cat", "PAGER": "cat"},
        )
        assert shown.returncode == 0 and "NIXLAYER(1)" in shown.stdout, shown.stderr
