"""`nixlayer runner-store seed|configure|status`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nixlayer.cli.output import emit_json, progress, progress_enabled, with_progress


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    rs = sub.add_parser(
        "runner-store", help="one Nix store shared by a host's GitLab docker runners"
    )
    rsub = rs.add_subparsers(dest="runner_store_command", required=True, metavar="COMMAND")

    p = rsub.add_parser(
        "seed",
        parents=[common],
        help="take /nix/store and its database out of a pinned image",
        description="Copy the store paths of a pinned nixos/nix image that DIR lacks into DIR, "
        "registering each in DIR's database only when complete; then check DIR with Nix.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--image",
        metavar="REF",
        help="image by tag or digest (needs a docker engine); resolved to its image ID, "
        "which is what is saved and recorded in DIR/.nixlayer/image.json",
    )
    src.add_argument("--image-archive", metavar="FILE", help="a `docker save` tar or an OCI layout")
    p.add_argument("--dir", required=True, metavar="DIR", help="where the shared store lives")
    p.add_argument(
        "--full-verify",
        action="store_true",
        help="re-hash every path against the image's own hashes and check every layer digest",
    )
    p.set_defaults(handler=_seed)

    p = rsub.add_parser(
        "configure",
        parents=[common],
        help="mount the shared store into docker runners",
        description="Edit config.toml in place (comments, other runners, bytes, owner, mode "
        "and a symlink kept; runs serialize on a lock; tokens masked in every diff). daemon "
        "(recommended): the store and the daemon socket read-only plus NIX_REMOTE=daemon; "
        "refused (exit 3) unless the host nix-daemon sandboxes builds and would not trust "
        "the runner's jobs. copy: seed 002's read-write layout, for hosts without a daemon.",
    )
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument(
        "--runner",
        action="append",
        default=[],
        metavar="NAME",
        help="runner to configure (repeat; every runner of that name; default: every "
        "docker runner)",
    )
    p.add_argument("--mode", required=True, choices=["daemon", "copy"])
    p.add_argument(
        "--dir",
        metavar="DIR",
        help="store root on the host: the directory that CONTAINS nix/store (daemon: "
        "default /, the host's own /nix/store; copy: the DIR given to seed)",
    )
    p.add_argument(
        "--image",
        metavar="REF",
        help="also set the job image (daemon: its store paths are imported into the host "
        "store; copy: NAME@sha256:DIGEST or an image ID sha256:...)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="show the diff, write nothing; exit 1 if the file would change",
    )
    p.set_defaults(handler=_configure)

    p = rsub.add_parser(
        "status", parents=[common], help="per runner: configured and how; the store's health"
    )
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument("--dir", metavar="DIR")
    p.set_defaults(handler=_status)


def _seed(args: argparse.Namespace) -> int:
    from nixlayer.runner_store.seed import seed

    # SIGINT, SIGTERM and SIGHUP unwind (cli/main.py installs the handlers, which end
    # the running `nix` first), so the seed removes its work directory.
    with progress(progress_enabled(args), "seed") as update:
        result = with_progress(
            seed,
            update,
            directory=args.dir,
            image=args.image,
            image_archive=args.image_archive,
            full_verify=args.full_verify,
        )
    if args.json:
        emit_json(result.to_json())
    else:
        print(
            f"{result.dir}: {result.image_paths} image paths, copied {len(result.copied)}, "
            f"verified {result.verified}"
            + (
                f", removed {len(result.removed_partial)} leftovers"
                if result.removed_partial
                else ""
            )
        )
    return 0


def _configure(args: argparse.Namespace) -> int:
    from nixlayer.runner_store.config import configure

    change = configure(
        args.config,
        mode=args.mode,
        runners=args.runner,
        directory=args.dir,
        image=args.image,
        check=args.check,
    )
    written = change.changed and not args.check
    status = 1 if args.check and change.changed else 0
    if args.json:
        emit_json(
            {
                "config": str(change.path),
                "changed": change.changed,
                "diff": change.diff(),
                "written": written,
                "runners": change.runners,
                "image_paths": change.image_paths,
            },
            exit_code=status,
            message=f"{change.path} is not configured yet (--check)" if status else None,
        )
    elif change.changed:
        sys.stdout.write(change.diff())
        if written:
            print(f"wrote {change.path} (backup: {change.backup})")
    else:
        print(f"{change.path}: already configured, nothing to change")
    if change.image_paths is not None and not args.json:
        print(f"{args.image}: {change.image_paths} store paths valid in the host store")
    return status


def _status(args: argparse.Namespace) -> int:
    from nixlayer.runner_store.status import status

    out = status(args.config, args.dir)
    code = 0 if out.get("store", {}).get("healthy", True) else 1
    if args.json:
        problem = out.get("store", {}).get("problem") if code else None
        emit_json(out, exit_code=code, message=f"store unhealthy: {problem}" if code else None)
        return code
    for r in out["runners"]:
        print(f"{r['name']:<24} {r['executor']:<18} {r['mode']:<8} {r['image'] or '-'}")
    store = out.get("store")
    if store:
        health = "healthy" if store["healthy"] else f"UNHEALTHY: {store['problem']}"
        print(
            f"store {store['dir']}: {store.get('valid_paths', 0)} paths, "
            f"{store['bytes'] / 1e6:.1f} MB, {health}"
        )
        for problem in store["problems"][1:]:
            print(f"  also: {problem}")
        if store["building"]:
            print(f"  {len(store['building'])} paths being built by jobs (Nix holds their locks)")
    return code
