"""`nix build --json`: one object per installable built.

- Every version: `[{"drvPath": ..., "outputs": {"out": ..., "dev": ...}}]`.
- Nix 2.8 lists only the outputs it was asked for (the default, `out`); later versions
  list every output built.
- Nix 2.26 adds `startTime`/`stopTime` (seconds; absent again in 2.34).
- With `--dry-run` (or an output not yet known, e.g. content-addressed) an output may be
  missing or null: such a result has no path for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from nixlayer.errors import NixOutputError
from nixlayer.nix.nixjson._json import expect, load, optional

WHAT = "nix build --json"


@dataclass(frozen=True)
class Built:
    drv_path: str | None
    outputs: dict[str, str]  # output name -> store path, for the outputs that have one
    start_time: int | None = None
    stop_time: int | None = None


def parse(text: str) -> list[Built]:
    items = expect(load(text, WHAT), list, WHAT)
    out = []
    for i, raw in enumerate(items):
        what = f"{WHAT}[{i}]"
        item = expect(raw, dict, what)
        outputs = expect(item.get("outputs", {}), dict, f"{what}.outputs")
        paths = {
            expect(name, str, f"{what}.outputs"): expect(path, str, f"{what}.outputs.{name}")
            for name, path in outputs.items()
            if path is not None
        }
        out.append(
            Built(
                drv_path=optional(item, "drvPath", str, what),
                outputs=paths,
                start_time=optional(item, "startTime", int, what),
                stop_time=optional(item, "stopTime", int, what),
            )
        )
    return out


def out_path(text: str, output: str = "out") -> str:
    """The store path of the first installable's `output`."""
    built = parse(text)
    if not built or output not in built[0].outputs:
        raise NixOutputError(WHAT, f"no {output!r} output path in {text[:200]!r}")
    return built[0].outputs[output]
