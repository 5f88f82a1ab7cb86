"""Flake refs as users write them, made concrete (kept free of heavy imports)."""

from __future__ import annotations

import os
from pathlib import Path

from nixlayer.errors import InputError


def normalize_ref(raw: str) -> tuple[str, Path | None]:
    """A flake ref with `~` expanded and local paths made absolute `path:` refs.

    Returns the ref and, for local refs, the directory it names.
    """
    ref = raw.strip()
    if not ref:
        raise InputError("library", "empty flake ref")
    if ref.startswith(("/", "./", "../", "~")) or ref in (".", ".."):
        path = Path(os.path.expanduser(ref)).absolute()
        return f"path:{path}", path
    for scheme in ("path:", "git+file://", "git+file:"):
        if ref.startswith(scheme):
            rest, sep, query = ref[len(scheme) :].partition("?")
            path = Path(os.path.expanduser(rest)).absolute()
            norm = ("path:" if scheme == "path:" else "git+file://") + str(path)
            return norm + (sep + query if sep else ""), path
    return ref, None
