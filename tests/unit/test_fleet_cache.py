"""What the shared evaluator need not evaluate: alike targets and the eval cache,
keyed by content; and the host name a VM named at boot takes from its config dir."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nixlayer.closure.fleet_cache import EvalCache, alike, content_key
from nixlayer.closure.fleet_eval import EvalStats, _tell_shared
from nixlayer.closure.fleet_nix import Evaluated, Target
from nixlayer.closure.fleet_shared import locked_path_ref
from nixlayer.closure.manifest import Manifest
from nixlayer.closure.paths import config_dir_for
from nixlayer.errors import InputError
from tests.fakenix import FakeNix

ATTR = ("packages", "x86_64-linux", "toplevel")
H1, H2 = "sha256-one+/=", "sha256-two"


def _t(name: str, nar: str, config: tuple[str, ...] = (), pkgs_from: str | None = None) -> Target:
    ref = locked_path_ref(Path("/r") / name, nar)
    return Target(name, ref, ATTR, Path("/l") / name, config, pkgs_from)


def test_targets_with_one_content_are_evaluated_once() -> None:
    a, b, c = _t("a", H1), _t("b", H2), _t("c", H1)
    other_attr = Target("d", a.flake, ("packages", "x86_64-linux", "other"), Path("/l/d"))
    firsts, copies = alike([a, b, c, other_attr])
    assert firsts == [a, b, other_attr] and copies == {"c": "a"}


def test_a_package_set_lent_by_the_same_content_is_its_own() -> None:
    lead = _t("a", H1)
    twin = _t("b", H1, config=("nixosConfigurations", "vm"), pkgs_from=lead.flake)
    other = _t("c", H2, config=("nixosConfigurations", "vm"), pkgs_from=lead.flake)
    assert content_key(twin) == content_key(lead) != content_key(other)
    assert alike([lead, twin, other])[1] == {"b": "a"}


def test_refs_that_are_not_content_addressed_are_not_merged() -> None:
    a = Target("a", "path:/r/a", ATTR, Path("/l/a"))
    b = Target("b", "path:/r/b", ATTR, Path("/l/b"))
    assert alike([a, b]) == ([a, b], {})


def test_the_eval_cache_answers_the_same_content_in_another_directory(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path / "eval-cache.json", FakeNix())
    cache.put(_t("a", H1), Evaluated("a", "/nix/store/x.drv", "/nix/store/x"))
    hit = cache.get(_t("b", H1))
    assert hit == Evaluated("b", "/nix/store/x.drv", "/nix/store/x", cached=True)
    assert cache.get(_t("c", H2)) is None


def _manifest(vm_name: str | None) -> Manifest:
    return Manifest(vm_name, "vm", "x86_64-linux", "path:/lib", "nixos-flake")


def test_a_host_name_set_at_boot_comes_from_the_config_dir() -> None:
    assert _manifest("a").kernel_params(Path("/r/a")) == ()
    assert _manifest(None).kernel_params(Path("/r/guest-1")) == ("systemd.hostname=guest-1",)


@pytest.mark.parametrize("name", ["a b", "x init=", "a\nb", "-a", "a" * 64, "é"])
def test_a_config_dir_that_is_no_host_name_gives_no_kernel_parameter(name: str) -> None:
    with pytest.raises(InputError) as err:
        _manifest(None).kernel_params(Path("/r") / name)
    assert err.value.field == "config_dir"


@pytest.mark.parametrize("target", ["xfs-0", "odd_dir", "/etc"])
def test_a_config_dir_that_is_a_symlink_is_refused(tmp_path: Path, target: str) -> None:
    """Followed, xfs-1 would write into xfs-0's directory and boot with its name."""
    (tmp_path / "xfs-0").mkdir()
    (tmp_path / "odd_dir").mkdir()
    (tmp_path / "xfs-1").symlink_to(target)
    with pytest.raises(InputError) as err:
        config_dir_for(tmp_path, "xfs-1")
    assert err.value.field == "vm_name" and "symlink" in err.value.message


def test_a_twin_of_its_lender_is_not_said_to_have_its_own_package_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lead = _t("a", H1, config=("nixosConfigurations", "vm"))
    twin = _t("b", H1, config=("nixosConfigurations", "vm"), pkgs_from=lead.flake)
    firsts, copies = alike([lead, twin])
    evaluated = {n: Evaluated(n, "/nix/store/x.drv", "/nix/store/x") for n in "ab"}
    with caplog.at_level(logging.INFO, logger="nixlayer"):
        _tell_shared(firsts, evaluated, EvalStats())
    assert copies == {"b": "a"} and "own package set" not in caplog.text
