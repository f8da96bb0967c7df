"""No network call: every request a PoseScope page makes goes to the app's own origin, whatever the page does.

One browser context walks through the whole app as a person would (Home; Image with bus.jpg analysed; Video with
clip.mp4 analysed; Webcam with Chromium's fake camera streaming), then opens every page's URL directly. Everything the
pages and their frames ask for is recorded: HTTP requests (page- and context-level: iframes and workers included),
WebSockets, workers' and any service worker's scripts, frame navigations, the favicon links in each page's <head>,
and the ICE servers handed to any RTCPeerConnection (STUN and TURN are not HTTP, so no request event would show
them). Only ``127.0.0.1:<port>`` of the app and ``data:``/``blob:``/``about:`` URLs are allowed; the test fails
listing every other URL.

Chromium's own background traffic (update checks, safe browsing and the like) is not the app's: CHROMIUM_ARGS turn it
off, and it never shows as a page or context request anyway.

Run: ``.venv/bin/python -m pytest tests/test_browser_offline.py -q``.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_support import (  # noqa: F401 - the *_fixture names register the app_url, browser and page fixtures
    AppServer,
    app_url_fixture,
    assert_no_exception,
    browser_fixture,
    page_fixture,
    playwright_fixture,
    upload_files,
    wait_for_app_idle,
)
from fetch_media import CACHE_DIR
from playwright.sync_api import Frame, Page, expect

pytestmark = pytest.mark.browser

# Chromium's fake camera plays the test clip (the ``media`` fixture makes sure it is there before the camera starts).
CHROMIUM_EXTRA_ARGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                       f"--use-file-for-fake-video-capture={CACHE_DIR / 'clip.y4m'}")
COMPONENT = 'iframe[title="streamlit_webrtc.component.webrtc_streamer"]'
LOCAL_SCHEMES = {"data", "blob", "about"}
PAGES = {"": "PoseScope", "image": "Image", "video": "Video", "webcam": "Webcam", "compare": "Compare"}  # path: heading
VIDEO_RESULT_TIMEOUT_MS = 180_000
IMAGE_RESULT_TIMEOUT_MS = 60_000
STREAM_TIMEOUT_MS = 30_000

# In every frame, before any of its scripts: note the ICE servers any RTCPeerConnection is given.
RECORD_ICE_SERVERS = """(() => {
    const Original = window.RTCPeerConnection;
    if (!Original || Original.__posescopeWrapped) return;
    window.__iceServerUrls = [];
    window.__peerConnections = 0;
    const Wrapped = function (config, ...rest) {
        window.__peerConnections++;
        for (const server of (config && config.iceServers) || []) {
            const urls = Array.isArray(server.urls) ? server.urls : [server.urls || server.url];
            window.__iceServerUrls.push(...urls.filter(Boolean).map(String));
        }
        return new Original(config, ...rest);
    };
    Wrapped.prototype = Original.prototype;
    Object.setPrototypeOf(Wrapped, Original);
    Wrapped.__posescopeWrapped = true;
    window.RTCPeerConnection = Wrapped;
})()"""
FAVICON_LINKS = "() => [...document.querySelectorAll('link[rel~=\"icon\"]')].map(link => link.href)"
VIDEO_PLAYING = """async () => {
    const video = document.querySelector('video');
    if (!video || video.readyState < 2 || !video.videoWidth) return false;
    const start = video.currentTime;
    await new Promise(resolve => setTimeout(resolve, 500));
    return video.currentTime > start;
}"""


class Recorder:
    """Every URL the pages of one browser context ask for, with what asked for it."""

    def __init__(self, page: Page) -> None:
        self.seen: list[tuple[str, str]] = []
        context = page.context
        context.add_init_script(RECORD_ICE_SERVERS)
        context.on("request", lambda request: self.note(f"context request ({request.resource_type})", request.url))
        context.on("serviceworker", lambda worker: self.note("service worker", worker.url))
        context.on("page", self.watch)
        self.watch(page)

    def watch(self, page: Page) -> None:
        page.on("request", lambda request: self.note(f"request ({request.resource_type})", request.url))
        page.on("websocket", lambda socket: self.note("websocket", socket.url))
        page.on("worker", lambda worker: self.note("worker", worker.url))
        page.on("framenavigated", lambda frame: self.note("frame", frame.url))

    def note(self, kind: str, url: str) -> None:
        self.seen.append((kind, url))

    def snapshot(self, page: Page) -> None:
        """What the DOM of each frame points at without a request event: its favicon links, its ICE servers."""
        for frame in page.frames:
            try:
                icons = frame.evaluate(FAVICON_LINKS)
                ice = frame.evaluate("() => window.__iceServerUrls || []")
            except Exception:  # noqa: BLE001 - a frame that went away meanwhile has nothing more to say
                continue
            self.seen += [("favicon link", url) for url in icons] + [("ICE server", url) for url in ice]

    def foreign(self, app_url: str) -> list[str]:
        """Each URL, once, that is neither the app's own origin nor a local scheme, with how it was seen."""
        own = urlsplit(app_url).netloc
        bad: dict[str, list[str]] = {}
        for kind, url in self.seen:
            parts = urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            if parts.scheme in {"http", "https", "ws", "wss"} and parts.netloc == own:
                continue
            bad.setdefault(url, []).append(kind)
        return [f"{url} ({', '.join(f'{kind} ×{kinds.count(kind)}' for kind in sorted(set(kinds)))})"
                for url, kinds in bad.items()]


