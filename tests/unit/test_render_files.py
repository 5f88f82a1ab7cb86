from __future__ import annotations

import os
from pathlib import Path

import pytest

from nixlayer.closure.flake_nix import render_flake
from nixlayer.closure.library import resolve_library
from nixlayer.closure.module_nix import render_module
from nixlayer.closure.spec import Override, VMSpec, resolve_spec
from nixlayer.errors import InputError, LibraryError
from nixlayer.fsutil import write_files_atomically
from nixlayer.nix.flakeref import normalize_ref
from tests.helpers import FIXTURES

TEMPLATE = (FIXTURES / "nixos-flake/templates/imageless/flake.nix").read_text()


def _flake(
    template: str = TEMPLATE, system: str = "x86_64-linux", overrides: tuple[Override, ...] = ()
) -> str:
    return render_flake(
        template,
        origin="T",
        library_ref="path:/lib",
        library_input="nixos-flake",
        overrides=overrides,
        system=system,
    )


def test_template_is_rendered_near_verbatim() -> None:
    out = _flake()
    assert out == TEMPLATE.replace('"path:/path/to/nixos-flake"', '"path:/lib"')


def test_override_inputs_go_after_the_follows_line() -> None:
    out = _flake(
        overrides=(
            Override(pkg="fio", src="/src/fio"),
            Override(pkg="kmod", src="https://git.example/kmod.git", ref="main"),
        )
    )
    after = out.split('nixpkgs.follows = "nixos-flake/nixpkgs";\n', 1)[1]
    assert after.startswith(
        '\n    fio-src = {\n      type = "path";\n      path = "/src/fio";\n'
        '      flake = false;\n    };\n\n    kmod-src = {\n      type = "git";\n'
        '      url = "https://git.example/kmod.git";\n      ref = "main";\n'
        "      submodules = true;\n      flake = false;\n"
    )
    # A local checkout is copied whole; submodules are a git fetcher setting.
    assert "submodules" not in after.split("kmod-src")[0]


@pytest.mark.parametrize(
    "anchor", ['"path:/path/to/nixos-flake"', 'nixpkgs.follows = "nixos-flake/nixpkgs";']
)
def test_missing_anchor_fails_loudly(anchor: str) -> None:
    with pytest.raises(LibraryError, match="template T has no"):
        _flake(TEMPLATE.replace(anchor, "x = 1;"))


def test_system_is_replaced_or_refused() -> None:
    assert 'system = "aarch64-linux";' in _flake(system="aarch64-linux")
    with pytest.raises(LibraryError, match="system: template T has no"):
        _flake(
            TEMPLATE.replace('system = "x86_64-linux";', 'system = "x";'), system="aarch64-linux"
        )


def test_builtin_template_serves_libraries_without_one(tmp_path: Path) -> None:
    (tmp_path / "flake.nix").write_text("{ outputs = _: { }; }")
    lib = resolve_library(str(tmp_path))
    assert lib.template_origin == "nixlayer built-in template"
    assert '"path:/path/to/nixos-flake"' in lib.template


def test_library_refs_are_normalized() -> None:
    home = os.path.expanduser("~")
    assert normalize_ref("~/lib") == (f"path:{home}/lib", Path(home) / "lib")
    assert normalize_ref("path:~/lib?dir=x")[0] == f"path:{home}/lib?dir=x"
    assert normalize_ref("git+file:///srv/lib")[0] == "git+file:///srv/lib"
    assert normalize_ref("github:linux-kdevops/nixos-flake") == (
        "github:linux-kdevops/nixos-flake",
        None,
    )


def test_module_gates_and_overlay_order() -> None:
    spec = VMSpec(
        vm_name="vm",
        profiles=("devel", "monitoring"),
        test_suites=("ltp",),
        overrides=(Override(pkg="fio", src="/x"),),
    )
    text = render_module(resolve_spec(spec))
    assert "  nixos-flake.monitoring.enable = true;\n" in text
    assert "controller.enable" not in text
    assert "nixpkgs.overlays = lib.mkAfter [" in text
    assert "prev.fio.overrideAttrs (_: { src = inputs.fio-src; })" in text


def test_atomic_write_keeps_old_files_when_a_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "flake.nix", tmp_path / "default.nix"
    write_files_atomically({a: "old a", b: "old b"})
    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # while staging the second file
            raise OSError("disk full")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_files_atomically({a: "new a", b: "new b"})
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.nix", "flake.nix"]


