"""`nixlayer windmill export`, checked with Windmill's own tools: its Python parser
and `wmill generate-metadata` agree with every schema, `wmill lint --locks-required`
passes; the kdevops-ng layout has kdevops-ng's published input shape; the scripts
run as plain Python against the stand-in library."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from tests.fleet.windmill_tools import ensure_windmill_cli, fake_backend, parse_python, wmill
from tests.helpers import REPO, StandIn, cli, ssh_key

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
JSON_TYPES = {"bool": "boolean", "int": "integer", "float": "number"}


@pytest.fixture(scope="module")
def windmill_cli() -> None:
    ensure_windmill_cli()


def _export(tmp_path: Path, *args: str) -> Path:
    proc = cli("windmill", "export", str(tmp_path / "ws"), "-q", *args)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "ws"


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    return _export(tmp_path) / "f" / "nixlayer"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _typ(t: Any) -> dict[str, Any]:
    """The JSON type Windmill gives a parsed argument type (its parse-schema rules)."""
    if isinstance(t, str):
        return {"type": JSON_TYPES[t]}
    if "str" in t:
        return {"type": "string", "enum": t["str"]} if t["str"] else {"type": "string"}
    if "object" in t:
        return {"type": "object"}
    if "list" in t:
        return {"type": "array", "items": _typ(t["list"])}
    raise AssertionError(f"unexpected parsed type {t}")


def test_flow_is_openflow(exported: Path) -> None:
    flow = yaml.safe_load((exported / "build.flow/flow.yaml").read_text())
    jsonschema.validate(flow, OPENFLOW)
    value = flow["value"]
    assert value["same_worker"] is True
    assert [m["id"] for m in value["modules"]] == list(STEPS)
    assert [m["value"]["path"] for m in value["modules"]] == [f"f/nixlayer/{s}" for s in STEPS]
    assert [m["timeout"]["value"] for m in value["modules"]] == [120, 300, 3600]
    schema = flow["schema"]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["vm_name"]
    assert "update_library" in schema["properties"] and "$ref" not in str(schema)
    # Every input has a type (no bare anyOf: Windmill's form would fall back to raw JSON).
    assert all("type" in p and "anyOf" not in p for p in schema["properties"].values())
    assert schema["properties"]["system"]["enum"] == ["x86_64-linux", "aarch64-linux"]
    jsonschema.validate(
        {"vm_name": "vm", "profiles": ["devel"], "shares": {"/m": {"tag": "t"}}}, schema
    )
    # build_closure gets what render decided, not defaults.
    build = value["modules"][2]["value"]["input_transforms"]
    assert build["configuration"]["expr"] == "results.render_config.configuration"
    assert build["system"]["expr"] == "results.render_config.system"


@pytest.mark.parametrize("layout", ["nixlayer", "kdevops-ng"])
def test_windmill_parser_agrees_with_every_schema(
    windmill_cli: None, tmp_path: Path, layout: str
) -> None:
    """Names, order, required, defaults and types: what Windmill's parser reads
    from `main` is what the .script.yaml says."""
    ws = _export(tmp_path, "--layout", layout)
    folder = ws / ("f/nixlayer" if layout == "nixlayer" else "f/nix")
    sigs = parse_python(*(folder / f"{s}.py" for s in STEPS))
    for step, sig in zip(STEPS, sigs, strict=True):
        schema = yaml.safe_load((folder / f"{step}.script.yaml").read_text())["schema"]
        args = sig["args"]
        assert [a["name"] for a in args] == schema["order"] == list(schema["properties"])
        assert [a["name"] for a in args if not a["has_default"]] == schema["required"]
        for a in args:
            prop = schema["properties"][a["name"]]
            assert prop.get("default") == a["default"], a["name"]
            want = _typ(a["typ"])
            got = {k: prop[k] for k in want}
            if "items" in want:
                got["items"] = {k: prop["items"].get(k) for k in want["items"]}
            assert got == want, a["name"]


@pytest.mark.parametrize("layout", ["nixlayer", "kdevops-ng"])
def test_wmill_generate_metadata_rewrites_nothing_and_lint_passes(
    windmill_cli: None, tmp_path: Path, layout: str
) -> None:
    ws = _export(tmp_path, "--layout", layout)
    before = {p: p.read_text() for p in ws.rglob("*") if p.is_file()}
    home = tmp_path / "home"
    home.mkdir()
    with fake_backend() as url:
        proc = wmill(
            "generate-metadata",
            "--schema-only",
            "--yes",
            "--base-url",
            url,
            "--token",
            "t",
            "--workspace",
            "w",
            cwd=ws,
            home=home,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = {p: p.read_text() for p in ws.rglob("*") if p.is_file()}
    assert set(before) <= set(after)
    for path, text in before.items():
        if path.suffix == ".yaml":
            assert yaml.safe_load(after[path]) == yaml.safe_load(text), path
        else:
            assert after[path] == text, path
    lint = wmill("lint", "--locks-required", "--fail-on-warn", ".", cwd=ws, home=home)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Lint passed" in lint.stdout + lint.stderr


def test_lint_fails_without_locks(windmill_cli: None, tmp_path: Path) -> None:
    """The lint check can fail: the same export without its lock files does."""
    ws = _export(tmp_path)
    for lock in ws.rglob("*.script.lock"):
        lock.unlink()
    home = tmp_path / "home"
    home.mkdir()
    lint = wmill("lint", "--locks-required", ".", cwd=ws, home=home)
    assert lint.returncode != 0 and "Missing lock" in lint.stdout + lint.stderr


# kdevops-ng's published f/nix/build input shape (dagomez137/kdevops-ng,
# f/nix/build.flow/flow.yaml), as its bring-up (f/qsu/bringup) calls it:
# group -> [(field, JSON type, default)] in form order, and the required fields.
KDEVOPS_SHAPE: dict[str, tuple[list[tuple[str, str, Any]], list[str]]] = {
    "guest": (
        [
            ("vm_name", "string", "nixos"),
            ("user_name", "string", "kdevops"),
            ("ssh_keys", "array", []),
            ("shares", "object", {}),
            ("home", "boolean", True),
            ("home_dir", "string", ""),
        ],
        ["vm_name"],
    ),
    "closure": (
        [
            ("profiles", "array", ["devel", "build-tools", "monitoring"]),
            (
                "test_suites",
                "array",
                ["blktests", "fstests", "gitr", "ltp", "mmtests", "pynfs", "selftests", "sysbench"],
            ),
            ("overrides", "array", []),
        ],
        [],
    ),
    "lock": ([("update_lock", "boolean", False)], []),
}


def test_kdevops_layout_drops_into_kdevops_ng(tmp_path: Path) -> None:
    ws = _export(tmp_path, "--layout", "kdevops-ng")
    flow = yaml.safe_load((ws / "f/nix/build.flow/flow.yaml").read_text())
    jsonschema.validate(flow, OPENFLOW)
    schema = flow["schema"]
    assert schema["order"] == list(KDEVOPS_SHAPE) == list(schema["properties"])
    assert schema["required"] == []
    for group, (fields, required) in KDEVOPS_SHAPE.items():
        g = schema["properties"][group]
        assert (g["type"], g["default"]) == ("object", {})
        assert g["order"] == [f for f, _, _ in fields] == list(g["properties"])
        assert g.get("required", []) == required
        for name, kind, default in fields:
            assert (g["properties"][name]["type"], g["properties"][name]["default"]) == (
                kind,
                default,
            ), name
    modules = flow["value"]["modules"]
    assert [m["value"]["path"] for m in modules] == [f"f/nix/{s}" for s in STEPS]
    render = modules[0]["value"]["input_transforms"]
    assert render["vm_name"]["expr"] == "flow_input.guest?.vm_name"
    assert render["test_suites"]["expr"] == "flow_input.closure?.test_suites"
    assert modules[1]["value"]["input_transforms"]["update_library"]["expr"] == (
        "flow_input.lock?.update_lock"
    )
    # The bring-up's own call validates against the drop-in's schema.
    jsonschema.validate(
        {
            "guest": {"vm_name": "vm1", "home_dir": "/home/op", "ssh_keys": []},
            "closure": {"profiles": ["devel"], "test_suites": [], "overrides": []},
            "lock": {"update_lock": False},
        },
        schema,
    )


def test_export_stays_inside_dir(tmp_path: Path) -> None:
    for folder in ("../../x", "/abs", "f/../../x", "f/a b", "f"):
        proc = cli("windmill", "export", str(tmp_path / "ws"), "--folder", folder)
        assert proc.returncode == 2 and "--folder:" in proc.stderr, (folder, proc.stderr)
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "ws2").mkdir()
    (tmp_path / "ws2" / "f").symlink_to(outside)
    proc = cli("windmill", "export", str(tmp_path / "ws2"))
    assert proc.returncode == 2 and "symlink" in proc.stderr
    assert list(outside.iterdir()) == [] and not (tmp_path / "x").exists()


def _pip(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_worker_gets_nixlayer_from_the_wheel_the_lock_names(tmp_path: Path) -> None:
    """The lock's nixlayer line is a wheel path a worker can install; building that
    wheel from this tree and installing it from the line works."""
    ws = _export(tmp_path, "--requirement", f"nixlayer @ file://{tmp_path}/wheels/WHEEL")
    lock = (ws / "f/nixlayer/render_config.script.lock").read_text().splitlines()
    assert lock[0].startswith("# py: 3.")
    assert lock[1] == f"nixlayer @ file://{tmp_path}/wheels/WHEEL"
    assert any(ln.startswith("pydantic==") for ln in lock)
    assert (
        (ws / "f/nixlayer/render_config.py")
        .read_text()
        .startswith(f"# requirements:\n# {lock[1]}\n")
    )
    default = _export(tmp_path / "d")
    line = (default / "f/nixlayer/lock_config.script.lock").read_text().splitlines()[1]
    assert line.startswith("nixlayer @ file:///opt/nixlayer/nixlayer-")
    wheel_name = line.rsplit("/", 1)[1]
    wheels = tmp_path / "wheels"
    _pip("wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO))
    assert [p.name for p in wheels.iterdir()] == [wheel_name]  # the name the lock expects
    target = tmp_path / "site"
    req = line.replace("file:///opt/nixlayer", f"file://{wheels}")
    _pip("install", "-q", "--no-deps", "--target", str(target), req)
    assert (target / "nixlayer" / "closure" / "steps.py").is_file()
    shutil.rmtree(target)


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
    assert (r["configuration"], r["system"]) == ("vm", "x86_64-linux")
    assert "--- " in capsys.readouterr().out  # both files shown in the job log
    lk = lock.main(config_dir=r["config_dir"])
    assert Path(lk["lock_file"]).is_file()
    out = build.main(
        config_dir=r["config_dir"], configuration=r["configuration"], system=r["system"]
    )
    assert set(out) == {"toplevel", "init", "initrd", "config_dir"}
    assert Path(out["toplevel"], "boot.json").is_file()
    # A flow wired to another VM's values is refused, not built.
    from nixlayer.errors import InputError

    with pytest.raises(InputError, match="configuration: 'other' differs"):
        build.main(config_dir=r["config_dir"], configuration="other")


@pytest.mark.nix
def test_kdevops_render_step_uses_the_tree(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kdevops-ng tree: the vendored library, the managed VM key, and the blank
    rows its form sends are dropped."""
    workbench = tmp_path / "wb"
    (workbench / "workers").mkdir(parents=True)
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "nixos-flake").symlink_to(stand_in.library)
    (workbench / "system" / "ssh").mkdir(parents=True)
    managed = ssh_key("kdevops-managed", seed=b"m")
    (workbench / "system/ssh/id_ed25519.pub").write_text(managed + "\n")
    monkeypatch.setenv("WORKERS_DIR", str(workbench / "workers"))
    monkeypatch.setenv("WORKER_INDEX", "0")
    ws = _export(tmp_path, "--layout", "kdevops-ng")
    render = _load(ws / "f/nix/render_config.py")
    r = render.main(
        vm_name="k1",
        profiles=["devel", ""],
        test_suites=["fstests"],
        ssh_keys=[""],
        overrides=[{}],
        shares={"": {}},
        home=True,
        home_dir="/home/op",
    )
    default = Path(r["config_dir"], "default.nix").read_text()
    assert managed in default and '"/home/op"' in default and "/var/lib/xfstests" in default
    flake = Path(r["config_dir"], "flake.nix").read_text()
    assert f'"path:{tmp_path}/vendor/nixos-flake"' in flake
