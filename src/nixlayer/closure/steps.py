"""The three steps as Windmill calls them: plain JSON in, plain JSON out.

Config dirs live under $WORKERS_DIR/$WORKER_INDEX/nix (seed 004), so the flow
pins its steps to one worker (`same_worker: true`).
"""

from __future__ import annotations

from typing import Any


def render_step(fields: dict[str, Any]) -> dict[str, Any]:
    from nixlayer.closure.render import render_config
    from nixlayer.closure.specfile import validate_spec

    spec = validate_spec({k: v for k, v in fields.items() if v is not None})
    result = render_config(spec)
    return {
        **result.to_json(),
        "system": spec.system,
        "configuration": result.configuration,
        "files": {
            str(result.flake_nix): result.flake_text,
            str(result.default_nix): result.default_text,
        },
    }


def lock_step(config_dir: str, update_lock: bool = False) -> dict[str, Any]:
    from nixlayer.closure.lock import lock_config

    return lock_config(config_dir, update_library=update_lock).to_json()


def build_step(config_dir: str, system: str | None = None) -> dict[str, Any]:
    from nixlayer.closure.build import build_closure

    return build_closure(config_dir, system=system).closure()
