"""Where the pose model bundles live, and the check that they are the ones we built."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Literal, get_args

Complexity = Literal["lite", "full", "heavy"]
COMPLEXITIES: tuple[Complexity, ...] = get_args(Complexity)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
# The build script travels with the bundles (in a checkout and in an installed copy), so this works in both.
REBUILD_COMMAND = f"python {MODELS_DIR / 'build_models.py'}"


class ModelError(RuntimeError):
    """A model bundle is missing or damaged; the message names the file and the fix."""


def bundle_path(complexity: Complexity) -> Path:
    return MODELS_DIR / f"pose_landmarker_{complexity}.task"


def _expected_checksums() -> dict[str, str]:
    lines = (MODELS_DIR / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, mtime_ns: int, size: int) -> str:
    """The file's digest, computed again only when the file changes (the home page asks on every visit)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bundle_status(complexity: Complexity) -> str | None:
    """None when the bundle is present and intact, else a sentence saying what is wrong."""
    path = bundle_path(complexity)
    if not path.is_file():
        return f"The {complexity} model bundle {path.name} is missing from {MODELS_DIR}."
    expected = _expected_checksums().get(path.name)
    stat = path.stat()
    if expected is None or _sha256(path, stat.st_mtime_ns, stat.st_size) != expected:
        return f"The {complexity} model bundle {path.name} is damaged (its checksum does not match models/SHA256SUMS)."
    return None


@functools.cache
def verified_bundle(complexity: Complexity) -> Path:
    """The bundle's path, checked once per process; ModelError says how to rebuild a bad one."""
    if complexity not in COMPLEXITIES:
        raise ModelError(f"Unknown model complexity {complexity!r}; choose one of {', '.join(COMPLEXITIES)}.")
    problem = bundle_status(complexity)
    if problem:
        raise ModelError(f"{problem} Rebuild the bundles with: {REBUILD_COMMAND}")
    return bundle_path(complexity)
