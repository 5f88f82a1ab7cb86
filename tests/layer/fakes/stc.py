"""The stand-in switch-to-configuration's behaviour (called as `stc.py TOPLEVEL ACTION`).

- `switch`/`test` point $NIXLAYER_FAKE_CURRENT at TOPLEVEL (as the activation script does
  with /run/current-system), after the pre-switch check.
- The pre-switch check compares switch-inhibitors (names in both, different values) of
  $NIXLAYER_FAKE_CURRENT and TOPLEVEL, except for boot and dry-activate and with
  NIXOS_NO_CHECK=1; a difference prints nixpkgs' lines and exits 1.
- $NIXLAYER_FAKE_STC_EXIT="SUBSTRING:CODE": a toplevel whose path contains SUBSTRING
  exits with CODE: 4 after activating (a unit failed), 2 before (activation script).
- $NIXLAYER_FAKE_STC_CHECK_FAIL=SUBSTRING: another pre-switch check ('diskSpace') refuses.
- $NIXLAYER_FAKE_STC_GATE=FILE: write FILE.started, then wait for FILE before activating.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def inhibitors(root: Path) -> dict[str, str]:
    f = root / "switch-inhibitors"
    return json.loads(f.read_text()) if f.exists() else {}


def main() -> int:
    top, action = Path(sys.argv[1]), sys.argv[2]
    current = Path(os.environ["NIXLAYER_FAKE_CURRENT"])
    print(f"stand-in switch-to-configuration {action}", flush=True)
    if action not in ("boot", "dry-activate") and os.environ.get("NIXOS_NO_CHECK") != "1":
        old, new = inhibitors(current), inhibitors(top)
        if any(k in new and new[k] != v for k, v in old.items()):
            print("Found diff in switch inhibitors", flush=True)
            print("Pre-switch check 'switchInhibitors' failed", flush=True)
            print("Pre-switch checks failed", flush=True)
            return 1
        check = os.environ.get("NIXLAYER_FAKE_STC_CHECK_FAIL")
        if check and check in str(top):
            print("not enough space in /boot for the new generation", flush=True)
            print("Pre-switch check 'diskSpace' failed", flush=True)
            print("Pre-switch checks failed", flush=True)
            return 1
    gate = os.environ.get("NIXLAYER_FAKE_STC_GATE")
    if gate:
        Path(gate + ".started").write_text("")
        while not Path(gate).exists():
            time.sleep(0.05)
    code = 0
    spec = os.environ.get("NIXLAYER_FAKE_STC_EXIT", "")
    if spec:
        needle, _, value = spec.rpartition(":")
        if needle in str(top):
            code = int(value)
    if code == 2:
        print("Activation script snippet 'etc' failed", flush=True)
        return 2
    if action in ("switch", "test"):
        tmp = current.with_name(current.name + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(top)
        tmp.rename(current)
    if code == 4:
        print("Failed to start docker.service", flush=True)
        print("warning: the following units failed: docker.service", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