def test_atomic_write_skips_unchanged(tmp_path: Path) -> None:
    a = tmp_path / "x"
    assert write_files_atomically({a: "1"}) == (a,)
    assert write_files_atomically({a: "1"}) == ()


def test_override_attrs_are_rendered_after_src() -> None:
    spec = VMSpec(
        vm_name="vm",
        test_suites=("fstests",),
        overrides=(
            Override(
                pkg="xfsprogs",
                src="https://git.example/xfsprogs.git",
                attrs={"autoreconfPhase": 'make configure "${x}"'},
            ),
        ),
    )
    text = render_module(resolve_spec(spec))
    assert (
        "prev.xfsprogs.overrideAttrs (_: { src = inputs.xfsprogs-src; "
        'autoreconfPhase = "make configure \\"\\${x}\\""; })'
    ) in text


def test_fstests_and_home_shares_are_added(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/alice")
    r = resolve_spec(VMSpec(vm_name="vm", test_suites=("fstests",)))
    assert {m: s.tag for m, s in r.shares.items()} == {
        "/var/lib/xfstests": "fstests",
        "/home/alice": "home",
    }
    text = render_module(r)
    assert 'users.users.root.home = lib.mkForce "/home/alice";' in text
    assert 'nixos-flake.shares."/var/lib/xfstests" = {\n    tag = "fstests";' in text
    # $HOME outside /home (root's /root, a CI runner's /var/lib/x): the user's home.
    monkeypatch.setenv("HOME", "/root")
    assert resolve_spec(VMSpec(vm_name="vm", test_suites=())).home_dir == "/home/kdevops"
    off = resolve_spec(VMSpec(vm_name="vm", test_suites=("ltp",), home=False))
    assert off.shares == {} and off.home_dir is None
    assert "root.home" not in render_module(off)
    # An explicit share at the same mount point wins; the tag elsewhere is refused.
    mine = resolve_spec(
        VMSpec(vm_name="vm", home_dir="/h", shares={"/h": {"tag": "myhome", "options": ["ro"]}})
    )
    assert mine.shares["/h"].tag == "myhome"
    with pytest.raises(InputError, match=r"tag 'fstests' is taken by the fstests suite's share"):
        resolve_spec(VMSpec(vm_name="vm", shares={"/x": {"tag": "fstests"}}))


@pytest.mark.parametrize("planted", ["dev-zero", "fifo", "outside"])
def test_a_planted_file_is_replaced_never_read_through(tmp_path: Path, planted: str) -> None:
    """A symlink to /dev/zero or to a file outside, or a FIFO, where a lock file is
    about to be written: the old content is never read through it (which hung on the
    FIFO and /dev/zero), and the link itself is replaced."""
    target = tmp_path / "vm" / "flake.lock"
    target.parent.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    if planted == "fifo":
        os.mkfifo(target)
    else:
        os.symlink("/dev/zero" if planted == "dev-zero" else outside, target)
    assert write_files_atomically({target: "new\n"}) == (target,)
    assert not target.is_symlink() and target.read_text() == "new\n"
    assert outside.read_text() == "keep\n"
    # The same content again is recognised and left alone.
    assert write_files_atomically({target: "new\n"}) == ()


def test_install_replaces_a_planted_fifo_without_waiting_on_it(tmp_path: Path) -> None:
    from nixlayer.closure.configdir import install

    cdir = tmp_path / "root" / "vm"
    cdir.mkdir(parents=True)
    os.mkfifo(cdir / "default.nix")  # where render's file goes: reading it blocked
    assert install(cdir, {"default.nix": "{ }\n", "flake.nix": "{ }\n"}) == (
        "default.nix",
        "flake.nix",
    )
    assert (cdir / "default.nix").read_text() == "{ }\n"
    assert install(cdir, {"default.nix": "{ }\n", "flake.nix": "{ }\n"}) == ()


def test_a_host_name_set_at_boot_leaves_the_name_out_of_the_module() -> None:
    """Two VMs of one design render one module; a baked name is in its VM's module."""
    texts = [render_module(resolve_spec(VMSpec(vm_name=n, hostname="boot"))) for n in "ab"]
    assert texts[0] == texts[1]
    assert '  networking.hostName = "";' in texts[0] and "for a." not in texts[0]
    baked = render_module(resolve_spec(VMSpec(vm_name="a")))
    assert '  networking.hostName = "a";' in baked
    assert baked.startswith("# Per-VM configuration for a. Generated by nixlayer")
