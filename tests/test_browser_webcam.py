"""The Webcam page in a real browser: the real app, headless Chromium, and Chromium's fake camera playing a real clip.

Chromium plays tests/media/clip.y4m (640x480, 30 frames/s, a man doing jumping jacks) as its webcam
(``--use-fake-device-for-media-stream --use-file-for-fake-video-capture``) and grants it without asking
(``--use-fake-ui-for-media-stream``). The picture goes over WebRTC to the app on 127.0.0.1, is analysed there and
comes back; the test reads the returned frames' pixels in the page, the live chart's data, the figures shown, the
browser's own per-frame timing, and a recording's downloads. The live exercise count is read with jacks5.y4m as the
camera (one real jumping jack looped, tests/media/README.md).

Run: ``.venv/bin/python -m pytest tests/test_browser_webcam.py -q``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from browser_support import (  # noqa: F401 - the *_fixture names register the app_url and playwright fixtures
    AppServer,
    app_url_fixture,
    assert_no_exception,
    full_page_screenshot,
    launch_chromium,
    playwright_fixture,
    upload_files,
)
from playwright.sync_api import Browser, Frame, Page, Playwright, expect
from playwright.sync_api import Error as PlaywrightError

from analysis.engine import PoseEngine, PoseSettings
from analysis.exports import ANGLE_COLUMNS, SUMMARY_FORMAT
from analysis.live import DEFAULT_LIVE_ANGLES
from analysis.result import CAMERA, ClipResult
from analysis.tables import LANDMARK_COLUMNS
from analysis.templates import PoseTemplate
from analysis.video_io import read_frames

pytestmark = pytest.mark.browser

T = TypeVar("T")
SCREENSHOT = Path("/tmp/webcam.png")
COMPONENT = 'iframe[title="streamlit_webrtc.component.webrtc_streamer"]'
STREAM_TIMEOUT_S = 30
CAMERA_SIZES = {(640, 480), (480, 360), (320, 240)}  # the clip's size, and Chrome's steps down from it

# The returned picture, drawn into a canvas inside the component's frame: its size and, per test, pixel counts.
READ_VIDEO = """([r, g, b, tolerance]) => {
    const video = document.querySelector('video');
    if (!video || video.readyState < 2 || !video.videoWidth) return null;
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    const context = canvas.getContext('2d');
    context.drawImage(video, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let joints = 0, background = 0;
    for (let i = 0; i < data.length; i += 4) {
        // the skeleton's joints are red (230, 30, 30); the clip itself has no such red
        if (data[i] > 150 && data[i + 1] < 100 && data[i + 2] < 100 && data[i] - data[i + 1] > 90) joints++;
        if (Math.abs(data[i] - r) <= tolerance && Math.abs(data[i + 1] - g) <= tolerance
            && Math.abs(data[i + 2] - b) <= tolerance) background++;
    }
    return {width: canvas.width, height: canvas.height, joints, background: background / (data.length / 4),
            stream: video.srcObject ? video.srcObject.id : null};
}"""
PRIVACY_BACKGROUND = [18, 18, 24, 20]  # analysis.drawing.PRIVACY_BACKGROUND, with a tolerance for the codec

# Every frame the browser shows, with its RTP timestamp (the camera's clock) and when it was presented.
WATCH_FRAMES = """() => {
    window.__frames = [];
    const video = document.querySelector('video');
    const watch = (now, meta) => { window.__frames.push([meta.rtpTimestamp, meta.presentationTime]);
                                   video.requestVideoFrameCallback(watch); };
    video.requestVideoFrameCallback(watch);
}"""

# The live panel's figures in one look at the page: its metrics by label, and the caption below them.
PANEL_FIGURES = """() => {
    const figures = {};
    for (const box of document.querySelectorAll('[data-testid="stMetric"]'))
        figures[box.querySelector('[data-testid="stMetricLabel"]').innerText.trim()] =
            box.querySelector('[data-testid="stMetricValue"]').innerText;
    const captions = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')].map(c => c.innerText);
    figures.caption = captions.find(text => text.startsWith('Camera ')) || '';
    return figures;
}"""

CHART_DATA = """plot => (plot._fullData || []).map(trace => ({
    name: trace.name, x: Array.from(trace.x || []), y: Array.from(trace.y || [], v => v === null ? NaN : v)}))"""


def fake_camera(clip: Path) -> list[str]:
    return ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}",
            "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def camera_browser(playwright: Playwright, media: Path) -> Iterator[Browser]:
    """Chromium whose webcam plays clip.y4m, granted without a prompt."""
    browser = launch_chromium(playwright, fake_camera(media / "clip.y4m"))
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(camera_browser: Browser) -> Iterator[Page]:
    context = camera_browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def open_webcam_page(page: Page, app: AppServer) -> Frame:
    """The home page, then its Webcam link, as a person would; returns the camera component's frame."""
    page.goto(app)
    expect(page.get_by_role("heading", name="PoseScope")).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="Webcam").first.click()
    expect(page.get_by_role("heading", name="Webcam", exact=True)).to_be_visible(timeout=30_000)
    handle = page.locator(COMPONENT).element_handle(timeout=30_000)
    frame = handle.content_frame() if handle else None
    assert frame is not None, "The camera component's frame is missing"
    return frame


