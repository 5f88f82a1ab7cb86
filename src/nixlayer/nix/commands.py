"""Pure functions that build `nix` argv lists. Nothing here runs anything.

Each returns the arguments after the `nix` binary, so the runner can prefix the
binary it resolved and log one pasteable line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nixlayer.nix.version import Dialect, NixVersion

Argv = list[str]
# What makes Nix log progress as JSON on stderr. The runner adds it (and leaves it out of
# the logged command, which stays pasteable).
PROGRESS_FLAGS = ["--log-format", "internal-json", "-v"]


def version() -> Argv:
    return ["--version"]


def flake_lock(flake_ref: str, update_inputs: Sequence[str], dialect: Dialect) -> Argv:
    """Lock missing inputs and re-pin `update_inputs`, in one command."""
    if not update_inputs:
        return ["flake", "lock", flake_ref]
    if dialect is Dialect.MODERN:
        return ["flake", "update", "--flake", flake_ref, *update_inputs]
    argv = ["flake", "lock", flake_ref]
    for name in update_inputs:
        argv += ["--update-input", name]
    return argv


def build(
    installable: str,
    *,
    out_link: Path | None,
    progress_json: bool,
    extra: Sequence[str] = (),
) -> Argv:
    """`nix build --json`: the JSON on stdout names the outputs, in every dialect
    (`--print-out-paths` does not exist before Nix 2.10)."""
    argv = ["build", installable, "--json"]
    argv += ["--out-link", str(out_link)] if out_link is not None else ["--no-link"]
    if progress_json:
        argv += PROGRESS_FLAGS
    return argv + list(extra)


def hash_path(path: Path) -> Argv:
    """The NAR hash (SRI) of a directory, as a `path:` lock entry records it."""
    return ["hash", "path", "--type", "sha256", str(path)]


def flake_metadata(flake_ref: str) -> Argv:
    return ["flake", "metadata", "--json", flake_ref]


def eval_json(installable: str, apply: str | None = None) -> Argv:
    argv = ["eval", "--json", installable]
    return [*argv, "--apply", apply] if apply else argv


def override_input(name: str, ref: str) -> Argv:
    return ["--override-input", name, ref]


def flake_lock_override(flake_ref: str, name: str, ref: str) -> Argv:
    """Rewrite one input's lock entry (and only that one) to `ref`."""
    return ["flake", "lock", flake_ref, *override_input(name, ref)]


def profile_set(profile: Path, store_path: str) -> Argv:
    """`nix-env` arguments (run with the nix-env tool) that make a new generation."""
    return ["-p", str(profile), "--set", store_path]


def profile_switch_generation(profile: Path, number: int) -> Argv:
    """`nix-env` arguments: point the profile at exactly generation `number`."""
    return ["-p", str(profile), "--switch-generation", str(number)]


# Run inside `unshare` (a private mount namespace): bind-mount $0 onto itself, make that
# mount nosymfollow (the kernel then refuses to follow any symlink while resolving a
# path on it; readlink still works), then exec the command. Fails, never runs it
# unprotected, when a step fails.
NOSYMFOLLOW_SCRIPT = (
    'mount --bind -- "$0" "$0" && mount -o remount,bind,nosymfollow -- "$0" "$0" && exec "$@"'
)


def nosymfollow(root: Path) -> Argv:
    """The prefix that runs a command where no symlink under `root` is ever followed
    (root only; the namespace and its mount end with the command)."""
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", NOSYMFOLLOW_SCRIPT, str(root),
    ]  # fmt: skip


def chroot_store(root: Path) -> str:
    """A local store rooted elsewhere (its files under root/nix/store)."""
    return f"local?root={root}"


def dump_db(store: str, paths: Sequence[str]) -> Argv:
    """`nix-store` arguments: the registration of `paths` (for --load-db)."""
    return ["--dump-db", *paths, "--store", store]


def load_db(store: str) -> Argv:
    """`nix-store` arguments: register the paths described on stdin as valid."""
    return ["--load-db", "--store", store]


def chunks(paths: Sequence[str], size: int = 1000) -> list[Sequence[str]]:
    """Split long path lists so no command line nears ARG_MAX."""
    return [paths[i : i + size] for i in range(0, len(paths), size)]


def verify_all(store: str) -> Argv:
    return ["store", "verify", "--no-trust", "--store", store, "--all"]


def derivation_closure(installable: str) -> Argv:
    """Every store derivation `installable` depends on, itself included."""
    return ["path-info", "--derivation", "--recursive", installable]


def eval_expr(expr: str) -> Argv:
    """Evaluate an expression for its side effects (traces, .drv files); prints null."""
    return ["eval", "--json", "--expr", expr]


def hash_paths(paths: Sequence[Path]) -> Argv:
    """NAR hashes (SRI) of several directories, one line each, in order."""
    return ["hash", "path", "--type", "sha256", *map(str, paths)]


def check_validity(paths: Sequence[str]) -> Argv:
    """`nix-store` arguments: print the paths that are not valid (exit 0 either way)."""
    return ["--check-validity", "--print-invalid", *paths]


def realise(drvs: Sequence[str], *, keep_going: bool = True, root: Path | None = None) -> Argv:
    """`nix-store` arguments: build derivations in one graph (`--keep-going`: every
    buildable one is built even when others fail). Stable across Nix and Lix
    versions, unlike the `drv^out` installable syntax. With `root`, every output is
    a GC root (`root`, `root-1`, ...) from the moment it is built."""
    rooted = ["--add-root", str(root)] if root is not None else []
    return ["--realise", *(["--keep-going"] if keep_going else []), *rooted, *drvs]


def build_log(installable: str) -> Argv:
    """The stored build log of a derivation (or its output)."""
    return ["log", installable]


def path_info_json(
    store: str | None,
    nix_version: NixVersion,
    paths: Sequence[str] = (),
    *,
    all_paths: bool = False,
    recursive: bool = False,
) -> Argv:
    """`nix path-info --json` for `paths` (or every valid path), parsed by
    nix/nixjson/pathinfo.py. Nix 2.33+ deprecates `--json` alone and older Nix
    rejects `--json-format`: ask for format 1 (keyed by store path) where it exists.
    Lix forked before 2.19 and numbers itself 2.9x: it has no such flag."""
    argv = ["path-info", "--json"]
    if nix_version.implementation != "lix" and nix_version.version >= (2, 33, 0):
        argv += ["--json-format", "1"]
    if recursive:
        argv += ["--recursive"]
    if store is not None:  # None: the store every other call uses
        argv += ["--store", store]
    return [*argv, "--all"] if all_paths else [*argv, *paths]


def show_config(nix_version: NixVersion) -> Argv:
    """Effective settings as JSON, parsed by nix/nixjson/config.py. Nix 2.20 renamed
    `nix show-config` to `nix config show` (the old name warns, then may go); Lix
    (numbered 2.9x, forked before the rename) has only the old name."""
    argv = ["--extra-experimental-features", "nix-command"]
    if nix_version.implementation != "lix" and nix_version.version >= (2, 20, 0):
        return [*argv, "config", "show", "--json"]
    return [*argv, "show-config", "--json"]


def print_invalid(store: str, paths: Sequence[str]) -> Argv:
    """`nix-store` arguments: print which of `paths` are not valid in `store`."""
    return ["--store", store, "--check-validity", "--print-invalid", *paths]


def import_paths(store: str) -> Argv:
    """`nix-store` arguments: import an export stream from stdin into `store`. Only
    for a local store the caller (root) owns: signatures are not required there."""
    return ["--store", store, "--import", "--option", "require-sigs", "false"]
