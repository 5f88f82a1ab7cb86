"""The VM spec: what a user asks for. Shape checks live here; checks against the
library's catalog (which profiles exist, reserved tags, automatic shares) live in
`resolve_spec`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from nixlayer.closure.catalog import NIXOS_FLAKE_CATALOG, Catalog
from nixlayer.closure.paths import BOOT_NAME_RE, VM_NAME_RE
from nixlayer.closure.sshkey import check_public_key
from nixlayer.errors import InputError

USER_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]*\$?$")
PKG_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")
# An attribute set in overrideAttrs: Nix identifiers only (no quoting needed).
ATTR_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_'-]*$")
System = Literal["x86_64-linux", "aarch64-linux"]
HostnameSource = Literal["closure", "boot"]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _abs_path(value: str) -> str:
    _no_nul(value)
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path")
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError(f"{value!r} must not contain . or ..")
    return value


NixStr = Annotated[str, AfterValidator(_no_nul)]
AbsPath = Annotated[str, AfterValidator(_abs_path)]
SshKey = Annotated[str, AfterValidator(check_public_key)]


class Share(BaseModel):
    """A virtiofs share: the host's virtiofsd serves `tag`, the guest mounts it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: NixStr = Field(min_length=1, description="virtiofs tag announced by the host")
    options: tuple[NixStr, ...] = Field(default=(), description="mount options, e.g. ['ro']")


class Override(BaseModel):
    """Build `pkg` from another source: a local checkout or a git URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pkg: str = Field(description="nixpkgs attribute name, e.g. fio")
    src: NixStr = Field(
        min_length=1,
        description="a path (absolute, ~/..., or ./... relative to the spec file) or a git URL",
    )
    ref: NixStr | None = Field(default=None, description="git branch or tag (git sources only)")
    attrs: dict[str, NixStr] = Field(
        default_factory=dict,
        description="extra string attributes for overrideAttrs, e.g. "
        "{autoreconfPhase: 'make configure'} for xfsprogs from git",
    )

    @field_validator("pkg")
    @classmethod
    def _pkg(cls, v: str) -> str:
        if not PKG_RE.fullmatch(v):
            raise ValueError(f"must match {PKG_RE.pattern}")
        return v

    @field_validator("attrs")
    @classmethod
    def _attrs(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not ATTR_RE.fullmatch(name):
                raise ValueError(f"attribute name {name!r} must match {ATTR_RE.pattern}")
            if name == "src":
                raise ValueError("`src` is the override itself; set it with the src field")
        return v

    def is_path(self) -> bool:
        return self.src.startswith(("/", "~", "./", "../")) or self.src in (".", "..")


class VMSpec(BaseModel):
    """One VM's closure: `nixlayer schema` prints this model as JSON Schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vm_name: str = Field(
        description="host name (NixOS networking.hostName: 63 characters at most) and "
        "config directory name"
    )
    hostname: HostnameSource = Field(
        default="closure",
        description="where the guest's host name comes from. closure: vm_name is written "
        "into the system (networking.hostName). boot: the system has no host name, so VMs "
        "that differ only in vm_name get one toplevel, which a fleet evaluates and builds "
        "once; the launcher passes the result's kernel_params (systemd.hostname=<vm_name>) "
        "on the kernel command line",
    )
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
    home: bool = Field(
        default=True,
        description="share the operator's home (tag `home`) at home_dir and make it root's home",
    )
    home_dir: AbsPath | None = Field(
        default=None,
        description="where the home share appears in the guest (default $HOME when it is "
        "under /home, else /home/<user_name>)",
    )
    overrides: tuple[Override, ...] = Field(default=(), description="per-package source overrides")
    system: System = "x86_64-linux"
    update_library: bool = Field(default=False, description="re-pin the library when locking")
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
            raise ValueError(
                "must be a host name NixOS accepts: letters, digits, - and _, not first or "
                "last, 63 characters at most"
            )
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
            if not PurePosixPath(mount).is_absolute():
                raise ValueError(f"mount point {mount!r} must be absolute")
            if any(part in (".", "..") for part in mount.split("/")):
                raise ValueError(f"mount point {mount!r} must not contain . or ..")
            if share.tag in seen:
                raise ValueError(f"tag {share.tag!r} is used by {seen[share.tag]!r} and {mount!r}")
            seen[share.tag] = mount
        return v

    @model_validator(mode="after")
    def _boot_name(self) -> VMSpec:
        if self.hostname == "boot" and not BOOT_NAME_RE.fullmatch(self.vm_name):
            raise ValueError(
                f"vm_name {self.vm_name!r}: a host name set at boot (systemd.hostname=) "
                "takes letters, digits and - only; systemd would ignore this one"
            )
        return self

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
    """A spec checked against a catalog, with defaults and automatic shares filled in."""

    spec: VMSpec
    catalog: Catalog
    profiles: tuple[str, ...]
    test_suites: tuple[str, ...]
    shares: dict[str, Share]
    home_dir: str | None


def default_home_dir(user_name: str) -> str:
    """The operator's home when it lives under /home (kdevops-ng's rule), else the user's."""
    home = os.environ.get("HOME", "")
    try:
        _abs_path(home)
    except ValueError:
        home = ""
    return home if home.startswith("/home/") else f"/home/{user_name}"


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
    shares = dict(spec.shares)
    # Shares the operator should not have to declare (kdevops-ng's predefined ones);
    # an explicit share at the same mount point wins.
    auto: list[tuple[str, str, str]] = [
        (mount, tag, f"the {suite} suite's share")
        for suite in dict.fromkeys(suites)
        for mount, tag in cat.suite_shares.get(suite, {}).items()
    ]
    home_dir = None
    if spec.home and cat.home_tag:
        home_dir = spec.home_dir or default_home_dir(spec.user_name)
        auto.append((home_dir, cat.home_tag, "the home share"))
    for mount, tag, what in auto:
        if mount in shares:
            continue
        taken = next((m for m, s in shares.items() if s.tag == tag), None)
        if taken is not None:
            raise InputError(
                f"shares[{taken!r}].tag",
                f"tag {tag!r} is taken by {what} at {mount}; use another tag or mount it there",
            )
        shares[mount] = Share(tag=tag)
    return ResolvedSpec(
        spec=spec,
        catalog=cat,
        profiles=tuple(dict.fromkeys(profiles)),
        test_suites=tuple(dict.fromkeys(suites)),
        shares=shares,
        home_dir=home_dir,
    )
