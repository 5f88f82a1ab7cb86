"""flake.nix: the library's imageless template, near-verbatim.

Three edits, each at an anchor that must exist (a template that changed shape is
an error, never a silent no-op): the library URL placeholder, override inputs
after the `nixpkgs.follows` line, and the system when it is not x86_64-linux.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nixlayer.closure.spec import Override
from nixlayer.errors import LibraryError
from nixlayer.nix import nixlang

PLACEHOLDER = '"path:/path/to/nixos-flake"'
DEFAULT_SYSTEM_LINE = re.compile(r'^(?P<indent>[ \t]*)system = "x86_64-linux";[ \t]*$', re.M)


def _follows_anchor(library_input: str) -> re.Pattern[str]:
    return re.compile(
        r'^(?P<indent>[ \t]*)nixpkgs\.follows = "'
        + re.escape(library_input)
        + r'/nixpkgs";[ \t]*$',
        re.M,
    )


def render_flake(
    template: str,
    *,
    origin: str,
    library_ref: str,
    library_input: str,
    overrides: Sequence[Override],
    system: str,
) -> str:
    if PLACEHOLDER not in template:
        raise LibraryError("library", f"template {origin} has no {PLACEHOLDER} placeholder")
    follows = _follows_anchor(library_input)
    anchor = follows.search(template)
    if anchor is None:
        raise LibraryError(
            "library",
            f'template {origin} has no `nixpkgs.follows = "{library_input}/nixpkgs";` line',
        )
    text = template.replace(PLACEHOLDER, nixlang.string(library_ref), 1)
    if overrides:
        anchor = follows.search(text)
        assert anchor is not None  # the placeholder edit cannot remove it
        indent = anchor.group("indent")
        block = "".join("\n" + _override_input(o, indent) for o in overrides)
        text = text[: anchor.end()] + block + text[anchor.end() :]
    if system != "x86_64-linux":
        if not DEFAULT_SYSTEM_LINE.search(text):
            raise LibraryError(
                "system", f'template {origin} has no `system = "x86_64-linux";` line to change'
            )
        text = DEFAULT_SYSTEM_LINE.sub(
            lambda m: f"{m.group('indent')}system = {nixlang.string(system)};", text, count=1
        )
    return text


def override_input_name(pkg: str) -> str:
    return f"{pkg}-src"


def override_type(o: Override) -> str:
    """`path` for a local checkout (render has made it absolute), else `git`."""
    return "path" if o.src.startswith("/") else "git"


def _override_input(o: Override, indent: str) -> str:
    """A non-flake `<pkg>-src` input. Git sources are fetched with their submodules:
    the library's libbpf-tools builds from bcc, whose libbpf, bpftool and blazesym
    are submodules; a repository without any is unaffected."""
    attrs: dict[str, nixlang.NixValue]
    if override_type(o) == "path":
        attrs = {"type": "path", "path": o.src}
    else:
        url = o.src.removeprefix("git+")
        attrs = {"type": "git", "url": url}
        if o.ref:
            attrs["ref"] = o.ref
        attrs["submodules"] = True
    attrs["flake"] = False
    body = nixlang.value(attrs, indent=len(indent) // 2)
    return f"\n{indent}{nixlang.attr_name(override_input_name(o.pkg))} = {body};"
