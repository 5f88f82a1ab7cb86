"""The plan document: snapshots of the markdown comment and the JSON, the JSON checked
against the published schema (`nixlayer schema plan`) for NixOS, system-manager and
nix-darwin plans."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nixlayer.planner.closure_diff import diff_closures
from nixlayer.planner.document import plan_document
from nixlayer.planner.markdown import render_markdown
from nixlayer.planner.plan import plan_switch
from nixlayer.planner.snapshot import ActiveUnit
from nixlayer.planner.users import UserInputs
from tests.helpers import cli, json_result
from tests.planner.scenarios import svc, target

SNAPSHOTS = Path(__file__).parent / "snapshots"
H = "0" * 31


def store(name: str, n: int) -> str:
    return f"/nix/store/{H}{n}-{name}"


def tree(root: Path, units: dict[str, str], user: dict[str, str] | None = None) -> Path:
    for sub, files in (("etc/systemd/system", units), ("etc/systemd/user", user or {})):
        d = root / sub
        d.mkdir(parents=True)
        for name, text in files.items():
            (d / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    proc = cli("schema", "plan")
    assert proc.returncode == 0, proc.stderr
    published: dict[str, Any] = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(published)
    return published


def document(tmp_path: Path) -> dict[str, Any]:
    old = tree(
        tmp_path / "old",
        {
            "multi-user.target": target(),
            "sshd.service": svc("/bin/sshd", "X-StopIfChanged=false"),
            "web.service": svc("/bin/web"),
            "db.service": svc("/bin/db", "X-RestartIfChanged=false"),
            "cron.service": svc(unit="X-Reload-Triggers=/nix/store/t1"),
            "old|<b>.service": svc(),
        },
        {"agent.service": svc("/bin/agent")},
    )
    new = tree(
        tmp_path / "new",
        {
            "multi-user.target": target(),
            "sshd.service": svc("/bin/sshd2", "X-StopIfChanged=false"),
            "web.service": svc("/bin/web2"),
            "db.service": svc("/bin/db2", "X-RestartIfChanged=false"),
            "cron.service": svc(unit="X-Reload-Triggers=/nix/store/t2"),
        },
        {"agent.service": svc("/bin/agent2")},
    )
    active = {
        u: ActiveUnit(u, "active", "running")
        for u in ("multi-user.target", "sshd.service", "web.service", "db.service")
    }
    active["cron.service"] = ActiveUnit("cron.service", "active", "running")
    active["old|<b>.service"] = ActiveUnit("old|<b>.service", "active", "running")
    user = UserInputs("alice", {"agent.service": ActiveUnit("agent.service", "active", "x")})
    plan = plan_switch(
        new, from_root=old, snapshot=active, runtime_dir=tmp_path / "run", users=[user]
    )
    closure = diff_closures(
        {store("hello-1.0", 1): 1000, store("gdb-12", 2): 5000, store("vim-9.1", 3): 2048},
        {store("hello-2.0", 4): 1100, store("git-2.44", 5): 9000, store("vim-9.1", 6): 4096},
    )
    doc = plan_document(
        plan,
        from_system=store("nixos-system-vm-26.05", 7),
        to_system=store("nixos-system-vm-26.05", 8),
        closure=closure,
        protected=frozenset({"sshd.service", "db.service"}),
    )
    data = doc.to_json()
    return {"doc": doc, "json": data}


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("NIXLAYER_UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; NIXLAYER_UPDATE_SNAPSHOTS=1 rewrites it"


def test_markdown_snapshot(tmp_path: Path) -> None:
    md = render_markdown(document(tmp_path)["doc"])
    check_snapshot("plan.md", md)
    summary, _details = md.split("<details>", 1)
    assert "Protected units disturbed" in summary and "**Closure:**" in summary
    assert "<script" not in md and "old\\|&lt;b&gt;.service" in md  # escaped for the web page


def test_json_snapshot_validates(tmp_path: Path, schema: dict[str, Any]) -> None:
    data = document(tmp_path)["json"]
    check_snapshot("plan.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    jsonschema.validate(data, schema)


def test_schema_rejects_drift(tmp_path: Path, schema: dict[str, Any]) -> None:
    data = document(tmp_path)["json"]
    mutations: list[Callable[[Any], object]] = [
        lambda d: d["switch"].pop("decisions"),
        lambda d: d["switch"]["decisions"][0].update(why="renamed"),
        lambda d: d.update(version=2),
        lambda d: d["switch"].update(action="launchd"),
        lambda d: d["closure"]["added"][0].pop("new_size"),
    ]
    for mutate in mutations:
        broken = json.loads(json.dumps(data))
        mutate(broken)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def run_plan(*args: str) -> Any:
    proc = cli("plan", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json_result(proc)


def test_every_kind_validates(tmp_path: Path, schema: dict[str, Any]) -> None:
    # NixOS
    old = tree(tmp_path / "n-old", {"a.service": svc("/bin/a")})
    new = tree(tmp_path / "n-new", {"a.service": svc("/bin/b")})
    units = tmp_path / "u.json"
    units.write_text('[{"unit": "a.service", "active": "active", "sub": "running"}]')
    nixos = run_plan("--from", str(old), "--to", str(new), "--units", str(units),
                     "--runtime-dir", str(tmp_path / "run"))  # fmt: skip
    # system-manager
    unit_a, unit_b = tmp_path / "a.service", tmp_path / "b.service"
    unit_a.write_text(svc("/bin/a"))
    unit_b.write_text(svc("/bin/b"))
    for side, path in (("sm-old", unit_a), ("sm-new", unit_b)):
        (tmp_path / side / "services").mkdir(parents=True)
        (tmp_path / side / "services/services.json").write_text(
            json.dumps({"a.service": {"storePath": str(path)}})
        )
    sm = run_plan("--from", str(tmp_path / "sm-old"), "--to", str(tmp_path / "sm-new"))
    # nix-darwin
    for side, body in (("d-old", b"<plist>1</plist>"), ("d-new", b"<plist>2</plist>")):
        (tmp_path / side / "Library/LaunchDaemons").mkdir(parents=True)
        (tmp_path / side / "Library/LaunchDaemons/org.nixos.x.plist").write_bytes(body)
    darwin = run_plan("--from", str(tmp_path / "d-old"), "--to", str(tmp_path / "d-new"))
    for doc, kind in ((nixos, "nixos"), (sm, "system-manager"), (darwin, "nix-darwin")):
        jsonschema.validate(doc, schema)
        assert doc["kind"] == doc["switch"]["kind"] == kind
    assert sm["switch"]["decisions"] == [
        {"unit": "a.service", "change": "restart", "reason": "its unit file changed: "
         "reload-or-restart"}
    ]  # fmt: skip
    assert darwin["switch"]["reload"] == ["org.nixos.x"]


def test_dry_activate_is_told_apart(tmp_path: Path) -> None:
    old = tree(tmp_path / "old", {"a.service": svc("/bin/a")})
    new = tree(tmp_path / "new", {"a.service": svc("/bin/b")})
    units = tmp_path / "u.json"
    units.write_text('[{"unit": "a.service", "active": "active", "sub": "running"}]')
    args = ["plan", "--from", str(old), "--to", str(new), "--units", str(units)]
    args += ["--runtime-dir", str(tmp_path / "run")]
    real, dry = cli(*args), cli(*args, "--action", "dry-activate")
    assert real.returncode == dry.returncode == 0
    assert dry.stdout.startswith("dry-activate: what would happen")
    assert "would stop a.service" in dry.stdout and "would stop" not in real.stdout
    assert real.stdout.startswith("switch (nixos)")
