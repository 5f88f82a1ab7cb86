"""A fleet: many VM specs with shared defaults, from one file or a directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixlayer.closure.spec import VMSpec
from nixlayer.errors import InputError

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULTS_NAMES = ("defaults", "_defaults")


@dataclass(frozen=True)
class FleetEntry:
    """One VM of a fleet: its spec, or why it is invalid (that VM alone fails)."""

    name: str
    spec: VMSpec | None
    error: str | None = None


def shown(text: str) -> str:
    """`text` with its control characters escaped (a name from a fleet file's key or a
    file name is reported in the table, the progress and the log: a newline or ESC
    there must neither split the line nor drive the terminal). A valid VM name is
    unchanged; an escaped invalid one stays invalid."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _entry(name: str, data: Any, defaults: dict[str, Any], where: str, base: Path) -> FleetEntry:
    from nixlayer.closure.specfile import resolve_relative, validate_spec

    label, where = shown(name), shown(where)
    if not isinstance(data, dict):
        return FleetEntry(label, None, f"{where}: expected a mapping of spec fields")
    if "vm_name" in data and data["vm_name"] != name:
        differs = f"vm_name {data['vm_name']!r} differs from {name!r}"
        return FleetEntry(label, None, f"{where}: {differs}")
    own = resolve_relative(data, base)
    try:
        return FleetEntry(name, validate_spec({**defaults, **own, "vm_name": name}))
    except InputError as exc:
        return FleetEntry(label, None, f"{where}: {shown(str(exc))}")


def _read(path: Path) -> Any:
    from nixlayer.closure.specfile import parse_data
    from nixlayer.safeload import read_text

    return parse_data(read_text(path, "FLEET"), str(path), field="FLEET")


def load_fleet(path: Path | str) -> list[FleetEntry]:
    """A file `{defaults: {...}, vms: [{vm_name: ...}, ...] | {name: {...}}}`, or a
    directory with one spec file per VM (name = file name) and an optional
    defaults.yaml, as seed 001 discovers machines. A spec file that cannot be read
    or parsed makes its VM fail, not the fleet."""
    from nixlayer.closure.specfile import resolve_relative

    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix in SPEC_SUFFIXES and f.is_file())
        defaults: dict[str, Any] = {}
        for f in files:
            if f.stem in DEFAULTS_NAMES:
                data = _read(f)
                if not isinstance(data, dict):
                    raise InputError("defaults", f"{f}: expected a mapping of spec fields")
                defaults = resolve_relative(data, p.absolute())
        entries = []
        for f in files:
            if f.stem in DEFAULTS_NAMES:
                continue
            try:
                data = _read(f)
            except InputError as exc:
                entries.append(FleetEntry(shown(f.stem), None, shown(exc.message)))
                continue
            entries.append(_entry(f.stem, data, defaults, f.name, p.absolute()))
    else:
        data = _read(p)
        if not isinstance(data, dict):
            raise InputError("FLEET", f"{p}: expected a mapping with `vms`")
        base = p.absolute().parent
        raw_defaults = data.get("defaults") or {}
        if not isinstance(raw_defaults, dict):
            raise InputError("defaults", "expected a mapping of spec fields")
        defaults = resolve_relative(raw_defaults, base)
        vms = data.get("vms")
        if isinstance(vms, dict):
            entries = [_entry(str(n), v, defaults, f"vms.{n}", base) for n, v in vms.items()]
        elif isinstance(vms, list):
            entries = []
            for i, v in enumerate(vms):
                name = v.get("vm_name") if isinstance(v, dict) else None
                if not isinstance(name, str):
                    entries.append(FleetEntry(f"#{i}", None, f"vms[{i}]: no vm_name"))
                else:
                    entries.append(_entry(name, v, defaults, f"vms[{i}]", base))
        else:
            raise InputError(
                "vms", f"{p}: expected `vms` as a list of specs or a mapping name -> spec"
            )
    if not entries:
        raise InputError("FLEET", f"{p} holds no VM specs")
    names = [e.name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError("FLEET", f"VM {dupes[0]!r} appears twice")
    return entries
