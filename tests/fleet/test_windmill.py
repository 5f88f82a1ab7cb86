"""`nixlayer windmill export`: valid OpenFlow, scripts whose `main` matches their
schema, and scripts that run as plain Python against the stand-in library."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers import StandIn, cli, ssh_key

# The required shape of OpenFlow as published in windmill-labs/windmill's
# openflow.openapi.yaml (OpenFlow, FlowValue, FlowModule, PathScript,
# InputTransform, Retry), restricted to what the export uses.
TRANSFORM = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": ["static"]}, "value": {}},
        },
        {
            "type": "object",
            "required": ["expr", "type"],
            "properties": {"type": {"enum": ["javascript"]}, "expr": {"type": "string"}},
        },
    ]
}
OPENFLOW = {
    "type": "object",
    "required": ["summary", "value"],
    "properties": {
        "summary": {"type": "string"},
        "description": {"type": "string"},
        "schema": {"type": "object"},
        "value": {
            "type": "object",
            "required": ["modules"],
            "properties": {
                "same_worker": {"type": "boolean"},
                "modules": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["value", "id"],
                        "properties": {
                            "id": {"type": "string"},
                            "summary": {"type": "string"},
                            "timeout": TRANSFORM,
                            "retry": {
                                "type": "object",
                                "properties": {
                                    "constant": {
                                        "type": "object",
                                        "properties": {
                                            "attempts": {"type": "integer"},
                                            "seconds": {"type": "integer"},
                                        },
                                    }
                                },
                            },
                            "value": {
                                "type": "object",
                                "required": ["type", "path", "input_transforms"],
                                "properties": {
                                    "type": {"enum": ["script"]},
                                    "path": {"type": "string"},
                                    "input_transforms": {
                                        "type": "object",
                                        "additionalProperties": TRANSFORM,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
STEPS = ("render_config", "lock_config", "build_closure")


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    proc = cli("windmill", "export", str(tmp_path / "ws"), "-q")
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "ws" / "f" / "nixlayer"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flow_is_openflow(exported: Path) -> None:
    flow = yaml.safe_load((exported / "build.flow/flow.yaml").read_text())
    jsonschema.validate(flow, OPENFLOW)
    value = flow["value"]
    assert value["same_worker"] is True
    assert [m["id"] for m in value["modules"]] == list(STEPS)
    assert [m["value"]["path"] for m in value["modules"]] == [f"f/nixlayer/{s}" for s in STEPS]
    assert [m["timeout"]["value"] for m in value["modules"]] == [120, 300, 3600]
    assert [m.get("retry") for m in value["modules"]][1:] == [
        {"constant": {"attempts": 2, "seconds": 5}},
        {"constant": {"attempts": 2, "seconds": 10}},
    ]
    schema = flow["schema"]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["vm_name"]
    assert "update_lock" in schema["properties"] and "$ref" not in str(schema)
    jsonschema.validate(
        {"vm_name": "vm", "profiles": ["devel"], "shares": {"/m": {"tag": "t"}}}, schema
    )


@pytest.mark.parametrize("step", STEPS)
def test_main_signature_matches_schema(exported: Path, step: str) -> None:
    meta = yaml.safe_load((exported / f"{step}.script.yaml").read_text())
    schema: dict[str, Any] = meta["schema"]
    jsonschema.Draft202012Validator.check_schema(schema)
    params = inspect.signature(_load(exported / f"{step}.py").main).parameters
    assert list(params) == schema["order"] == list(schema["properties"])
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    assert required == schema["required"]
    for name, p in params.items():
        if p.default is inspect.Parameter.empty:
            continue
        default = schema["properties"][name].get("default")
        # Scalars carry the schema's default; None stands for a list/object default.
        assert p.default == default or (
            p.default is None and not isinstance(default, str | bool | int)
        )


@pytest.mark.nix
def test_scripts_run_as_plain_python(
    exported: Path,
    stand_in: StandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WORKERS_DIR", str(tmp_path / "workers"))
    monkeypatch.setenv("WORKER_INDEX", "0")
    render, lock, build = (_load(exported / f"{s}.py") for s in STEPS)
    r = render.main(
        vm_name="wm-vm",
        library=str(stand_in.library),
        profiles=["devel"],
        test_suites=[],
        ssh_keys=[ssh_key("wm")],
    )
    assert r["config_dir"] == str(tmp_path / "workers/0/nix/wm-vm")
    assert "--- " in capsys.readouterr().out  # both files shown in the job log
    lk = lock.main(config_dir=r["config_dir"])
    assert Path(lk["lock_file"]).is_file()
    out = build.main(config_dir=r["config_dir"], system=r["system"])
    assert set(out) == {"toplevel", "init", "initrd", "config_dir"}
    assert Path(out["toplevel"], "boot.json").is_file()
