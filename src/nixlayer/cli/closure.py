"""`render`, `lock`, `build`, `run`: the VM closure commands.

Flow modules are imported inside the handlers so that `nixlayer build` does not
pay for pydantic and YAML at start-up.
"""

from __future__ import annotations

import argparse
from typing import Any

from nixlayer.cli.nixopts import nix_from_args
from nixlayer.cli.output import build_progress, emit_json, info


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    spec_flags = argparse.ArgumentParser(add_help=False)
    g = spec_flags.add_argument_group("spec fields (override the SPEC file)")
    g.add_argument("--vm-name", help="host name and config directory name")
    g.add_argument("--user-name", help="unprivileged guest account")
    g.add_argument(
        "--profile",
        action="append",
        dest="profiles",
        metavar="NAME",
        help="a library profile (repeat; replaces the spec's list)",
    )
    g.add_argument(
        "--test-suite",
        action="append",
        dest="test_suites",
        metavar="NAME",
        help="a library test suite (repeat; replaces the spec's list)",
    )
    g.add_argument(
        "--ssh-key",
        action="append",
        dest="ssh_keys",
        metavar="KEY",
        help="an OpenSSH public key (repeat; replaces the spec's list)",
    )
    g.add_argument("--system", choices=["x86_64-linux", "aarch64-linux"])
    g.add_argument(
        "--update-library",
        action="store_true",
        default=None,
        help="re-pin the library when locking",
    )
    g.add_argument(
        "--force-host-roles",
        action="store_true",
        default=None,
        help="allow host-role profiles (controller) on the imageless backend",
    )
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any spec field; VALUE is YAML (e.g. --set 'shares={/mnt/x: {tag: x}}')",
    )
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--library", metavar="FLAKEREF", help="the library flake (path:, git+file:, github:, ~/...)"
    )
    where.add_argument(
        "--root",
        metavar="DIR",
        help="config root (default $NIXLAYER_ROOT or $WORKERS_DIR/$WORKER_INDEX/nix)",
    )
    where.add_argument(
        "--catalog",
        metavar="FILE",
        help="a JSON catalog of profiles and suites replacing the library's",
    )

    p = sub.add_parser(
        "render",
        parents=[common, where, spec_flags],
        help="write <root>/<vm_name>/{flake.nix,default.nix} from SPEC",
        description="Render the per-VM config directory from SPEC (YAML or JSON).",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file, or - for standard input")
    p.add_argument("--show", action="store_true", help="print the rendered files on stderr")
    p.set_defaults(handler=_render)

    p = sub.add_parser(
        "lock",
        parents=[common],
        help="nix flake lock, re-pinning source overrides",
        description="Lock CONFIG_DIR. Source override inputs are re-pinned on "
        "every run; the library only with --update-library.",
    )
    p.add_argument("config_dir", metavar="CONFIG_DIR")
    p.add_argument("--update-library", action="store_true", help="re-pin the library too")
    p.set_defaults(handler=_lock)

    p = sub.add_parser(
        "build",
        parents=[common],
        help="nix build path:<dir>#toplevel and read the bootspec",
        description="Build CONFIG_DIR's toplevel; print toplevel, init, initrd.",
    )
    p.add_argument("config_dir", metavar="CONFIG_DIR")
    p.add_argument(
        "--out-link",
        metavar="PATH",
        help="GC root for the result (default <root>/.nixlayer/results/<vm>)",
    )
    p.set_defaults(handler=_build)

    p = sub.add_parser(
        "run",
        parents=[common, where, spec_flags],
        help="render, lock and build; print {toplevel, init, initrd, config_dir}",
        description="Render, lock and build SPEC's closure in one step.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file, or - for standard input")
    p.add_argument("--out-link", metavar="PATH", help="GC root for the result")
    p.add_argument("--show", action="store_true", help="print the rendered files on stderr")
    p.set_defaults(handler=_run)


def _spec_from_args(args: argparse.Namespace) -> Any:
    from nixlayer.closure.specfile import load_spec
    from nixlayer.errors import InputError
    from nixlayer.safeload import parse_yaml

    overrides: dict[str, Any] = {
        "vm_name": args.vm_name,
        "user_name": args.user_name,
        "profiles": args.profiles,
        "test_suites": args.test_suites,
        "ssh_keys": args.ssh_keys,
        "system": args.system,
        "update_library": args.update_library,
        "force_host_roles": args.force_host_roles,
    }
    for item in args.set:
        field, sep, raw = item.partition("=")
        if not sep or not field:
            raise InputError("--set", f"expected FIELD=VALUE, got {item!r}")
        overrides[field.strip()] = parse_yaml(raw, field.strip(), "--set")
    return load_spec(args.spec, overrides)


def _catalog_from_args(args: argparse.Namespace) -> Any:
    if not args.catalog:
        return None
    from nixlayer.closure.catalog import load_catalog

    return load_catalog(args.catalog, "--catalog")


def _show_rendered(result: Any, args: argparse.Namespace) -> None:
    if not args.show:
        return
    for path, text in (
        (result.flake_nix, result.flake_text),
        (result.default_nix, result.default_text),
    ):
        info(f"--- {path}\n{text}")


def _nix(args: argparse.Namespace) -> Any:
    return nix_from_args(args)


def _render(args: argparse.Namespace) -> int:
    from nixlayer.closure.render import render_config

    spec = _spec_from_args(args)
    result = render_config(
        spec,
        root=args.root,
        library=args.library,
        catalog=_catalog_from_args(args),
        nix=_nix(args),
    )
    _show_rendered(result, args)
    changed = ", ".join(result.changed) or "nothing changed"
    return _report(args, result.to_json(), f"rendered {result.config_dir} ({changed})")


def _report(args: argparse.Namespace, data: dict[str, Any], line: str) -> int:
    if args.json:
        emit_json(data)
    else:
        print(line)
    return 0


def _lock(args: argparse.Namespace) -> int:
    from nixlayer.closure.lock import lock_config

    result = lock_config(args.config_dir, update_library=args.update_library, nix=_nix(args))
    return _report(args, result.to_json(), f"locked {result.lock_file} ({result.summary()})")


def _build(args: argparse.Namespace) -> int:
    from nixlayer.closure.build import build_closure

    with build_progress(not args.json and not args.quiet) as progress:
        result = build_closure(
            args.config_dir,
            out_link=args.out_link,
            nix=_nix(args),
            progress=progress,
        )
    _print_closure(result.to_json() if args.json else result.closure(), args.json)
    return 0


def _run(args: argparse.Namespace) -> int:
    from nixlayer.closure.run import run_closure

    spec = _spec_from_args(args)
    with build_progress(not args.json and not args.quiet) as progress:
        done = run_closure(
            spec,
            root=args.root,
            library=args.library,
            catalog=_catalog_from_args(args),
            out_link=args.out_link,
            nix=_nix(args),
            progress=progress,
            on_rendered=lambda r: _show_rendered(r, args),
        )
    _print_closure(done.build.closure(), args.json)
    return 0


def _print_closure(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(data)
    else:
        for key in ("toplevel", "init", "initrd", "config_dir"):
            print(f"{key}={data.get(key) or ''}")
        if data.get("kernel_params"):
            print(f"kernel_params={' '.join(data['kernel_params'])}")
