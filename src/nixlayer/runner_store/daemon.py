"""The host nix-daemon's *effective* settings, as the daemon itself loaded them.

A client's `nix show-config` shows the client's configuration (its NIX_CONF_DIR,
NIX_CONFIG, user files), which need not be the daemon's. So nixlayer finds the
daemon process that serves the socket the jobs will get, and asks that process's
own Nix binary (`/proc/PID/exe`, so the compiled-in defaults are the daemon's,
e.g. Debian's) for its settings with exactly the configuration inputs the daemon
had: its NIX_CONF_DIR, NIX_CONFIG and user configuration files, read from
/proc/PID/environ and opened through /proc/PID/root (so a daemon in another
mount namespace is read as it sees its files), and the `--option` pairs of its
command line. A configuration file changed since the daemon started is refused.

The daemon is the process whose socket path (NIX_DAEMON_SOCKET_PATH, else
NIX_STATE_DIR/daemon-socket/socket, in its own mount namespace) is the same inode
as the host socket; it must run as root from a root-owned binary. A
socket-activated daemon (systemd holds the socket) is started by one connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from nixlayer.errors import GuardRefusedError, InputError, NixError
from nixlayer.nix import commands
from nixlayer.nix.nixjson.config import ConfigFormatError, NixSettings, parse_settings
from nixlayer.nix.runner import Nix

log = logging.getLogger("nixlayer")

SOCKET = "nix/var/nix/daemon-socket/socket"
_TIMEOUT = 30.0


@dataclass(frozen=True)
class DaemonInfo:
    pid: int
    socket: Path
    settings: NixSettings
    nix_version: str


def socket_path(store_root: str) -> Path:
    return Path(store_root) / SOCKET


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def _is_daemon(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    name = os.path.basename(argv[0].decode(errors="replace")) if argv else ""
    return name == "nix-daemon" or (name == "nix" and len(argv) > 1 and argv[1] == b"daemon")


def _root_owned(pid: int) -> bool:
    try:
        proc = os.stat(f"/proc/{pid}")
        exe = os.stat(f"/proc/{pid}/exe")
    except OSError:
        return False
    return proc.st_uid == 0 and exe.st_uid == 0 and not exe.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _serves(pid: int, target: os.stat_result) -> bool:
    try:
        env = _environ(pid)
        state = env.get("NIX_STATE_DIR") or "/nix/var/nix"
        path = env.get("NIX_DAEMON_SOCKET_PATH") or f"{state}/daemon-socket/socket"
        st = os.stat(f"/proc/{pid}/root{path}")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino)


def find_daemon(sock: Path) -> int:
    """The pid of the root nix-daemon listening on `sock` (the lowest: the parent
    of the per-connection workers)."""
    try:
        target = os.stat(sock)
    except OSError as exc:
        raise InputError(
            "--dir", f"no nix-daemon socket at {sock} ({exc.strerror}): is the daemon running?"
        ) from exc
    if not stat.S_ISSOCK(target.st_mode):
        raise InputError("--dir", f"{sock} is not a socket")
    for attempt in range(2):
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        found = [p for p in pids if _is_daemon(p) and _serves(p, target)]
        owned = [p for p in found if _root_owned(p)]
        if owned:
            return owned[0]
        if found:
            raise GuardRefusedError(
                f"the nix-daemon serving {sock} (pid {found[0]}) is not a root process "
                "running a root-owned binary; its settings cannot be trusted"
            )
        if attempt == 0:  # socket activation: one connection starts the daemon
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(sock))
    raise GuardRefusedError(
        f"cannot find the nix-daemon process serving {sock} (run configure as root on the "
        "host that runs the daemon), so its settings cannot be checked"
    )


def _config_inputs(pid: int) -> dict[str, str]:
    """The environment that makes a Nix read the daemon's configuration files."""
    env = _environ(pid)
    root = f"/proc/{pid}/root"
    if "NIX_USER_CONF_FILES" in env:
        user_files = [f for f in env["NIX_USER_CONF_FILES"].split(":") if f]
    else:
        home = env.get("HOME") or pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_dir
        config_home = env.get("XDG_CONFIG_HOME") or f"{home}/.config"
        dirs = [config_home, *(env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")]
        user_files = [f"{d}/nix/nix.conf" for d in dirs if d]
    return {
        "NIX_CONF_DIR": root + (env.get("NIX_CONF_DIR") or "/etc/nix"),
        "NIX_USER_CONF_FILES": ":".join(root + f for f in user_files if f.startswith("/")),
        # Empty when the daemon had none: the caller's own NIX_CONFIG must not count.
        "NIX_CONFIG": env.get("NIX_CONFIG", ""),
    }


def _started_at(pid: int) -> float:
    """The process's start, in seconds since the epoch (to a clock tick: /proc's
    starttime counts from boot on the boot-time clock)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22; fields[0] is field 3
    return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot)


def _check_unchanged(pid: int, inputs: dict[str, str]) -> None:
    """The files are read now, the daemon read them when it started: refuse if one
    changed since (an edit the daemon has not picked up)."""
    started = _started_at(pid)
    files = [f"{inputs['NIX_CONF_DIR']}/nix.conf", *inputs["NIX_USER_CONF_FILES"].split(":")]
    for f in filter(None, files):
        try:
            mtime = os.stat(f).st_mtime
        except OSError:
            continue
        if mtime > started + 0.05:
            shown = f.split("/root", 1)[1] if f.startswith("/proc/") else f
            raise GuardRefusedError(
                f"{shown} changed after the nix-daemon (pid {pid}) started: restart the "
                "daemon so that the settings it runs with are the ones in its files"
            )


# Daemon arguments that do not touch settings (`nix daemon` or `nix-daemon`).
_HARMLESS_ARGS = frozenset({"daemon", "--daemon", "-v", "--verbose", "--debug", "-vv", "-vvv"})


def _cmdline_options(pid: int) -> list[str]:
    """`--option NAME VALUE` from the daemon's command line (they override its files);
    any other argument could change a setting in ways not modelled here: refuse."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    argv = [a.decode(errors="replace") for a in raw.removesuffix(b"\0").split(b"\0")[1:]]
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--option" and i + 2 < len(argv):
            out += argv[i : i + 3]
            i += 3
        elif argv[i] in _HARMLESS_ARGS:
            i += 1
        else:
            raise GuardRefusedError(
                f"the nix-daemon (pid {pid}) runs with argument {argv[i]!r}, whose effect on "
                "its settings nixlayer cannot check; use nix.conf (or --option NAME VALUE)"
            )
    return out


def daemon_info(store_root: str) -> DaemonInfo:
    sock = socket_path(store_root)
    pid = find_daemon(sock)
    inputs = _config_inputs(pid)
    _check_unchanged(pid, inputs)
    nix = Nix(binary=f"/proc/{pid}/exe", env=inputs)
    try:
        version = nix.version()
        out = nix.run([*commands.show_config(version), *_cmdline_options(pid)]).stdout
        settings = parse_settings(out)
    except (NixError, ConfigFormatError) as exc:
        raise GuardRefusedError(
            f"cannot read the settings of the nix-daemon serving {sock} (pid {pid}): {exc}"
        ) from exc
    log.info("nix-daemon pid %d (%s) serves %s", pid, version.text, sock)
    return DaemonInfo(pid=pid, socket=sock, settings=settings, nix_version=version.text)
