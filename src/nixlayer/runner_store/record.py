"""What DIR was seeded from: DIR/.nixlayer/image.json, written atomically.

`image` is the last image seeded (as given, its ID, tags and digests), `paths`
its store paths with the narHash the image's own database declares, and
`installed` every path nixlayer ever copied into DIR with the hash it verified
then. A job that rewrites a path and its database entry (`nix-store --load-db`)
passes `nix store verify`, but no longer matches `installed`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nixlayer import safeload
from nixlayer import strictjson as sj
from nixlayer.errors import InputError, NixlayerError
from nixlayer.fsutil import state_dir, write_files_atomically

RECORD = "image.json"
_DIGEST_REF = re.compile(r"@(sha256:[0-9a-f]{64})$")
_ID = re.compile(r"^(sha256:)?([0-9a-f]{64})$")


@dataclass
class ImageRecord:
    reference: str  # as given to seed: a tag, name@digest, an ID, or an archive path
    image_id: str | None = None  # docker's ID (when seeded with --image)
    config_digest: str = ""  # sha256 of the image config in the archive
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    layers_verified: bool = False  # --full-verify checked every layer's digest
    seeded_at: str = ""
    path_count: int = 0

    def matches(self, ref: str) -> bool:
        """Does a runner's `image = ref` name this image? By digest or ID when it
        carries one; a tag only when it is exactly what was seeded (tags move)."""
        if ref == self.reference:
            return True
        ids = {i for i in (self.image_id, self.config_digest) if i}
        m = _DIGEST_REF.search(ref)
        if m:
            return any(d.endswith("@" + m.group(1)) for d in self.repo_digests) or (
                m.group(1) in ids
            )
        m = _ID.match(ref)
        if m:
            return "sha256:" + m.group(2) in ids
        return ref in self.repo_tags


@dataclass
class SeedState:
    image: ImageRecord | None = None
    paths: dict[str, str] = field(default_factory=dict)  # the image's paths -> its narHash
    installed: dict[str, str] = field(default_factory=dict)  # copied by nixlayer -> narHash

    def to_json(self) -> dict[str, Any]:
        return {
            "image": asdict(self.image) if self.image else None,
            "paths": dict(sorted(self.paths.items())),
            "installed": dict(sorted(self.installed.items())),
        }


def path(d: Path) -> Path:
    return state_dir(d) / RECORD


class DamagedRecordError(InputError):
    """DIR/.nixlayer/image.json is not what nixlayer writes (edited, truncated, tampered)."""

    def __init__(self, p: Path, why: str) -> None:
        super().__init__("--dir", f"{p} is damaged ({why}); move it aside and seed again")


# The file's shape, strictly: a string is not a list of tags, a bool is not a count,
# and no field is unknown.
_IMAGE_FIELDS = frozenset(ImageRecord.__dataclass_fields__)


def _image(v: Any) -> ImageRecord:
    d = sj.obj(v, "image", _IMAGE_FIELDS)
    return ImageRecord(
        reference=sj.string(sj.get(d, "reference", "image"), "image.reference"),
        image_id=sj.opt_string(d.get("image_id"), "image.image_id"),
        config_digest=sj.string(d.get("config_digest", ""), "image.config_digest"),
        repo_tags=sj.strings(d.get("repo_tags", []), "image.repo_tags"),
        repo_digests=sj.strings(d.get("repo_digests", []), "image.repo_digests"),
        layers_verified=sj.boolean(d.get("layers_verified", False), "image.layers_verified"),
        seeded_at=sj.string(d.get("seeded_at", ""), "image.seeded_at"),
        path_count=sj.integer(d.get("path_count", 0), "image.path_count"),
    )


def _state(v: Any) -> SeedState:
    d = sj.obj(v, "", ("image", "paths", "installed"))
    image = d.get("image")
    return SeedState(
        image=None if image is None else _image(image),
        paths=sj.string_map(d.get("paths", {}), "paths"),
        installed=sj.string_map(d.get("installed", {}), "installed"),
    )


def load(d: Path) -> SeedState:
    p = path(d)
    if p.is_symlink():
        raise DamagedRecordError(p, "a symlink, which nixlayer never writes")
    if not p.exists():
        return SeedState()
    try:
        return _state(safeload.parse_json(safeload.read_text(p, "--dir"), "--dir"))
    except InputError as exc:
        raise DamagedRecordError(p, exc.message) from None
    except ValueError as exc:
        raise DamagedRecordError(p, str(exc)) from None


def save(d: Path, state: SeedState) -> None:
    write_files_atomically({path(d): json.dumps(state.to_json(), indent=1) + "\n"})


@dataclass(frozen=True)
class Inspected:
    image_id: str
    repo_tags: list[str]
    repo_digests: list[str]


def inspect_image(ref: str) -> Inspected:
    """Resolve `ref` (a tag or a digest) to the image the local engine holds.
    Seeding then saves that ID, so a tag that moves meanwhile cannot mix images."""
    if shutil.which("docker") is None:
        raise InputError(
            "--image", "no docker CLI here: pass --image-archive FILE (docker save or OCI)"
        )
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .}}", ref],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["docker image inspect failed"])[-1]
        raise InputError("--image", f"{ref}: {last}")
    data = json.loads(proc.stdout)
    return Inspected(
        image_id=str(data.get("Id", "")),
        repo_tags=[str(t) for t in data.get("RepoTags") or []],
        repo_digests=[str(t) for t in data.get("RepoDigests") or []],
    )


def docker_save(image_id: str, target: Path) -> Path:
    out = target / "image.tar"
    proc = subprocess.run(
        ["docker", "save", "-o", str(out), image_id],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["docker save failed"])[-1]
        raise NixlayerError(f"docker save {image_id} failed: {last}")
    return out