def wait_heading(page: Page, name: str) -> None:
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible(timeout=30_000)
    wait_for_app_idle(page)


def go_by_sidebar(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    wait_heading(page, title)


def camera_frame(page: Page) -> Frame:
    handle = page.locator(COMPONENT).element_handle(timeout=30_000)
    frame = handle.content_frame() if handle else None
    assert frame is not None, "The camera component's frame is missing"
    return frame


def test_no_page_contacts_any_host_but_the_app(media: Path, page: Page, app_url: AppServer) -> None:
    assert (media / "clip.y4m") == CACHE_DIR / "clip.y4m"
    recorder = Recorder(page)
    started = time.monotonic()
    try:
        walk_through_the_app(page, app_url, media, recorder)
    except Exception as error:  # a page that failed to load: the server's log says why (the UI hides tracebacks)
        error.add_note("Other hosts contacted so far:\n" + ("\n".join(recorder.foreign(app_url)) or "none"))
        error.add_note(f"Server log:\n{app_url.log()}")
        raise
    print(f"\n{len(recorder.seen)} requests and links recorded in {time.monotonic() - started:.1f} s")
    assert any(kind.startswith("request") and urlsplit(url).netloc == urlsplit(app_url).netloc
               for kind, url in recorder.seen), "nothing was recorded: the recorder is broken"
    foreign = recorder.foreign(app_url)
    assert not foreign, "PoseScope's pages contacted another host:\n" + "\n".join(foreign)


def walk_through_the_app(page: Page, app_url: AppServer, media: Path, recorder: Recorder) -> None:
    """Every page, its input given and its results shown, then every page's URL opened directly."""
    # Home, as it opens.
    page.goto(app_url)
    wait_heading(page, "PoseScope")
    recorder.snapshot(page)

    # Image: a photo analysed, its annotated picture shown.
    go_by_sidebar(page, "Image")
    upload_files(page, media / "bus.jpg")
    picture = page.locator('[data-testid="stImage"] img').first
    expect(picture).to_be_visible(timeout=IMAGE_RESULT_TIMEOUT_MS)
    expect(picture).to_have_js_property("complete", True, timeout=IMAGE_RESULT_TIMEOUT_MS)
    wait_for_app_idle(page)
    recorder.snapshot(page)

    # Video: a clip analysed to the end (its downloads are offered).
    go_by_sidebar(page, "Video")
    upload_files(page, media / "clip.mp4")
    expect(page.get_by_role("heading", name="Downloads")).to_be_visible(timeout=VIDEO_RESULT_TIMEOUT_MS)
    wait_for_app_idle(page)
    recorder.snapshot(page)

    # Webcam: the fake camera started, its frames coming back over WebRTC and playing.
    go_by_sidebar(page, "Webcam")
    camera = camera_frame(page)
    camera.get_by_role("button", name="Start").click()
    deadline = time.monotonic() + STREAM_TIMEOUT_MS / 1000
    while not (playing := camera.evaluate(VIDEO_PLAYING)) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert playing, f"The camera's stream did not play within {STREAM_TIMEOUT_MS / 1000:.0f} s"
    assert camera.evaluate("() => window.__peerConnections") >= 1, "the ICE servers' recorder missed the connection"
    page.wait_for_timeout(1500)  # the live chart and figures refresh in the meantime
    recorder.snapshot(page)
    camera.get_by_role("button", name="Stop").click()

    # Every page in the navigation, today's and any added later, opened from its own URL as a bookmark or a reload
    # would open it.
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    pages = {urlsplit(href).path.strip("/"): name.strip().splitlines()[-1] for href, name in  # after the icon's name
             zip(links.evaluate_all("links => links.map(link => link.href)"), links.all_inner_texts(), strict=True)}
    assert set(PAGES) <= set(pages), f"the navigation lacks some of {sorted(PAGES)}: {pages}"
    for path, title in pages.items():
        page.goto(f"{app_url}/{path}")
        wait_heading(page, PAGES.get(path, title))
        if path == "webcam":
            camera_frame(page).get_by_role("button", name="Start").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        recorder.snapshot(page)
    assert_no_exception(page)
