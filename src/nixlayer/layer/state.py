"""What nixlayer remembers between runs on one runner, in `<state dir>/state.json`:

- `base`: the system that ran before the first job switch (what `restore` returns to), with
  the profile generation it was;
- `applied`: the actions jobs took since (restore re-installs the boot entry only when one
  of them touched it);
- `pending`: an activation under way. Written before the profile changes and cleared once
  the outcome is known, so a run killed in between is repaired by the next one.

The directory is root's (0700); the file is replaced atomically. The state dir is on
persistent storage by default: a `switch` makes the job's system the boot default, and
`restore` must still know the base after a reboot.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nixlayer.errors import InputError
from nixlayer.fsutil import target_lock, write_files_atomically
from nixlayer.layer.kinds import KIND_NAMES, Kind, parse_action
from nixlayer.planner.model import Action
from nixlayer.safeload import parse_json, read_text
from nixlayer.strictjson import array, get, integer, obj, opt_string, string

DEFAULT_STATE_DIR = Path("/var/lib/nixlayer")
_GENERATION = re.compile(r"^.+-(\d+)-link$")


# Plain dataclasses, not pydantic: switch keeps pydantic out of its start-up (bench/switch.py).
@dataclass(frozen=True)
class Generation:
    profile: str
    number: int | None  # None: the profile did not exist, or is not a generation link
    target: str | None


@dataclass(frozen=True)
class Pending:
    toplevel: str
    action: Action
    before: Generation | None  # set when the action changes the profile
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class Applied:
    toplevel: str
    action: Action


@dataclass(frozen=True)
class State:
    kind: Kind
    base_system: str
    base_generation: Generation | None
    applied: tuple[Applied, ...] = ()
    pending: Pending | None = None
    version: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> State:
        """The state from its JSON, every field checked for its type (a bool is not a
        generation number); a ValueError names the field."""
        top = obj(data, "the state")
        pending = top.get("pending")
        kind = string(get(top, "kind"), "kind")
        if kind not in KIND_NAMES:
            raise ValueError(f"kind {kind!r}")
        return cls(
            kind=kind,
            base_system=string(get(top, "base_system"), "base_system"),
            base_generation=_generation(top.get("base_generation"), "base_generation"),
            applied=tuple(
                _applied(obj(a, f"applied[{i}]"), f"applied[{i}]")
                for i, a in enumerate(array(top.get("applied", []), "applied"))
            ),
            pending=None if pending is None else _pending(obj(pending, "pending")),
        )


def _generation(v: Any, where: str) -> Generation | None:
    if v is None:
        return None
    d = obj(v, where)
    number = get(d, "number", where)
    if number is not None:
        number = integer(number, f"{where}.number")
    return Generation(
        string(get(d, "profile", where), f"{where}.profile"),
        number,
        opt_string(get(d, "target", where), f"{where}.target"),
    )


def _applied(d: dict[str, Any], where: str) -> Applied:
    return Applied(
        string(get(d, "toplevel", where), f"{where}.toplevel"),
        _action(get(d, "action", where), f"{where}.action"),
    )


def _pending(d: dict[str, Any]) -> Pending:
    return Pending(
        string(get(d, "toplevel", "pending"), "pending.toplevel"),
        _action(get(d, "action", "pending"), "pending.action"),
        _generation(d.get("before"), "pending.before"),
        tuple(
            string(u, f"pending.units[{i}]")
            for i, u in enumerate(array(d.get("units", []), "pending.units"))
        ),
    )


def _action(v: Any, where: str) -> Action:
    return parse_action(string(v, where), "state")


def generation(profile: Path) -> Generation:
    """The generation a profile points at now (profile -> profile-N-link -> store path)."""
    try:
        link = os.readlink(profile)
    except FileNotFoundError:
        return Generation(profile=str(profile), number=None, target=None)
    except OSError as exc:
        raise InputError("--profile", f"{profile} is not a profile: {exc.strerror}") from exc
    match = _GENERATION.match(os.path.basename(link))
    target = os.path.realpath(profile)
    return Generation(
        profile=str(profile), number=int(match.group(1)) if match else None, target=target
    )


def _checked_dir(state_dir: Path) -> Path:
    if state_dir.is_symlink() or (state_dir.exists() and not state_dir.is_dir()):
        raise InputError("--state-dir", f"{state_dir} is not a plain directory")
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(state_dir)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise InputError("--state-dir", f"{state_dir} is not a directory owned by this user")
    return state_dir


def state_file(state_dir: Path) -> Path:
    return state_dir / "state.json"


def load(state_dir: Path) -> State | None:
    path = state_file(state_dir)
    if path.is_symlink():
        raise InputError("--state-dir", f"{path} is a symlink")
    if not os.path.lexists(path):
        return None
    # The one guarded reader: bounded size, UTF-8, nesting depth (no RecursionError).
    data = parse_json(read_text(path, "--state-dir"), "--state-dir", str(path))
    try:
        return State.from_json(data)
    except (ValueError, InputError) as exc:
        why = exc.message if isinstance(exc, InputError) else str(exc)
        raise InputError("--state-dir", f"{path} is not nixlayer's state ({why})") from None


def save(state_dir: Path, state: State | None) -> None:
    path = state_file(state_dir)
    if state is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    text = json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n"
    write_files_atomically({path: text})
    os.chmod(path, 0o600)


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[Path]:
    """One switch or restore at a time per runner."""
    d = _checked_dir(state_dir)
    with target_lock(d, "switch"):
        yield d