def poll(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float, page: Page, every_ms: int = 200) -> T:
    """read() until done(value) or the time is up; the last value either way."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not done(value) and time.monotonic() < deadline:
        page.wait_for_timeout(every_ms)
        value = read()
    return value


def numbers(text: str) -> list[float]:
    found = re.findall(r"-?[\d,]*\d(?:\.\d+)?", text)
    assert found, f"no number in {text!r}"
    return [float(value.replace(",", "")) for value in found]


def number(text: str) -> float:
    return numbers(text)[0]


def chart_traces(page: Page) -> list[dict[str, Any]]:
    plot = page.get_by_test_id("stPlotlyChart").locator(".js-plotly-plot").first
    return plot.evaluate(CHART_DATA)


def returned_picture(camera: Frame) -> dict[str, Any] | None:
    return camera.evaluate(READ_VIDEO, PRIVACY_BACKGROUND)


def test_live_stream_shows_skeleton_chart_figures_and_records(page: Page, app_url: AppServer) -> None:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    camera = open_webcam_page(page, app_url)
    camera.get_by_role("button", name="Start").click()
    started = time.monotonic()

    # 1. Processed frames come back with the skeleton drawn (the clip has no pixel of the joints' red).
    picture = poll(lambda: returned_picture(camera), lambda v: bool(v and v["joints"] > 150), STREAM_TIMEOUT_S, page,
                   every_ms=100)
    first_skeleton_s = time.monotonic() - started
    assert picture and picture["joints"] > 150, \
        f"No skeleton came back within {STREAM_TIMEOUT_S} s: {picture}\nServer log:\n{app_url.log()}"
    assert (picture["width"], picture["height"]) in CAMERA_SIZES, picture
    print(f"first frame with the skeleton {first_skeleton_s:.1f} s after Start")
    assert first_skeleton_s < 10, f"the skeleton took {first_skeleton_s:.1f} s to appear"
    # Neither end was given an ICE server: nothing but this machine is contacted.
    assert any("RTCConfiguration" in text and "iceServers: Array(0)" in text for text in console), console[:20]

    # 2. The live chart updates: the four default angles, real values, new data a few times a second.
    camera.evaluate(WATCH_FRAMES)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1, timeout=10_000)
    first = poll(lambda: chart_traces(page), lambda traces: bool(traces and len(traces[0]["y"]) > 10), 10, page)
    assert first and len(first[0]["y"]) > 10, f"The live chart got no data: {first}"
    page.wait_for_timeout(1500)
    second = poll(lambda: chart_traces(page), bool, 5, page)  # not while Plotly redraws it
    assert [trace["name"] for trace in second] == list(DEFAULT_LIVE_ANGLES)
    for trace in second:
        values = np.array(trace["y"], float)
        assert np.isfinite(values).sum() > 10, f"{trace['name']}: too few measured values"
        assert ((values[np.isfinite(values)] > 0) & (values[np.isfinite(values)] <= 180)).all(), trace["name"]
    assert [t["y"] for t in first] != [t["y"] for t in second], "The live chart did not change in 1.5 s"
    assert max(second[0]["x"]) == 0 and min(second[0]["x"]) < -1, "x is not seconds ago, up to now"

    # 3. The figures shown are sane.
    page.wait_for_timeout(3000)
    # Every frame received was analysed or dropped as stale, none lost or failed: "Dropped 84 of 179" and
    # "95 frames analysed" add up, but for the frame being analysed as the figures were taken. The panel
    # refreshes twice a second, so look until one refresh is all shown.
    def counts_add_up(figures: dict[str, str]) -> bool:
        if not re.match(r"Camera [\d.]+ fps · [\d,]+ frames analysed", figures.get("caption", "")):
            return False
        (dropped_frames, received), analysed = numbers(figures["Dropped"]), numbers(figures["caption"])[1]
        return received - dropped_frames - analysed in (0, 1)

    figures = poll(lambda: page.evaluate(PANEL_FIGURES), counts_add_up, 5, page, every_ms=50)
    fps, processing, lag, dropped, caption = (figures.get(name, "") for name in
                                              ("Processed", "Processing", "Lag", "Dropped", "caption"))
    print(f"shown: {fps}, {processing}, lag {lag}, dropped {dropped}; {caption}")
    assert counts_add_up(figures), f"dropped {dropped} and {caption} do not add up to the frames received"
    assert 3 <= number(fps) <= 40, f"processed frames/s {fps}"  # about 25 on a quiet machine
    assert 1 <= number(processing) <= 150, f"processing time {processing}"
    assert 0 <= number(lag) <= 1000, f"lag {lag}"
    camera_fps, received = number(caption), numbers(dropped)[1]
    assert 10 <= camera_fps <= 40, caption
    # received counts the camera's frames since it started
    streaming_s = time.monotonic() - started - first_skeleton_s
    assert 0.5 * camera_fps * streaming_s <= received <= 1.5 * camera_fps * (time.monotonic() - started), dropped

    # 4. No growing delay: the browser's presentation time against the camera's clock stays level.
    frames = np.array(camera.evaluate("() => window.__frames"), float)
    assert len(frames) > 20, f"only {len(frames)} frames were shown in about 5 s"
    shown_s = (frames[:, 1] - frames[0, 1]) / 1000
    rtp = np.unwrap(frames[:, 0], period=2**32)  # a 32-bit clock at 90 kHz, from a random start
    delay_ms = frames[:, 1] - (rtp - rtp[0]) / 90
    early, late = np.median(delay_ms[shown_s < 1.5]), np.median(delay_ms[shown_s > shown_s[-1] - 1.5])
    print(f"{len(frames) / shown_s[-1]:.1f} frames/s shown; delay change {late - early:+.0f} ms "
          f"over {shown_s[-1]:.1f} s")
    assert late - early < 500, f"the picture fell {late - early:.0f} ms further behind in {shown_s[-1]:.0f} s"

    # 5. A setting takes effect without restarting the stream: privacy mode blanks the person out.
    stream_id = picture["stream"]
    page.get_by_text("Privacy mode (skeleton only)").click()
    private = poll(lambda: returned_picture(camera), lambda v: bool(v and v["background"] > 0.6 and v["joints"] > 50),
                   15, page)
    assert private and private["background"] > 0.6 and private["joints"] > 50, \
        f"privacy mode did not blank the picture: {private}"
    assert private["stream"] == stream_id, "the stream was restarted"

    # 6. Record a few seconds, then the recording shows in the Video page's results view, with its downloads.
    page.get_by_role("button", name="Start recording").click()
    expect(page.get_by_role("button", name="Stop recording")).to_be_visible(timeout=10_000)
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Stop recording").click()
    expect(page.get_by_role("heading", name="Recording")).to_be_visible(timeout=20_000)
    # the live chart, and the results view's angle, speed and data-quality charts
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(4, timeout=20_000)
    expect(page.get_by_role("heading", name="Joint angles")).to_be_visible()
    expect(page.get_by_role("heading", name="Downloads")).to_be_visible()
    downloads = page.get_by_test_id("stDownloadButton")
    # exports.clip_files, as for a video; the video is recorded only when asked for (and never in privacy mode);
    # with no exercise chosen there is no reps.csv, but events.csv is always there. And a frame as a pose template.
    expect(downloads).to_have_count(7)
    expect(downloads).to_contain_text(["Landmarks CSV", "Angles CSV", "Summary JSON", "Events CSV", "TRC person 1",
                                       "Pose series (.npz)"])

    def download(label: str) -> bytes:
        with page.expect_download(timeout=30_000) as info:
            downloads.filter(has_text=label).click()
        try:
            return Path(info.value.path()).read_bytes()
        except PlaywrightError as error:
            raise AssertionError(f"The {label} download failed ({error}).\nServer log:\n{app_url.log()}") from None

    result = ClipResult.from_npz(download("Pose series (.npz)"))
    series = result.series
    assert result.source.is_camera and result.options.privacy
    assert series.frames >= 12, f"only {series.frames} frames in a 3 s recording"
    assert 2.0 < series.times_s[-1] < 6.0 and (np.diff(series.times_s) > 0).all()
    assert series.present[:, 0].mean() > 0.8, "the man was missing from most recorded frames"
    assert (series.width, series.height) in CAMERA_SIZES  # Chrome may scale its camera down when the CPU is busy
    landmarks = list(csv.reader(io.StringIO(download("Landmarks CSV").decode())))
    assert landmarks[0] == LANDMARK_COLUMNS and len(landmarks) - 1 == 33 * series.present.sum()
    angles = list(csv.reader(io.StringIO(download("Angles CSV").decode())))
    assert angles[0] == ANGLE_COLUMNS and len(angles) - 1 >= series.frames * 0.8
    summary = json.loads(download("Summary JSON"))
    assert summary["format"] == SUMMARY_FORMAT and summary["source"] == {"name": CAMERA, "kind": "camera"}
    assert summary["counts"]["frames"] == series.frames
    # The analysis speed is the recorded frames' own processing time, not the rate the camera sent them at.
    assert 0 < result.elapsed_s < series.times_s[-1] and summary["timing"]["frames_per_s"] > 10

    full_page_screenshot(page, SCREENSHOT)
    assert_no_exception(page)
    camera.get_by_role("button", name="Stop").click()


@pytest.fixture
def jacks_page(playwright: Playwright, media: Path) -> Iterator[Page]:
    """A tab in a Chromium whose webcam plays jacks5.y4m: one real jumping jack of the Sports2D demo, looped (five
    in the file, and Chromium loops the file), so a jack comes every 1.3 s for as long as the camera runs."""
    browser = launch_chromium(playwright, fake_camera(media / "jacks5.y4m"))
    try:
        yield browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    finally:
        browser.close()


def test_the_exercise_in_the_address_is_counted_live(jacks_page: Page, app_url: AppServer) -> None:
    """/webcam?exercise=jumping_jack, as a bookmark opens it: the picker shows the exercise, and once the camera runs
    the Reps metric grows, a rep for each jack of the looped clip."""
    page = jacks_page
    page.goto(f"{app_url}/webcam?exercise=jumping_jack")
    expect(page.get_by_role("heading", name="Webcam", exact=True)).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stSidebar").get_by_role("combobox", name="Exercise")).to_have_value("Jumping jack")
    expect(page.get_by_role("heading", name="Jumping jack")).to_be_visible()
    figures = poll(lambda: page.evaluate(PANEL_FIGURES), lambda shown: "Reps" in shown, 10, page)
    assert figures.get("Reps") == "0", figures  # there before the camera starts
    camera = page.locator(COMPONENT).element_handle(timeout=30_000).content_frame()
    camera.get_by_role("button", name="Start").click()

    def reps() -> int:
        shown = page.evaluate(PANEL_FIGURES).get("Reps")
        return int(shown) if shown and shown.isdigit() else -1

    first = poll(reps, lambda count: count >= 2, 45, page)
    assert first >= 2, f"no reps counted in 45 s: {page.evaluate(PANEL_FIGURES)}\nServer log:\n{app_url.log()}"
    started = time.monotonic()
    later = poll(reps, lambda count: count >= first + 5, 20, page)
    grew_s = time.monotonic() - started
    print(f"Reps {first} → {later} in {grew_s:.1f} s (a jack every 1.3 s)")
    assert later >= first + 5, f"the count stalled at {later}"
    # Five more reps span at least four whole jacks (the window starts anywhere within one): double counting would
    # take half that.
    assert grew_s > 4 * 1.2, "more reps than jacks"
    assert page.evaluate(PANEL_FIGURES).get("Stage") in ("up", "down")
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    assert page.url.endswith("/webcam?exercise=jumping_jack")
    assert_no_exception(page)
    camera.get_by_role("button", name="Stop").click()


def test_a_pose_template_is_matched_live_and_a_bad_file_is_refused(page: Page, app_url: AppServer, media: Path,
                                                                   tmp_path: Path) -> None:
    """The template is the man's own pose at the top of a jump (clip frame 18, arms overhead): as the looped clip
    plays, the Match metric passes through high values at each jack's top and low ones between."""
    bad = tmp_path / "notes.json"
    bad.write_text('{"name": "not a template"}')
    rgb = next(rgb for i, _, rgb in read_frames(media / "clip.y4m") if i == 18)
    with PoseEngine(PoseSettings("full")) as engine:
        pose = engine.detect(rgb)
    star = tmp_path / "star.json"
    star.write_text(PoseTemplate.from_pose(pose.pixels[0], pose.visibility[0], "star").to_json())

    camera = open_webcam_page(page, app_url)
    upload_files(page, bad)
    expect(page.get_by_test_id("stAlert").filter(has_text="notes.json")).to_contain_text(
        "not a PoseScope pose template", timeout=15_000)
    upload_files(page, star)
    expect(page.get_by_test_id("stAlert").filter(has_text="notes.json")).to_have_count(0, timeout=15_000)
    camera.get_by_role("button", name="Start").click()

    matches: list[float] = []

    def match() -> list[float]:
        shown = page.evaluate(PANEL_FIGURES).get("Match", "")
        if shown.endswith("%"):
            matches.append(number(shown))
        return matches

    poll(match, lambda seen: len(seen) > 10 and max(seen) > 70 and min(seen) < 40, 45, page, every_ms=250)
    print(f"Match: {len(matches)} readings, {min(matches):.0f} to {max(matches):.0f} %")
    assert len(matches) > 10 and max(matches) > 70 and min(matches) < 40, matches
    assert_no_exception(page)
    camera.get_by_role("button", name="Stop").click()


def test_a_denied_camera_says_what_to_do(playwright: Playwright, app_url: AppServer, media: Path) -> None:
    browser = launch_chromium(playwright, ["--use-fake-device-for-media-stream", "--deny-permission-prompts",
                                           f"--use-file-for-fake-video-capture={media / 'clip.y4m'}"])
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        camera = open_webcam_page(page, app_url)
        camera.get_by_role("button", name="Start").click()
        # The widget shows the browser's error; the page says what it means and what to do.
        expect(camera.get_by_role("alert")).to_contain_text("NotAllowedError", timeout=15_000)
        page.get_by_text("Camera not starting? What the messages mean").click()
        advice = page.get_by_test_id("stExpanderDetails")
        expect(advice).to_contain_text("NotAllowedError: Permission denied")
        expect(advice).to_contain_text("Allow it (the camera icon in the address bar")
        expect(page.get_by_role("button", name="Start recording")).to_be_disabled()
        assert_no_exception(page)
    finally:
        browser.close()
