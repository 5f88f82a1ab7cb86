"""Stand-ins for `systemd-run` and `systemctl is-active` (systemd cannot run in the tests).

`systemd.py run ARGS...` records its argv (one JSON line in $NIXLAYER_FAKE_SYSTEMD_DIR/
systemd-run.log) and starts the "unit": a supervisor in its own session, as pid 1's child
would be, so it survives the death of the caller and of this process. The unit gets a clean
environment (PATH, the `-E` names, and the stand-in system's NIXLAYER_FAKE_* settings), its
output goes where `--property=StandardOutput=append:FILE` says, and its exit status lands in
DIR/<unit>.exit. With `--wait`, this process waits for that and exits with it (as
systemd-run does). $NIXLAYER_FAKE_SYSTEMD_FAIL_FIRST=1 makes the first call fail to start
the unit, as a dropped bus connection would.

`systemd.py ctl is-active --quiet UNIT`: 0 while the unit runs, else 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _dir() -> Path:
    return Path(os.environ["NIXLAYER_FAKE_SYSTEMD_DIR"])


def run(args: list[str]) -> int:
    d = _dir()
    with open(d / "systemd-run.log", "a") as fh:
        fh.write(json.dumps(args) + "\n")
    if os.environ.get("NIXLAYER_FAKE_SYSTEMD_FAIL_FIRST") and not (d / "failed-once").exists():
        (d / "failed-once").write_text("")
        print("Failed to start transient service unit: Connection timed out", file=sys.stderr)
        return 1
    names, props, wait, unit = [], {}, False, "run-u1.service"
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        if arg == "-E":
            names.append(args[i + 1])
            i += 1
        elif arg.startswith("--unit="):
            unit = arg.split("=", 1)[1]
        elif arg.startswith("--property="):
            key, _, value = arg.split("=", 1)[1].partition("=")
            props[key] = value
        elif arg == "--wait":
            wait = True
        i += 1
    command = args[i:]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env |= {n: os.environ[n] for n in names if n in os.environ}
    env |= {k: v for k, v in os.environ.items() if k.startswith("NIXLAYER_FAKE_")}
    out = props.get("StandardOutput", "append:/dev/null").removeprefix("append:")
    (d / f"{unit}.active").write_text("")
    subprocess.Popen(
        [sys.executable, __file__, "supervise", unit, out, *command],
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not wait:
        return 0
    result = d / f"{unit}.exit"
    while not result.exists():
        time.sleep(0.05)
    return int(result.read_text())


def supervise(unit: str, out: str, command: list[str]) -> int:
    d = _dir()
    with open(out, "ab") as fh:
        code = subprocess.run(command, stdout=fh, stderr=fh, check=False).returncode
    tmp = d / f"{unit}.exit.tmp"
    tmp.write_text(str(code))
    tmp.rename(d / f"{unit}.exit")
    (d / f"{unit}.active").unlink()
    return 0


def ctl(args: list[str]) -> int:
    if args[:1] != ["is-active"]:
        return 1
    return 0 if (_dir() / f"{args[-1]}.active").exists() else 3


def main() -> int:
    mode, *rest = sys.argv[1:]
    if mode == "run":
        return run(rest)
    if mode == "supervise":
        return supervise(rest[0], rest[1], rest[2:])
    return ctl(rest)


if __name__ == "__main__":
    sys.exit(main())
