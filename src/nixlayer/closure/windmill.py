"""Write a Windmill workspace fragment: one script per step (`.py` with a typed
`main`, `.script.yaml`, `.script.lock`) and an OpenFlow `flow.yaml` pinned to one
worker.

Each parameter is declared once (name, Python annotation, default, description),
from the VMSpec model where it is a spec field; `main`'s signature is printed from
it and the schema is what Windmill infers from that signature (its parser,
windmill-parser-wasm-py, and `wmill generate-metadata`), so Windmill's tools
rewrite nothing. The tests check that with Windmill's own tools.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nixlayer.closure.spec import VMSpec
from nixlayer.errors import InputError
from nixlayer.fsutil import write_files_atomically
from nixlayer.safeload import check_target_dir

RENDER_FIELDS = (
    "vm_name",
    "library",
    "user_name",
    "ssh_keys",
    "profiles",
    "test_suites",
    "shares",
    "home",
    "home_dir",
    "overrides",
    "system",
    "force_host_roles",
    "catalog",
)
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
FOLDER_RE = re.compile(r"^[fu]/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
STEPS = ("render_config", "lock_config", "build_closure")

OVERRIDE_ITEMS = {
    "type": "object",
    "properties": {
        "pkg": {"type": "string", "description": "nixpkgs attribute name, e.g. fio"},
        "src": {"type": "string", "description": "an absolute path or a git URL"},
        "ref": {"type": "string", "description": "git branch or tag (git sources only)"},
        "attrs": {
            "type": "object",
            "description": "extra string attributes for overrideAttrs, e.g. "
            '{"autoreconfPhase": "make configure"}',
        },
    },
    "required": ["pkg", "src"],
}


@dataclass(frozen=True)
class Param:
    name: str
    annotation: str  # as printed in `main`
    default: Any  # a Python literal; ignored when required
    required: bool
    description: str
    items: dict[str, Any] | None = None  # item schema of a list of objects

    def signature(self) -> str:
        if self.required:
            return f"    {self.name}: {self.annotation},"
        return f"    {self.name}: {self.annotation} = {self.default!r},"

    def schema(self) -> dict[str, Any]:
        """The property Windmill infers from the annotation (parse-schema.ts)."""
        base = self.annotation.removesuffix(" | None")
        prop: dict[str, Any]
        kinds: dict[str, dict[str, Any]] = {
            "str": {"type": "string", "originalType": "string"},
            "bool": {"type": "boolean"},
            "list[str]": {"type": "array", "items": {"type": "string"}, "originalType": "string[]"},
            "dict": {"type": "object", "properties": {}},
            "list[dict]": {
                "type": "array",
                "items": self.items or {"type": "object"},
                "originalType": "record[]",
            },
        }
        if base.startswith("Literal["):
            prop = {"type": "string", "enum": _literal_values(base), "originalType": "enum"}
        else:
            prop = kinds[base]
        return {
            **prop,
            "description": self.description,
            "default": None if self.required else self.default,
        }


def _literal_values(annotation: str) -> list[str]:
    return re.findall(r'"([^"]*)"', annotation)


def spec_param(name: str) -> Param:
    """A step parameter for a VMSpec field: its type, default and description."""
    schema = VMSpec.model_json_schema()
    prop = schema["properties"][name]
    options = prop.get("anyOf", [prop])
    main: dict[str, Any] = next((o for o in options if o.get("type") != "null"), {})
    if "$ref" in main:
        main = {"type": "object"}
    kind = main.get("type")
    if "enum" in main:
        ann = "Literal[" + ", ".join(f'"{v}"' for v in main["enum"]) + "]"
    elif kind == "array":
        ann = "list[str]" if main.get("items", {}).get("type") == "string" else "list[dict]"
    else:
        ann = {"string": "str", "boolean": "bool", "object": "dict"}.get(str(kind), "dict")
    default = prop.get("default")
    required = name in schema.get("required", [])
    if not isinstance(default, str | bool | int) or ann in ("list[str]", "list[dict]", "dict"):
        # Lists and objects default to None: "the spec's default" (its catalog's).
        default = None
    if default is None and not required and not ann.endswith("| None"):
        ann += " | None"
    return Param(
        name,
        ann,
        default,
        required,
        str(prop.get("description", "")),
        items=OVERRIDE_ITEMS if name == "overrides" else None,
    )


def render_params() -> list[Param]:
    params = [spec_param(n) for n in RENDER_FIELDS]
    return sorted(params, key=lambda p: not p.required)


CONFIG_DIR = Param("config_dir", "str", None, True, "the per-VM config directory (from render)")
LOCK_PARAMS = [
    CONFIG_DIR,
    Param("update_library", "bool", False, False, "re-pin the library, not only missing pins"),
]
BUILD_PARAMS = [
    CONFIG_DIR,
    Param(
        "configuration",
        "str | None",
        None,
        False,
        "nixosConfigurations name render chose (checked against its manifest)",
    ),
    Param(
        "system",
        spec_param("system").annotation + " | None",
        None,
        False,
        "the system render chose (checked against its manifest)",
    ),
]


def default_requirement() -> str:
    from nixlayer import __version__

    return f"nixlayer @ file:///opt/nixlayer/nixlayer-{__version__}-py3-none-any.whl"


def lock_text(requirement: str) -> str:
    """A Windmill Python lock: the interpreter line, nixlayer as the worker gets
    it, and the exact versions of its dependencies it was tested with."""
    from importlib import metadata

    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    todo = ["nixlayer"]
    while todo:
        dist = metadata.distribution(todo.pop())
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and "extra" in str(req.marker):
                continue
            name = req.name.lower().replace("_", "-")
            if name in pins:
                continue
            version = metadata.version(req.name)
            marker = f" ; {req.marker}" if req.marker is not None else ""
            pins[name] = f"{name}=={version}{marker}"
            todo.append(req.name)
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return "\n".join([f"# py: {py}", requirement, *sorted(pins.values())]) + "\n"


def script(
    summary: str, doc: str, params: list[Param], func: str, call: str, *, requirement: str
) -> str:
    literal = any("Literal[" in p.annotation for p in params)
    return (
        f"# requirements:\n# {requirement}\n"
        f'"""{summary}\n\n{doc}\n\nGenerated by `nixlayer windmill export`."""\n\n'
        + ("from typing import Literal\n\n" if literal else "")
        + f"from nixlayer.closure.steps import {func}\n\n\n"
        + "def main(\n"
        + "\n".join(p.signature() for p in params)
        + f"\n) -> dict:\n    return {call}\n"
    )


def script_yaml(summary: str, description: str, params: list[Param], lock_path: str) -> str:
    schema = {
        "$schema": JSON_SCHEMA,
        "type": "object",
        "order": [p.name for p in params],
        "properties": {p.name: p.schema() for p in params},
        "required": [p.name for p in params if p.required],
    }
    return yaml.safe_dump(
        {
            "summary": summary,
            "description": description,
            "lock": f"!inline {lock_path}",
            "kind": "script",
            "schema": schema,
        },
        sort_keys=False,
    )


def step_files(folder: str, requirement: str, render_func: str = "render_step") -> dict[str, str]:
    render = render_params()
    kwargs = ", ".join(f"{p.name}={p.name}" for p in render)
    steps = {
        "render_config": (
            "Render a per-VM NixOS configuration (flake.nix + default.nix)",
            "Writes $WORKERS_DIR/$WORKER_INDEX/nix/<vm_name>/ from the typed inputs and "
            "prints both files to the job log.",
            render,
            render_func,
            f"{render_func}(dict({kwargs}))",
        ),
        "lock_config": (
            "Lock the per-VM flake",
            "Re-pins source overrides on every run; the library with update_library.",
            LOCK_PARAMS,
            "lock_step",
            "lock_step(config_dir, update_library)",
        ),
        "build_closure": (
            "Build the toplevel and read its bootspec",
            "Returns {toplevel, init, initrd, config_dir}.",
            BUILD_PARAMS,
            "build_step",
            "build_step(config_dir, configuration, system)",
        ),
    }
    files: dict[str, str] = {}
    lock = lock_text(requirement)
    for name, (summary, doc, params, func, call) in steps.items():
        files[f"{name}.py"] = script(summary, doc, params, func, call, requirement=requirement)
        files[f"{name}.script.yaml"] = script_yaml(
            summary, doc, params, f"{folder}/{name}.script.lock"
        )
        files[f"{name}.script.lock"] = lock
    return files


def js(expr: str) -> dict[str, str]:
    return {"type": "javascript", "expr": expr}


def flow_modules(
    folder: str, render_inputs: dict[str, str], update_expr: str
) -> list[dict[str, Any]]:
    return [
        {
            "id": "render_config",
            "summary": "Render flake.nix + default.nix",
            "value": {
                "type": "script",
                "path": f"{folder}/render_config",
                "input_transforms": {n: js(e) for n, e in render_inputs.items()},
            },
            "timeout": {"type": "static", "value": 120},
        },
        {
            "id": "lock_config",
            "summary": "nix flake lock",
            "value": {
                "type": "script",
                "path": f"{folder}/lock_config",
                "input_transforms": {
                    "config_dir": js("results.render_config.config_dir"),
                    "update_library": js(update_expr),
                },
            },
            "retry": {"constant": {"attempts": 2, "seconds": 5}},
            "timeout": {"type": "static", "value": 300},
        },
        {
            "id": "build_closure",
            "summary": "nix build .#toplevel + read bootspec",
            "value": {
                "type": "script",
                "path": f"{folder}/build_closure",
                "input_transforms": {
                    "config_dir": js("results.render_config.config_dir"),
                    "configuration": js("results.render_config.configuration"),
                    "system": js("results.render_config.system"),
                },
            },
            "retry": {"constant": {"attempts": 2, "seconds": 10}},
            "timeout": {"type": "static", "value": 3600},
        },
    ]


def nixlayer_flow(folder: str) -> dict[str, Any]:
    params = [*render_params(), LOCK_PARAMS[1]]
    return {
        "summary": "Build a NixOS closure (nixlayer)",
        "description": "render_config -> lock_config -> build_closure on one worker; returns "
        "{toplevel, init, initrd, config_dir}.",
        "value": {
            "modules": flow_modules(
                folder,
                {p.name: f"flow_input.{p.name}" for p in render_params()},
                "flow_input.update_library",
            ),
            "same_worker": True,
        },
        "schema": {
            "$schema": JSON_SCHEMA,
            "type": "object",
            "order": [p.name for p in params],
            "properties": {p.name: p.schema() for p in params},
            "required": [p.name for p in params if p.required],
        },
    }


def build_files(
    folder: str = "f/nixlayer", requirement: str | None = None, layout: str = "nixlayer"
) -> dict[str, str]:
    req = requirement or default_requirement()
    if layout == "kdevops-ng":
        from nixlayer.closure.windmill_kdevops import kdevops_flow

        files = step_files(folder, req, render_func="kdevops_render_step")
        flow = kdevops_flow(folder)
    else:
        files = step_files(folder, req)
        flow = nixlayer_flow(folder)
    files["build.flow/flow.yaml"] = yaml.safe_dump(flow, sort_keys=False)
    return files


def check_folder(folder: str) -> str:
    if not FOLDER_RE.fullmatch(folder):
        raise InputError(
            "--folder", f"{folder!r} is not a Windmill folder (f/<name> or u/<user>, no ..)"
        )
    return folder


def _no_symlinks(base: Path, target: Path) -> None:
    """Every existing component between DIR and the file must be a real directory:
    a symlink placed there would carry the export out of DIR."""
    current = base
    for part in target.relative_to(base).parts[:-1]:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            raise InputError("DIR", f"{current} is a symlink or not a directory; refusing")


def export(
    directory: Path | str,
    folder: str | None = None,
    *,
    layout: str = "nixlayer",
    requirement: str | None = None,
) -> list[Path]:
    folder = check_folder(folder or ("f/nix" if layout == "kdevops-ng" else "f/nixlayer"))
    if requirement is not None and ("\n" in requirement or not requirement.strip()):
        raise InputError("--requirement", "must be one PEP 508 requirement line")
    base = check_target_dir(directory, "DIR")
    if base.is_symlink() or (base.exists() and not base.is_dir()):
        raise InputError("DIR", f"{base} is a symlink or not a directory; refusing")
    files = {
        base / folder / name: text
        for name, text in build_files(folder, requirement, layout).items()
    }
    for path in files:
        _no_symlinks(base, path)
    write_files_atomically(files)
    return sorted(files)
