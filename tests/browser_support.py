"""Reusable pieces for PoseScope's browser tests: the real app on a free port, and headless Chromium.

Used by ``tests/test_browser_*.py``::

    from browser_support import launch_chromium, streamlit_server

    with streamlit_server() as base_url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto(f"{base_url}/image")

Nothing here downloads anything: Chromium is Debian's (``/usr/bin/chromium``, or ``$CHROMIUM_PATH``), installed by
``.ci/run``. A missing browser is a test FAILURE with that advice, never a skip.

The fixtures ``app_url`` (one server per test module), ``browser`` (one Chromium per test module) and ``page``
(a fresh context and tab per test) are defined here; a test file imports them by name
(``from browser_support import app_url, browser, page``) so pytest sees them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "dashboard.py"

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SERVER_START_TIMEOUT_S = 60.0
LOG_TAIL_CHARS = 6000


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log_path: Path) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError as error:
        return f"(server log unreadable: {error})"
    if len(text) > LOG_TAIL_CHARS:
        text = "…" + text[-LOG_TAIL_CHARS:]
    return text or "(server log is empty)"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - fixed http://127.0.0.1 URL
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's whole process group, SIGKILL it if it lingers: no orphan servers."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def streamlit_server(entry: str = ENTRY, timeout_s: float = SERVER_START_TIMEOUT_S,
                     extra_args: Sequence[str] = ()) -> Iterator[str]:
    """Run the real app (``python -m streamlit run``) on a free port; yield its base URL, e.g. http://127.0.0.1:PORT.

    Waits for ``/_stcore/health`` up to ``timeout_s``; fails with the server's log if it does not come up or dies.
    The server runs in its own process group, which is terminated on exit. Its output goes to a temp log file.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_file = tempfile.NamedTemporaryFile(prefix="posescope-streamlit-", suffix=".log", delete=False)  # noqa: SIM115
    log_path = Path(log_file.name)
    command = [sys.executable, "-m", "streamlit", "run", entry, "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", *extra_args]
    env = os.environ | {"PYTHONUNBUFFERED": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    process = subprocess.Popen(command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    log_file.close()
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(f"{base_url}/_stcore/health"):
            if process.poll() is not None:
                pytest.fail(f"The Streamlit server exited with code {process.returncode} before it was healthy.\n"
                            f"Command: {' '.join(command)}\nServer log ({log_path}):\n{_log_tail(log_path)}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"The Streamlit server did not answer {base_url}/_stcore/health within {timeout_s:.0f} s."
                            f"\nCommand: {' '.join(command)}\nServer log ({log_path}):\n{_log_tail(log_path)}",
                            pytrace=False)
            time.sleep(0.25)
        yield base_url
    finally:
        _stop(process)
    with contextlib.suppress(OSError):
        log_path.unlink()


def require_chromium(path: str = CHROMIUM_PATH) -> str:
    """The Chromium executable, or a test failure (never a skip) saying how to get it."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"Chromium is not installed at {path}. Browser tests need Debian's Chromium: run `.ci/run`, "
                    "which installs it (or set CHROMIUM_PATH to an existing Chromium). "
                    "Do not run `playwright install`: there is no network.", pytrace=False)
    return path


def launch_chromium(playwright: Playwright, extra_args: Sequence[str] = (), **launch_options: object) -> Browser:
    """Headless Chromium from ``CHROMIUM_PATH`` with quiet, offline-friendly flags plus ``extra_args``.

    The webcam test adds e.g. ``--use-fake-device-for-media-stream``, ``--use-file-for-fake-video-capture=clip.y4m``
    and ``--use-fake-ui-for-media-stream``.
    """
    executable = require_chromium()
    return playwright.chromium.launch(executable_path=executable, headless=True,
                                      args=[*CHROMIUM_ARGS, *extra_args], **launch_options)


# --- fixtures: import them by name into a test module -------------------------------------------------------------


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    """The base URL of one real PoseScope server shared by the tests of a module."""
    with streamlit_server() as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium shared by the tests of a module."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (own cookies, own Streamlit session) and tab for each test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()
