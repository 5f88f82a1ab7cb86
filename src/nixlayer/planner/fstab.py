"""fstab as switch-to-configuration-ng reads it, and systemd's path escaping."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FsEntry:
    device: str
    fs_type: str
    options: str


def parse_fstab(text: str) -> tuple[dict[str, FsEntry], dict[str, str]]:
    """(filesystems by mount point, swap options by device). A line with `#`
    anywhere is skipped, as upstream does; mount points are not unescaped."""
    filesystems: dict[str, FsEntry] = {}
    swaps: dict[str, str] = {}
    for line in text.splitlines():
        if "#" in line:
            continue
        fields = line.split()
        if len(fields) < 3:
            continue
        options = fields[3] if len(fields) > 3 else ""
        if fields[2] == "swap":
            swaps[fields[0]] = options
        else:
            filesystems[fields[1]] = FsEntry(fields[0], fields[2], options)
    return filesystems, swaps


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")


def escape_path(path: str) -> str:
    """`systemd-escape --path`: `/` -> `-`, `/a-b/c` -> `a\\x2db-c`."""
    trimmed = "/".join(p for p in path.split("/") if p)
    if not trimmed:
        return "-"
    out = []
    for i, ch in enumerate(trimmed):
        if ch == "/":
            out.append("-")
        elif ch in _PLAIN and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    return "".join(out)
