"""The one --json envelope: on success and failure, valid against its published schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from tests.helpers import cli


def _schema() -> dict[str, object]:
    proc = cli("schema", "envelope")
    assert proc.returncode == 0, proc.stderr
    schema: dict[str, object] = json.loads(proc.stdout)
    return schema


def test_bad_input_prints_a_failure_envelope_naming_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "vm.yaml"
    spec.write_text("vm_name: 'bad name'\n")
    proc = cli("render", str(spec), "--root", str(tmp_path / "root"), "--json")
    assert proc.returncode == 2
    env = json.loads(proc.stdout)
    jsonschema.validate(env, _schema())
    assert env["ok"] is False and env["exit_code"] == 2 and env["result"] is None
    assert env["error"]["kind"] == "input" and env["error"]["field"] == "vm_name"
    assert env["command"] == "render"
    assert not (tmp_path / "root").exists()


def test_a_nested_command_is_named_whole(tmp_path: Path) -> None:
    proc = cli("runner-store", "status", "--config", str(tmp_path / "missing.toml"), "--json")
    assert proc.returncode == 2
    env = json.loads(proc.stdout)
    jsonschema.validate(env, _schema())
    assert env["command"] == "runner-store status" and env["error"]["kind"] == "input"
