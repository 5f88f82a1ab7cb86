"""Parse `--log-format internal-json` (lines `@nix {...}` on stderr) into progress state.

Pure: it folds events into a `BuildProgress`; the CLI decides how to show it.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nixlayer.nix.buildfail import failed_builder

ACT_BUILDS = 104
ACT_BUILD = 105
ACT_COPY_PATHS = 103
ACT_SUBSTITUTE = 108
RES_PROGRESS = 105
RES_BUILD_LOG_LINE = 101
RES_SET_PHASE = 104
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STORE_NAME = re.compile(r"/nix/store/[0-9a-z]{32}-([^'\s]+?)(?:\.drv)?'?$")
LOG_TAIL_LINES = 10


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass
class BuildProgress:
    """What a terminal shows: builds done/expected, what is running, errors so far."""

    done: int = 0
    expected: int = 0
    running: dict[int, str] = field(default_factory=dict)
    phase: dict[int, str] = field(default_factory=dict)
    messages: list[tuple[int, str]] = field(default_factory=list)
    last_log: dict[int, str] = field(default_factory=dict)
    activities: dict[int, int] = field(default_factory=dict)
    # Per build: its derivation and its last log lines. With internal-json Nix
    # leaves the log tail out of a failed build's error (it assumes the log lines
    # were shown), so `feed` puts it back, as Nix's plain log format prints it.
    drvs: dict[int, str] = field(default_factory=dict)
    logs: dict[int, deque[str]] = field(default_factory=dict)

    def errors(self) -> list[str]:
        return [m for level, m in self.messages if level == 0]

    def feed(self, line: str) -> bool:
        """Fold one stderr line in. Returns False for a line that is not internal JSON."""
        if not line.startswith("@nix "):
            return False
        try:
            event: dict[str, Any] = json.loads(line[5:])
        except json.JSONDecodeError:
            return False
        action = event.get("action")
        if action == "msg":
            level, msg = int(event.get("level", 3)), strip_ansi(str(event.get("msg", "")))
            self.messages.append((level, self._with_log_tail(msg) if level == 0 else msg))
        elif action == "start":
            self.activities[int(event["id"])] = int(event.get("type", 0))
            if event.get("type") == ACT_BUILD:
                fields = event.get("fields") or [""]
                self.running[int(event["id"])] = _short_name(str(fields[0]))
                self.drvs[int(event["id"])] = str(fields[0])
        elif action == "stop":
            self.running.pop(int(event["id"]), None)
        elif action == "result":
            self._result(event)
        return True

    def _result(self, event: dict[str, Any]) -> None:
        rtype = event.get("type")
        fields = event.get("fields") or []
        act = int(event.get("id", 0))
        if rtype == RES_PROGRESS and len(fields) >= 2 and self.activities.get(act) == ACT_BUILDS:
            # The progress of the `builds` activity: [done, expected, running, failed].
            self.done, self.expected = int(fields[0]), max(int(fields[1]), self.expected)
        elif rtype == RES_SET_PHASE and fields:
            self.phase[act] = str(fields[0])
        elif rtype == RES_BUILD_LOG_LINE and fields:
            line = strip_ansi(str(fields[0]))
            self.last_log[act] = line
            self.logs.setdefault(act, deque(maxlen=LOG_TAIL_LINES)).append(line)

    def log_tail(self, drv: str) -> list[str]:
        """The last log lines of the build of `drv` (empty if it logged nothing)."""
        acts = [a for a, d in self.drvs.items() if d == drv]
        return list(self.logs.get(acts[-1], ())) if acts else []

    def _with_log_tail(self, msg: str) -> str:
        failed = failed_builder(msg)
        if failed is None or ("ast " in msg and " log lines:" in msg):
            return msg
        drv = failed[0]
        tail = self.log_tail(drv)
        out = msg.rstrip().rstrip(";") + (";" if tail else "")
        if tail:
            out += f"\n       last {len(tail)} log lines:"
            out += "".join(f"\n       > {ln}" for ln in tail)
        return out + f"\n       For full logs, run 'nix log {drv}'."

    def summary(self) -> str:
        names = ", ".join(sorted(self.running.values())[:3])
        more = len(self.running) - 3
        tail = f" (+{more} more)" if more > 0 else ""
        count = f"[{self.done}/{self.expected}] " if self.expected else ""
        if names:
            return f"{count}building {names}{tail}"
        return f"{count}building" if self.expected else "evaluating"


def _short_name(path: str) -> str:
    m = _STORE_NAME.search(path)
    return m.group(1) if m else path
