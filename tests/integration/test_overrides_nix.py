"""Source overrides as kdevops-ng uses them, on real Nix and the stand-in library:
git sources with submodules, extra attributes, relative paths, and overrides that
would be silently ignored."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nixlayer.closure.build import build_closure
from nixlayer.closure.lock import lock_config
from nixlayer.closure.render import render_config
from nixlayer.closure.run import run_closure
from nixlayer.closure.spec import Override, VMSpec
from nixlayer.errors import InputError, NixError
from tests.helpers import StandIn, cli, json_result

pytestmark = pytest.mark.nix

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    # Local submodules: git >= 2.38.1 refuses file:// transport unless allowed.
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "protocol.file.allow",
    "GIT_CONFIG_VALUE_0": "always",
}


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def _repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "init")
    return path


def _record(toplevel: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(toplevel) / "configuration.json").read_text())
    return data


def _pkg(record: dict[str, Any], pname: str) -> dict[str, Any]:
    return next(p for p in record["systemPackages"] if p["pname"] == pname)


def test_git_override_is_fetched_with_submodules(stand_in: StandIn, tmp_path: Path) -> None:
    """bcc vendors libbpf as a submodule; libbpf-tools builds only when it is there."""
    libbpf = _repo(tmp_path / "libbpf", {"src/libbpf.h": "/* libbpf from the submodule */\n"})
    bcc = _repo(tmp_path / "bcc", {"libbpf-tools/README": "fork\n"})
    _git(bcc, "submodule", "add", "-q", f"file://{libbpf}", "src/cc/libbpf")
    _git(bcc, "commit", "-qm", "submodule")
    spec = VMSpec(
        vm_name="bpf",
        profiles=("devel",),
        test_suites=(),
        library=str(stand_in.library),
        overrides=(Override(pkg="libbpf-tools", src=f"git+file://{bcc}", ref="main"),),
    )
    built = run_closure(spec, root=tmp_path / "vms").build
    tools = _pkg(_record(built.toplevel), "libbpf-tools")
    header = Path(tools["path"]) / "share/libbpf-tools/libbpf.h"
    assert header.read_text() == "/* libbpf from the submodule */\n"


def test_override_attrs_build_xfsprogs_from_git(stand_in: StandIn, tmp_path: Path) -> None:
    """A git checkout of xfsprogs has no configure; `attrs` gives it the phase that
    makes one (kdevops-ng's `autoreconfPhase = "make configure"`)."""
    repo = _repo(
        tmp_path / "xfsprogs",
        {
            "Makefile": "configure:\n\tprintf '#!/bin/sh\\necho configured\\n' > configure\n",
            "include/install-sh": "#!/bin/sh\n",
            "VERSION": "6.99-git\n",
        },
    )
    base = VMSpec(
        vm_name="xfs",
        profiles=(),
        test_suites=("fstests",),
        library=str(stand_in.library),
        overrides=(Override(pkg="xfsprogs", src=f"git+file://{repo}"),),
    )
    with pytest.raises(NixError) as info:
        run_closure(base, root=tmp_path / "vms")
    assert "autoreconf" in info.value.stderr  # the tarball's recipe fails on a checkout
    fixed = base.model_copy(
        update={
            "overrides": (
                Override(
                    pkg="xfsprogs",
                    src=f"git+file://{repo}",
                    attrs={"autoreconfPhase": "make configure"},
                ),
            )
        }
    )
    built = run_closure(fixed, root=tmp_path / "vms").build
    xfs = _pkg(_record(built.toplevel), "xfsprogs")
    assert (Path(xfs["path"]) / "share/xfsprogs/VERSION").read_text() == "6.99-git\n"


def test_relative_src_resolves_against_the_spec_file(stand_in: StandIn, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    (specs / "fio").mkdir(parents=True)
    (specs / "fio" / "VERSION").write_text("rel\n")
    spec = specs / "vm.yaml"
    spec.write_text(
        f"vm_name: rel\nlibrary: {stand_in.library}\nprofiles: []\ntest_suites: [fstests]\n"
        "overrides: [{pkg: fio, src: ./fio}]\n"
    )
    # Run from elsewhere: ./fio means beside vm.yaml, not beside the caller.
    proc = cli("run", str(spec), "--root", str(tmp_path / "vms"), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    toplevel = json_result(proc)["toplevel"]
    fio = _pkg(_record(toplevel), "fio")
    assert (Path(fio["path"]) / "share" / fio["name"] / "VERSION").read_text() == "rel\n"
    flake = (tmp_path / "vms/rel/flake.nix").read_text()
    assert f'type = "path";\n      path = "{specs}/fio";' in flake


@pytest.mark.parametrize(
    ("pkg", "message"),
    [
        ("nosuchpkg", "'nosuchpkg' is not a package of this VM's package set"),
        ("hello", "'hello' is not in this VM's closure"),
    ],
)
def test_override_that_would_change_nothing_is_an_error(
    stand_in: StandIn, tmp_path: Path, pkg: str, message: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    spec = VMSpec(
        vm_name="vm",
        profiles=(),
        test_suites=("ltp",),
        library=str(stand_in.library),
        overrides=(Override(pkg=pkg, src=str(src)),),
    )
    r = render_config(spec, root=tmp_path / "vms")
    lock_config(r.config_dir)
    with pytest.raises(InputError) as info:
        build_closure(r.config_dir)
    assert info.value.field == "overrides[0].pkg" and message in str(info.value)
    assert not (tmp_path / "vms/.nixlayer/results/vm").exists()  # nothing was built


def test_interrupted_render_never_leaves_a_mixed_pair(
    stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill the render at each rename it makes: the config dir is always the old set
    or the new one, and nothing but the rendered files lands in the flake."""
    from nixlayer.closure import configdir

    root = tmp_path / "vms"
    old = render_config(
        VMSpec(vm_name="vm", profiles=("devel",), test_suites=(), library=str(stand_in.library)),
        root=root,
    )
    lock_config(old.config_dir)
    (old.config_dir / "notes.txt").write_text("mine\n")
    before = {p.name: p.read_bytes() for p in old.config_dir.iterdir()}
    new_spec = VMSpec(
        vm_name="vm", profiles=(), test_suites=("ltp",), library=str(stand_in.library)
    )
    for fallback in (False, True):
        if fallback:  # a kernel without RENAME_EXCHANGE: two renames
            monkeypatch.setattr(configdir, "_renameat2", lambda: None)
        for kill_at in (1, 2, 3, 4):
            calls = {"n": 0}
            real = os.rename

            def dying_rename(
                a: Any,
                b: Any,
                kill_at: int = kill_at,
                calls: dict[str, int] = calls,
                real: Any = real,
            ) -> None:
                calls["n"] += 1
                if calls["n"] == kill_at:
                    raise KeyboardInterrupt
                real(a, b)

            monkeypatch.setattr(os, "rename", dying_rename)
            with contextlib.suppress(KeyboardInterrupt):
                render_config(new_spec, root=root)
            monkeypatch.setattr(os, "rename", real)
            # Whatever happened, the next render repairs and completes.
            if (root / "vm").exists():
                texts = {p.name: p.read_bytes() for p in (root / "vm").iterdir()}
                pair = (texts["flake.nix"], texts["default.nix"], texts[".nixlayer-manifest.json"])
                old_pair = tuple(
                    before[n] for n in ("flake.nix", "default.nix", ".nixlayer-manifest.json")
                )
                assert pair == old_pair or b"testSuites.ltp" in texts["default.nix"]
            r = render_config(new_spec, root=root)
            names = {p.name for p in r.config_dir.iterdir()}
            assert names == {
                "flake.nix",
                "default.nix",
                ".nixlayer-manifest.json",
                "flake.lock",
                "notes.txt",
            }
            assert (r.config_dir / "notes.txt").read_text() == "mine\n"
            assert (r.config_dir / "flake.lock").read_bytes() == before["flake.lock"]
            assert list((root / ".nixlayer/staging").iterdir()) == []
            # Back to the old set for the next round.
            render_config(
                VMSpec(
                    vm_name="vm", profiles=("devel",), test_suites=(), library=str(stand_in.library)
                ),
                root=root,
            )
