"""`nix --version`: one line, in each implementation's own words.

- `nix (Nix) 2.8.0` (Debian bookworm), `nix (Nix) 2.26.3` (trixie), `nix (Nix) 2.34.8` (sid)
- `nix (Lix, like Nix) 2.91.1`
- `nix (Determinate Nix 3.6.2) 2.29.0`: its own version first, the Nix version last
"""

from __future__ import annotations

import re

from nixlayer.errors import NixOutputError
from nixlayer.nix.version import NixVersion

_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse(text: str) -> NixVersion:
    first = text.strip().splitlines()[0] if text.strip() else ""
    lowered = first.lower()
    if "lix" in lowered:
        impl = "lix"
    elif "determinate" in lowered:
        impl = "determinate"
    else:
        impl = "nix"
    # The Nix version is the last dotted number on the line (Determinate puts its own first).
    matches = list(_VERSION_RE.finditer(first))
    if not matches:
        raise NixOutputError("nix --version", f"cannot read a version from {first!r}")
    m = matches[-1]
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    return NixVersion(implementation=impl, version=version, text=first)
