"""compare_units: is a changed unit equal, reload-class or restart-class?"""

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
