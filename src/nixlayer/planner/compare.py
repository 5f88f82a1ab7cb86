"""compare_units: is a changed unit equal, reload-class or restart-class? (upstream
`compare_units` in switch-to-configuration-ng's main.rs)"""

from __future__ import annotations

import enum

from nixlayer.planner.unitfile import Unit

IGNORED_UNIT_KEYS = frozenset(
    {
        "X-Reload-Triggers",
        "Description",
        "Documentation",
        "OnFailure",
        "OnSuccess",
        "OnFailureJobMode",
        "IgnoreOnIsolate",
        "StopWhenUnneeded",
        "RefuseManualStart",
        "RefuseManualStop",
        "AllowIsolate",
        "CollectMode",
        "SourcePath",
    }
)


class Change(enum.Enum):
    EQUAL = "equal"
    RELOAD = "reload"
    RESTART = "restart"


def compare_units(old: Unit, new: Unit) -> Change:
    """switch-to-configuration-ng's rules; any restart-class finding wins."""
    result = Change.EQUAL
    for section, old_keys in old.items():
        new_keys = new.get(section)
        if new_keys is None:
            if section == "Unit" and all(k in IGNORED_UNIT_KEYS for k in old_keys):
                continue
            if section == "Service" and set(old_keys) == {"ExecReload"}:
                continue
            return Change.RESTART
        for key, old_values in old_keys.items():
            new_values = new_keys.get(key)
            if new_values is None:
                if section == "Unit" and key in IGNORED_UNIT_KEYS:
                    continue
                if section == "Service" and key == "ExecReload":
                    continue
                return Change.RESTART
            if new_values == old_values:
                continue
            if section == "Unit" and key == "X-Reload-Triggers":
                result = Change.RELOAD
            elif section == "Unit" and key in IGNORED_UNIT_KEYS:
                continue
            elif (section == "Service" and key == "ExecReload") or (
                section == "Mount" and key == "Options"
            ):
                result = Change.RELOAD
            else:
                return Change.RESTART
        added = [k for k in new_keys if k not in old_keys]
        if added:
            if section == "Unit":
                for key in added:
                    if key == "X-Reload-Triggers":
                        result = Change.RELOAD
                    elif key not in IGNORED_UNIT_KEYS:
                        return Change.RESTART
            elif section == "Service" and added == ["ExecReload"]:
                result = Change.RELOAD
            else:
                return Change.RESTART
    new_sections = [s for s in new if s not in old]
    if new_sections:
        if new_sections == ["Unit"]:
            for key in new["Unit"]:
                if key == "X-Reload-Triggers":
                    result = Change.RELOAD
                elif key not in IGNORED_UNIT_KEYS:
                    return Change.RESTART
        elif new_sections == ["Service"] and set(new["Service"]) == {"ExecReload"}:
            result = Change.RELOAD
        else:
            return Change.RESTART
    return result


def changed_keys(old: Unit, new: Unit) -> list[str]:
    """`[Section] Key` for every key whose values differ, sorted (for reasons)."""
    return sorted(
        f"[{section}] {key}"
        for section in set(old) | set(new)
        for key in set(old.get(section, {})) | set(new.get(section, {}))
        if old.get(section, {}).get(key) != new.get(section, {}).get(key)
    )


def describe_change(old: Unit, new: Unit, limit: int = 3) -> str:
    keys = changed_keys(old, new)
    if not keys:
        return "its files changed"
    shown = ", ".join(keys[:limit]) + (
        f" and {len(keys) - limit} more" if len(keys) > limit else ""
    )
    return f"{shown} changed"
