"""What a library offers: profiles, test suites, gates, automatic shares.
Defaults to nixos-flake's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from nixlayer.errors import InputError

ATTR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]{0,99}")

NIXOS_FLAKE_SUITES = (
    "blktests",
    "fstests",
    "gitr",
    "ltp",
    "mmtests",
    "pynfs",
    "selftests",
    "sysbench",
)
# Module and option names the catalog puts into Nix source: plain attribute names.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_+-]{0,99}$")
MAX_CATALOG_BYTES = 1 << 20


def _name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a module name (letters, digits, _ + -)")
    return value


def _option_path(value: str) -> str:
    for part in value.split("."):
        _name(part)
    return value


def _mount(value: str) -> str:
    if not value.startswith("/") or "\x00" in value or ".." in value.split("/"):
        raise ValueError(f"{value!r} is not an absolute mount point")
    return value


Name = Annotated[str, AfterValidator(_name)]
OptionPath = Annotated[str, AfterValidator(_option_path)]
Mount = Annotated[str, AfterValidator(_mount)]


class Catalog(BaseModel):
    """The module catalog of a library.

    A library can ship its own as `nixlayer-catalog.json` at its root; a spec can
    carry one in its `catalog` field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    profiles: tuple[Name, ...] = Field(description="nixosModules.profiles.<name> the library has")
    test_suites: tuple[Name, ...] = Field(description="nixosModules.testSuites.<name>")
    gates: dict[Name, OptionPath] = Field(
        default_factory=dict,
        description="profile -> option set to true when it is selected (gated profiles)",
    )
    default_profiles: tuple[Name, ...] = ()
    default_test_suites: tuple[Name, ...] = ()
    host_roles: tuple[Name, ...] = Field(
        default=(), description="profiles refused on the imageless backend unless forced"
    )
    reserved_tags: tuple[Name, ...] = ("store", "modules")
    suite_shares: dict[Name, dict[Mount, Name]] = Field(
        default_factory=dict,
        description="test suite -> {mount point: tag} shares added when it is selected",
    )
    home_tag: Name | None = Field(
        default=None, description="virtiofs tag of the operator's home share (spec `home`)"
    )
    library_input: Name = Field(
        default="nixos-flake", description="the flake input name of the library in the template"
    )
    configuration: Name = Field(
        default="vm", description="nixosConfigurations.<name> of the template"
    )

    @field_validator("library_input", "configuration")
    @classmethod
    def _attr_name(cls, v: str) -> str:
        # Both are written into flake.nix as attribute names.
        if not ATTR_NAME.fullmatch(v):
            raise ValueError(f"must be a Nix attribute name ({ATTR_NAME.pattern})")
        return v

    @model_validator(mode="after")
    def _defaults_are_known(self) -> Catalog:
        for field, known in (
            ("default_profiles", self.profiles),
            ("default_test_suites", self.test_suites),
            ("host_roles", self.profiles),
            ("gates", self.profiles),
            ("suite_shares", self.test_suites),
        ):
            for name in getattr(self, field):
                if name not in known:
                    raise ValueError(f"{field} names {name!r}, which is not in the catalog")
        return self


NIXOS_FLAKE_CATALOG = Catalog(
    profiles=("build-tools", "controller", "devel", "monitoring"),
    test_suites=NIXOS_FLAKE_SUITES,
    gates={
        "monitoring": "nixos-flake.monitoring.enable",
        "controller": "nixos-flake.controller.enable",
    },
    default_profiles=("devel", "build-tools", "monitoring"),
    default_test_suites=NIXOS_FLAKE_SUITES,
    host_roles=("controller",),
    # The fstests module's xfstests@.service reads its config and writes results there.
    suite_shares={"fstests": {"/var/lib/xfstests": "fstests"}},
    home_tag="home",
)


def load_catalog(path: Path | str, field: str) -> Catalog:
    """A catalog JSON file, strictly: UTF-8, no duplicate keys, every error naming
    the catalog field (`<field>.profiles[0]: ...`)."""
    from nixlayer.safeload import parse_json, read_text

    text = read_text(path, field, max_bytes=MAX_CATALOG_BYTES)
    try:
        data = parse_json(text, field, str(path))
    except InputError as exc:
        if exc.field == field:
            raise
        # A value inside the catalog: name it under the flag or file it came from.
        raise InputError(f"{field}.{exc.field}", exc.message) from None
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        from nixlayer.closure.specfile import spec_error

        err = spec_error(exc)
        raise InputError(f"{field}.{err.field}", f"{err.message} (in {path})") from None
