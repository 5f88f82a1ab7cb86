"""Parse `--log-format internal-json` (lines `@nix {...}` on stderr) into progress state.

Pure: it folds events into a `BuildProgress`; the CLI decides how to show it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

ACT_BUILDS = 104
ACT_BUILD = 105
ACT_COPY_PATHS = 103
ACT_SUBSTITUTE = 108
RES_PROGRESS = 105
RES_BUILD_LOG_LINE = 101
RES_SET_PHASE = 104
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STORE_NAME = re.compile(r"/nix/store/[0-9a-z]{32}-([^'\s]+?)(?:\.drv)?'?$")


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
            self.messages.append(
                (int(event.get("level", 3)), strip_ansi(str(event.get("msg", ""))))
            )
        elif action == "start":
            self.activities[int(event["id"])] = int(event.get("type", 0))
            if event.get("type") == ACT_BUILD:
                fields = event.get("fields") or [""]
                self.running[int(event["id"])] = _short_name(str(fields[0]))
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
            self.last_log[act] = strip_ansi(str(fields[0]))

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
