"""The VM spec: what a user asks for. Shape checks live here; checks against the
library's catalog (which profiles exist, reserved tags) live in `resolve_spec`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from nixlayer.closure.catalog import NIXOS_FLAKE_CATALOG, Catalog
from nixlayer.closure.sshkey import check_public_key
from nixlayer.errors import InputError

VM_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
USER_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]*\$?$")
PKG_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NixStr = Annotated[str, AfterValidator(_no_nul)]
SshKey = Annotated[str, AfterValidator(check_public_key)]


class Share(BaseModel):
    """A virtiofs share: the host's virtiofsd serves `tag`, the guest mounts it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: NixStr = Field(min_length=1, description="virtiofs tag announced by the host")
    options: tuple[NixStr, ...] = Field(default=(), description="mount options, e.g. ['ro']")


class Override(BaseModel):
    """Build `pkg` from another source: a local checkout (absolute path) or a git URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pkg: str = Field(description="nixpkgs attribute name, e.g. fio")
    src: NixStr = Field(min_length=1, description="absolute path (or ~/...) or git URL")
    ref: NixStr | None = Field(default=None, description="git branch or tag (git sources only)")

    @field_validator("pkg")
    @classmethod
    def _pkg(cls, v: str) -> str:
        if not PKG_RE.fullmatch(v):
            raise ValueError(f"must match {PKG_RE.pattern}")
        return v


class VMSpec(BaseModel):
    """One VM's closure: `nixlayer schema` prints this model as JSON Schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vm_name: str = Field(description="host name and config directory name")
    user_name: str = Field(default="kdevops", description="unprivileged guest account")
    ssh_keys: tuple[SshKey, ...] = Field(
        default=(), description="OpenSSH public keys authorized for root and the user"
    )
    profiles: tuple[str, ...] | None = Field(
        default=None, description="library profiles; default devel, build-tools, monitoring"
    )
    test_suites: tuple[str, ...] | None = Field(
        default=None, description="library test suites; default all"
    )
    shares: dict[str, Share] = Field(
        default_factory=dict, description="guest mount point -> {tag, options}"
    )
    overrides: tuple[Override, ...] = Field(default=(), description="per-package source overrides")
    system: Literal["x86_64-linux", "aarch64-linux"] = "x86_64-linux"
    update_lock: bool = Field(default=False, description="re-pin the library when locking")
    library: NixStr | None = Field(
        default=None, description="flake ref of the library (path:, git+file:, github:, ~/...)"
    )
    force_host_roles: bool = Field(
        default=False, description="allow host-role profiles (controller) on the imageless backend"
    )
    catalog: Catalog | None = Field(
        default=None, description="replace the library's catalog of profiles and suites"
    )

    @field_validator("vm_name")
    @classmethod
    def _vm_name(cls, v: str) -> str:
        if not VM_NAME_RE.fullmatch(v):
            raise ValueError(f"must match {VM_NAME_RE.pattern}")
        if len(v) > 63:  # a host name label; also keeps <root>/<vm_name> a valid path
            raise ValueError(f"must be at most 63 characters, not {len(v)}")
        return v

    @field_validator("user_name")
    @classmethod
    def _user_name(cls, v: str) -> str:
        if not USER_NAME_RE.fullmatch(v) or len(v) > 32:
            raise ValueError("must be a POSIX user name (lower case, digits, _ and -; 32 at most)")
        return v

    @field_validator("shares")
    @classmethod
    def _shares(cls, v: dict[str, Share]) -> dict[str, Share]:
        seen: dict[str, str] = {}
        for mount, share in v.items():
            _no_nul(mount)
            path = PurePosixPath(mount)
            if not path.is_absolute():
                raise ValueError(f"mount point {mount!r} must be absolute")
            if any(part in (".", "..") for part in mount.split("/")):
                raise ValueError(f"mount point {mount!r} must not contain . or ..")
            if share.tag in seen:
                raise ValueError(f"tag {share.tag!r} is used by {seen[share.tag]!r} and {mount!r}")
            seen[share.tag] = mount
        return v

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, v: tuple[Override, ...]) -> tuple[Override, ...]:
        pkgs = [o.pkg for o in v]
        dupes = sorted({p for p in pkgs if pkgs.count(p) > 1})
        if dupes:
            raise ValueError(f"package {dupes[0]!r} is overridden twice")
        return v


@dataclass(frozen=True)
class ResolvedSpec:
    """A spec checked against a catalog, with defaults filled in."""

    spec: VMSpec
    catalog: Catalog
    profiles: tuple[str, ...]
    test_suites: tuple[str, ...]


def resolve_spec(spec: VMSpec, catalog: Catalog | None = None) -> ResolvedSpec:
    """Check the spec against the catalog (the spec's own, else the given one)."""
    cat = spec.catalog or catalog or NIXOS_FLAKE_CATALOG
    profiles = spec.profiles if spec.profiles is not None else cat.default_profiles
    suites = spec.test_suites if spec.test_suites is not None else cat.default_test_suites
    for i, p in enumerate(profiles):
        if p not in cat.profiles:
            raise InputError(
                f"profiles[{i}]", f"unknown profile {p!r} (choose from {', '.join(cat.profiles)})"
            )
        if p in cat.host_roles and not spec.force_host_roles:
            raise InputError(
                f"profiles[{i}]",
                f"{p!r} is a host role (it runs on the hypervisor, e.g. libvirtd) and the "
                "imageless backend does not compose it; set force_host_roles: true to force it",
            )
    for i, s in enumerate(suites):
        if s not in cat.test_suites:
            raise InputError(
                f"test_suites[{i}]",
                f"unknown test suite {s!r} (choose from {', '.join(cat.test_suites)})",
            )
    for mount, share in spec.shares.items():
        if share.tag in cat.reserved_tags:
            raise InputError(
                f"shares[{mount!r}].tag",
                f"tag {share.tag!r} is reserved by the backend "
                f"({', '.join(cat.reserved_tags)} are taken)",
            )
    return ResolvedSpec(
        spec=spec,
        catalog=cat,
        profiles=tuple(dict.fromkeys(profiles)),
        test_suites=tuple(dict.fromkeys(suites)),
    )
