"""Reusable pieces for PoseScope's browser tests: the real app on a free port, and headless Chromium.

Used by ``tests/test_browser_*.py``::

    from browser_support import launch_chromium, streamlit_server

    with streamlit_server() as base_url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto(f"{base_url}/image")

Nothing here downloads anything: Chromium is Debian's (``/usr/bin/chromium``, or ``$CHROMIUM_PATH``), installed by
``.ci/run``. A missing browser is a test FAILURE with that advice, never a skip.

The fixtures ``app_url`` (one server per test module), ``playwright`` and ``browser`` (one Playwright and one
Chromium per test module) and ``page`` (a fresh context and tab per test) are defined here as ``app_url_fixture``,
``playwright_fixture``, ``browser_fixture`` and ``page_fixture``; a test file imports those names so pytest sees
them, and its tests ask for ``app_url``, ``playwright``, ``browser``, ``page``.
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
    import re

    from playwright.sync_api import Browser, Locator, Page, Playwright

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
PORT_ATTEMPTS = 3
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


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, timeout_s: float) -> str | None:
    """None once ``/_stcore/health`` answers; otherwise why not (the server exited, or the time ran out)."""
    deadline = time.monotonic() + timeout_s
    while not _healthy(f"{base_url}/_stcore/health"):
        if process.poll() is not None:
            return f"The Streamlit server exited with code {process.returncode} before it was healthy."
        if time.monotonic() > deadline:
            return f"The Streamlit server did not answer {base_url}/_stcore/health within {timeout_s:.0f} s."
        time.sleep(0.25)
    return None


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


class AppServer(str):
    """The base URL of a running app (a ``str``, e.g. ``http://127.0.0.1:PORT``) that can also show its log."""

    log_path: Path

    def __new__(cls, base_url: str, log_path: Path) -> AppServer:
        server = super().__new__(cls, base_url)
        server.log_path = log_path
        return server

    def log(self) -> str:
        """The tail of the server's stdout and stderr: tracebacks hidden from the page (showErrorDetails) are here."""
        return _log_tail(self.log_path)


@contextlib.contextmanager
def streamlit_server(entry: str = ENTRY, timeout_s: float = SERVER_START_TIMEOUT_S,
                     extra_args: Sequence[str] = ()) -> Iterator[AppServer]:
    """Run the real app (``python -m streamlit run``) on a free port; yield its base URL as an ``AppServer``.

    Waits for ``/_stcore/health`` up to ``timeout_s``; fails with the server's log if it does not come up or dies.
    The server runs in its own process group, which is terminated on exit. Its output goes to a temp log file, removed
    on exit; if the body raised, the log's tail is added to the exception as a note (pytest prints it).
    """
    env = os.environ | {"PYTHONUNBUFFERED": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "streamlit", "run", entry, "--server.port", str(port),
                   "--server.address", "127.0.0.1", "--server.headless", "true", *extra_args]
        with tempfile.NamedTemporaryFile(prefix="posescope-streamlit-", suffix=".log", delete=False) as log_file:
            log_path = Path(log_file.name)
            process = subprocess.Popen(command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            problem = _wait_healthy(process, base_url, timeout_s)
        except BaseException:  # e.g. Ctrl-C while waiting: leave no server behind
            _stop(process)
            raise
        if problem is None:
            break
        _stop(process)
        log = _log_tail(log_path)
        with contextlib.suppress(OSError):
            log_path.unlink()
        if attempt < PORT_ATTEMPTS and ("is not available" in log or "already in use" in log):  # port taken meanwhile
            continue
        pytest.fail(f"{problem}\nCommand: {' '.join(command)}\nServer log:\n{log}", pytrace=False)
    try:
        try:
            yield AppServer(base_url, log_path)
        except Exception as error:  # the body failed: the server's side of the story goes with the error
            _stop(process)
            error.add_note(f"Streamlit server log ({base_url}):\n{_log_tail(log_path)}")
            raise
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


# --- page helpers ----------------------------------------------------------------------------------------------------

APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
UPLOAD_INPUT = '[data-testid="stFileUploader"] input[type="file"]'


def wait_for_app_idle(page: Page, timeout_ms: float = 60_000) -> None:
    """Wait until the script run is over (Streamlit marks its root with ``data-test-script-state``).

    Only meaningful once the run you care about has started, e.g. after its first output is on the page.
    """
    page.locator(APP_IDLE).wait_for(state="attached", timeout=timeout_ms)


def upload_files(page: Page, *paths: Path | str, uploader: int = 0, timeout_ms: float = 30_000) -> None:
    """Choose files in a ``st.file_uploader`` through its real ``<input type=file>`` (no drag-and-drop emulation)."""
    file_input = page.locator(UPLOAD_INPUT).nth(uploader)
    file_input.wait_for(state="attached", timeout=timeout_ms)
    file_input.set_input_files([str(path) for path in paths])


def choose_option(page: Page, selectbox: Locator, name: str | re.Pattern[str], attempts: int = 3) -> None:
    """Pick an option of a ``st.selectbox``. A rerun that lands just after the click (a background job finishing)
    closes the menu it opened, as it would under a user's hand; the menu is opened again then, a few times at most."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    for _ in range(attempts):
        selectbox.get_by_role("combobox").click()
        with contextlib.suppress(PlaywrightTimeoutError):
            page.get_by_role("listbox").wait_for(state="visible", timeout=5_000)
            page.get_by_role("option", name=name).click(timeout=5_000)
            return
        wait_for_app_idle(page)
    raise AssertionError(f"The selectbox's menu did not stay open to choose {name!r} ({attempts} tries)")


def assert_no_exception(page: Page) -> None:
    """No Streamlit exception box and no Python traceback text anywhere on the page."""
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"Streamlit shows an exception: {exceptions.first.inner_text()[:2000]}"
    text = page.locator("body").inner_text()
    assert "Traceback (most recent call last)" not in text, f"A traceback is on the page:\n{text[:4000]}"


def screenshot_path(name: str) -> Path:
    """Where a test saves a screenshot: the README's own picture in docs/ when POSESCOPE_DOCS_SCREENSHOTS=1 (to
    refresh it on purpose), else a scratch folder, so that a test run never changes the repository."""
    if os.environ.get("POSESCOPE_DOCS_SCREENSHOTS") == "1":
        return Path(__file__).resolve().parent.parent / "docs" / name
    folder = Path(tempfile.gettempdir()) / "posescope-screenshots"
    folder.mkdir(exist_ok=True)
    return folder / name


def full_page_screenshot(page: Page, path: Path | str, settle_ms: int = 1500) -> Path:
    """A screenshot of the whole app, not just the viewport.

    Streamlit scrolls inside its own containers, so Playwright's ``full_page=True`` alone only captures the viewport;
    the viewport is grown to the content's height for the shot, then restored.
    """
    viewport = page.viewport_size or {"width": 1400, "height": 1000}
    height = page.evaluate("""() => Math.max(document.documentElement.scrollHeight,
        ...['[data-testid="stMain"]', '[data-testid="stAppViewContainer"]', '[data-testid="stSidebarContent"]']
            .map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": viewport["width"], "height": max(int(height) + 40, viewport["height"])})
    page.wait_for_timeout(settle_ms)  # charts and data grids redraw after a resize
    path = Path(path)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(viewport)
    return path


# --- fixtures -------------------------------------------------------------------------------------------------------
#
# Import them into a test module: ``from browser_support import app_url_fixture, browser_fixture, page_fixture,
# playwright_fixture`` (``# noqa: F401``); tests then ask for ``app_url``, ``browser``, ``page`` and ``playwright``.
#
# A test module may set CHROMIUM_EXTRA_ARGS (a sequence of flags, e.g. the fake camera's) and
# BROWSER_CONTEXT_OPTIONS (keyword arguments for ``browser.new_context``, e.g. ``{"permissions": ["camera"]}``).


@pytest.fixture(scope="module", name="app_url")
def app_url_fixture() -> Iterator[AppServer]:
    """The base URL of one real PoseScope server shared by the tests of a module."""
    with streamlit_server() as base_url:
        yield base_url


@pytest.fixture(scope="module", name="playwright")
def playwright_fixture() -> Iterator[Playwright]:
    """Playwright's sync API for one test module.

    Module-scoped on purpose: while it runs, its asyncio loop counts as running in this thread, which would break
    ``asyncio.run`` in non-browser tests collected after a session-wide instance. There can be only one per thread,
    so a test needing a differently flagged Chromium calls ``launch_chromium(playwright, extra_args)`` with this.
    """
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module", name="browser")
def browser_fixture(playwright: Playwright, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """One headless Chromium shared by the tests of a module (flags: CHROMIUM_ARGS + module's CHROMIUM_EXTRA_ARGS)."""
    extra_args = tuple(getattr(request.module, "CHROMIUM_EXTRA_ARGS", ()))
    chromium = launch_chromium(playwright, extra_args)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(name="page")
def page_fixture(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (own cookies, own Streamlit session) and tab for each test."""
    options = {"viewport": {"width": 1400, "height": 1000}}
    options |= dict(getattr(request.module, "BROWSER_CONTEXT_OPTIONS", {}))
    context = browser.new_context(**options)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()
