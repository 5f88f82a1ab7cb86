"""What a library offers: profiles, test suites, gates. Defaults to nixos-flake's."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class Catalog(BaseModel):
    """The module catalog of a library.

    A library can ship its own as `nixlayer-catalog.json` at its root; a spec can
    carry one in its `catalog` field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    profiles: tuple[str, ...] = Field(description="nixosModules.profiles.<name> the library has")
    test_suites: tuple[str, ...] = Field(description="nixosModules.testSuites.<name>")
    gates: dict[str, str] = Field(
        default_factory=dict,
        description="profile -> option set to true when it is selected (gated profiles)",
    )
    default_profiles: tuple[str, ...] = ()
    default_test_suites: tuple[str, ...] = ()
    host_roles: tuple[str, ...] = Field(
        default=(), description="profiles refused on the imageless backend unless forced"
    )
    reserved_tags: tuple[str, ...] = ("store", "modules")
    library_input: str = Field(
        default="nixos-flake", description="the flake input name of the library in the template"
    )
    configuration: str = Field(
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
)
