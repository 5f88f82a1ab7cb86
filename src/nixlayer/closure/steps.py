"""The three steps as Windmill calls them: plain JSON in, plain JSON out.

Config dirs live under $WORKERS_DIR/$WORKER_INDEX/nix (seed 004), so the flow
pins its steps to one worker (`same_worker: true`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def render_step(fields: dict[str, Any]) -> dict[str, Any]:
    from nixlayer.closure.render import render_config
    from nixlayer.closure.specfile import validate_spec

    spec = validate_spec({k: v for k, v in fields.items() if v is not None})
    result = render_config(spec)
    # Both files go to the job log, as the seed's render step does.
    for path, text in result.files().items():
        print(f"--- {path}\n{text}", flush=True)
    return {**result.to_json(), "system": spec.system, "configuration": result.configuration}


def lock_step(config_dir: str, update_library: bool = False) -> dict[str, Any]:
    from nixlayer.closure.lock import lock_config

    return lock_config(config_dir, update_library=update_library).to_json()


def build_step(
    config_dir: str, configuration: str | None = None, system: str | None = None
) -> dict[str, Any]:
    from nixlayer.closure.build import build_closure

    return build_closure(config_dir, configuration=configuration, system=system).closure()


# kdevops-ng's f/nix/build, served by nixlayer: its tree's conventions.


def _workbench() -> Path:
    if os.environ.get("WORKBENCH_DIR"):
        return Path(os.environ["WORKBENCH_DIR"])
    return Path(os.environ["WORKERS_DIR"]).parent


def kdevops_library() -> str:
    """The vendored nixos-flake of a kdevops-ng tree (its `vendor_dir`)."""
    if os.environ.get("NIXLAYER_LIBRARY"):
        return os.environ["NIXLAYER_LIBRARY"]
    vendor = os.environ.get("VENDOR_DIR") or str(_workbench().parent / "vendor")
    return str(Path(vendor) / "nixos-flake")


def kdevops_managed_key() -> str | None:
    """The kdevops-managed VM key, trusted in every guest as kdevops-ng does."""
    system = Path(os.environ.get("SYSTEM_DIR") or _workbench() / "system")
    pub = system / "ssh" / "id_ed25519.pub"
    return pub.read_text().strip() if pub.is_file() else None


def kdevops_render_step(fields: dict[str, Any]) -> dict[str, Any]:
    """render_step with kdevops-ng's form conventions: the blank rows its form adds
    to lists are dropped, an unset vm_name is `nixos`, a blank home_dir is the
    default one, and the library and managed key come from the tree."""
    data = dict(fields)
    data["vm_name"] = data.get("vm_name") or "nixos"
    for key in ("profiles", "test_suites", "ssh_keys"):
        if data.get(key) is not None:
            data[key] = [v for v in data[key] if isinstance(v, str) and v.strip()]
    if data.get("overrides") is not None:
        data["overrides"] = [o for o in data["overrides"] if o]
    if data.get("shares") is not None:
        data["shares"] = {m: s for m, s in data["shares"].items() if m and s and s.get("tag")}
    if not (data.get("home_dir") or "").strip():
        data["home_dir"] = None
    data["library"] = data.get("library") or kdevops_library()
    managed = kdevops_managed_key()
    if managed:
        keys = data.get("ssh_keys") or []
        data["ssh_keys"] = [managed, *(k for k in keys if k != managed)]
    return render_step(data)
