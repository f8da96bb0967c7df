"""The review player (views/player.js, issue 10) in a real browser: the real app, model and media, headless Chromium.

The player is a Streamlit component in an open shadow root (Playwright's CSS selectors pierce it): ``.ps-player``
carries ``data-state``, ``data-frame`` (the analysed frame whose pose is drawn), ``data-time`` (its time) and
``data-shown-time`` (the mediaTime of the last video frame the browser presented). The tests read the overlay's and the
video's pixels in the page and compare them with what Python decodes from the same file (analysis.video_io).

Every test checks that no request leaves the app's origin (test_browser_offline's Recorder) and that the page throws no
JavaScript error. One server and one Chromium serve the module; each test has its own browser context (session).
Run: ``.venv/bin/python -m pytest tests/test_browser_player.py -q``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import cv2
import numpy as np
import pytest
from browser_support import (  # noqa: F401 - the *_fixture names register the playwright, browser and page fixtures
    AppServer,
    assert_no_exception,
    browser_fixture,
    page_fixture,
    playwright_fixture,
    streamlit_server,
    upload_files,
    wait_for_app_idle,
)
from playwright.sync_api import Browser, ElementHandle, Page, expect
from test_browser_offline import Recorder

from analysis.video_io import probe, read_frames

pytestmark = pytest.mark.browser

CHROMIUM_EXTRA_ARGS = ("--autoplay-policy=no-user-gesture-required",)
RESULT_TIMEOUT_MS = 240_000  # 190 frames at 960x720 and the model's first load, on a busy 2-core machine
WAIT_MS = 30_000
PROXY_TIMEOUT_MS = 60_000
JACKS5 = "jacks5.mp4"  # five jumping jacks, 190 frames at 30 fps, 960x720 (tests/media/README.md)
PRIVACY_BACKGROUND = (18, 18, 24)  # analysis/drawing.py's PRIVACY_BACKGROUND, player.js's BLANK
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".avi", ".mkv", ".ogv")

# The video's picture in a small offscreen canvas: the middle of the frame (where the jumper is), scaled down.
GRAB_X0, GRAB_X1, GRAB_W, GRAB_H = 240, 720, 96, 144

# --- in-page scripts (those starting `r =>` take the player's root element) ----------------------------------------

# The player's root, wherever its shadow root is (document.querySelector does not pierce shadow roots), or null.
FIND_PLAYER = """() => { for (const host of document.querySelectorAll('*')) {
        const found = host.shadowRoot && host.shadowRoot.querySelector('.ps-player');
        if (found) return found; }
    return null; }"""
# The results are all there and nothing is in progress: the player's poses loaded, the Downloads heading shown, no
# progress bar (analysis or review copy) and no script running.
SETTLED = f"""() => {{ const r = ({FIND_PLAYER})();
    return Boolean(r && r.dataset.state === 'ready' && !document.querySelector('[data-testid=stProgress]')
        && document.querySelector('[data-testid=stApp]').dataset.testScriptState === 'notRunning'
        && [...document.querySelectorAll('h1, h2, h3')].some(h => h.textContent.trim() === 'Downloads'));
    }}"""
# The player's attributes and its video's state, read at one moment.
STATE = """r => { const v = r.querySelector('video.ps-video');
    return {...r.dataset, frame: Number(r.dataset.frame), time: Number(r.dataset.time),
            shownTime: r.dataset.shownTime === undefined ? null : Number(r.dataset.shownTime),
            paused: v.paused, seeking: v.seeking, currentTime: v.currentTime, readyState: v.readyState,
            src: v.getAttribute('src'), currentSrc: v.currentSrc, hidden: v.hidden,
            message: r.querySelector('.ps-message').hidden ? '' : r.querySelector('.ps-message').textContent}; }"""
# The overlay canvas's pixels by kind: bone white, joint red, the blank stage's background, transparent, other; with
# the bone and joint pixels' indices (y * width + x) and their bounding box. Read in the same task as the frame shown.
OVERLAY = """r => { const c = r.querySelector('canvas.ps-overlay');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const out = {w: c.width, h: c.height, bone: 0, joint: 0, background: 0, transparent: 0, other: 0, opaque: 0,
                 skeleton: [], box: [Infinity, Infinity, -Infinity, -Infinity], frame: Number(r.dataset.frame),
                 playing: !r.querySelector('video.ps-video').paused,
                 videoTime: r.querySelector('video.ps-video').currentTime};
    for (let i = 0, p = 0; i < d.length; i += 4, p++) {
        const [red, green, blue, alpha] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
        if (alpha === 255) out.opaque++;
        if (alpha === 0) { out.transparent++; continue; }
        let kind = 'other';
        if (alpha > 200 && red > 240 && green > 240 && blue > 240) kind = 'bone';
        else if (alpha > 200 && red > 200 && green < 70 && blue < 70) kind = 'joint';
        else if (alpha === 255 && red === 18 && green === 18 && blue === 24) kind = 'background';
        out[kind]++;
        if (kind === 'bone' || kind === 'joint') {
            out.skeleton.push(p);
            const x = p % c.width, y = Math.floor(p / c.width);
            const [x0, y0, x1, y1] = out.box;
            out.box = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
        }
    }
    return out; }"""
# From now on, note in r.__history each change of the frame drawn, each presented video frame, key and click, seek
# and pause, with the time (ms): what a failure message shows of the player's recent past.
HISTORY = """r => {
    const v = r.querySelector('video.ps-video'), started = performance.now(), history = r.__history = [];
    const note = (what) => { history.push([Math.round(performance.now() - started), what, r.dataset.frame,
                                          r.dataset.shownTime, v.currentTime, v.paused]);
                             if (history.length > 200) history.shift(); };
    new MutationObserver(() => note('frame')).observe(r, {attributeFilter: ['data-frame', 'data-shown-time']});
    r.addEventListener('keydown', e => note(`key ${e.key}`), true);
    r.addEventListener('click', e => note(`click ${e.target.dataset.action || e.target.className}`), true);
    for (const event of ['seeking', 'seeked', 'play', 'pause']) v.addEventListener(event, () => note(event));
    }"""
# The video's current picture, cropped and scaled into a small canvas, as a flat RGB list.
GRAB = f"""r => {{ const v = r.querySelector('video.ps-video');
    const c = document.createElement('canvas'); c.width = {GRAB_W}; c.height = {GRAB_H};
    const ctx = c.getContext('2d'); ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(v, {GRAB_X0}, 0, {GRAB_X1 - GRAB_X0}, v.videoHeight, 0, 0, {GRAB_W}, {GRAB_H});
    const d = ctx.getImageData(0, 0, {GRAB_W}, {GRAB_H}).data, out = [];
    for (let i = 0; i < d.length; i += 4) out.push(d[i], d[i + 1], d[i + 2]);
    return out; }}"""


# The screen position of the last visible smoothed curve's point at frame `frame` of a Plotly chart; and it notes
# in window.__selected the x of the point a click then selects.
CHART_POINT = """(p, frame) => {
    window.__selected = null;
    p.on('plotly_selected', e => { if (e && e.points.length) window.__selected = e.points[0].x; });
    const index = p._fullData.map((t, i) => [t, i]).filter(([t]) => t.visible === true && t.hoverinfo !== 'skip'
        && Number.isFinite(t.y[frame])).map(([, i]) => i).pop();
    const trace = p._fullData[index], layout = p._fullLayout, box = p.getBoundingClientRect();
    return [box.left + layout.xaxis._offset + layout.xaxis.l2p(trace.x[frame]),
            box.top + layout.yaxis._offset + layout.yaxis.l2p(trace.y[frame])]; }"""


# --- fixtures --------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(browser: Browser, media: Path) -> Iterator[AppServer]:
    """The real app; closed tabs' sessions end after 1 s instead of 2 minutes, so their uploads go quickly.

    Before the tests, a session of its own analyses jacks5.mp4 and waits for the page's review copy of it (made once
    per content, for the whole server). The tests' own jacks5 sessions then start from settled results: the copy's
    arrival rebuilds the player (see the last test) and must not land in the middle of what they check."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL", "1")
        with streamlit_server() as base_url:
            env.undo()
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            try:
                warm_up = context.new_page()
                open_video_page(warm_up, base_url)
                show_results(warm_up, base_url, media / JACKS5)
            finally:
                context.close()
            yield base_url


@pytest.fixture(autouse=True)
def no_script_errors(page: Page) -> Iterator[None]:
    """No uncaught JavaScript error in the page (a player that throws stops drawing)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == [], f"JavaScript errors in the page: {errors}"


@pytest.fixture(autouse=True)
def stays_on_the_apps_origin(page: Page, app: AppServer) -> Iterator[Recorder]:
    """Test 7, around every test: each request, socket, worker and frame of the whole flow (upload, playing,
    seeking, measuring, downloading) goes to the app's own origin; nothing else is contacted."""
    recorder = Recorder(page)
    yield recorder
    if not page.is_closed():
        recorder.snapshot(page)
    own = urlsplit(app).netloc
    assert any(urlsplit(url).netloc == own for _, url in recorder.seen), "nothing was recorded: the recorder is broken"
    foreign = recorder.foreign(app)
    assert not foreign, "The player's page contacted another host:\n" + "\n".join(foreign)


@pytest.fixture(scope="module")
def jacks5(media: Path) -> dict[str, Any]:
    """jacks5.mp4 as Python decodes it: its path, size, every frame's time and a small crop of every frame (the
    GRAB crop, area-averaged: what the page's canvas gets from the <video>)."""
    path = media / JACKS5
    info = probe(path)
    times, crops = [], []
    for _, time_s, rgb in read_frames(path):
        times.append(time_s)
        crops.append(cv2.resize(rgb[:, GRAB_X0:GRAB_X1], (GRAB_W, GRAB_H), interpolation=cv2.INTER_AREA))
    return {"path": path, "width": info.width, "height": info.height, "times": np.array(times),
            "crops": np.stack(crops).astype(np.float32)}


# --- helpers ---------------------------------------------------------------------------------------------------------

def fail_with_log(app: AppServer, what: str, error: Exception, page: Page | None = None) -> None:
    """Fail with what the page says (its main column's text) and the server's log: the UI hides tracebacks."""
    text = page.get_by_test_id("stMain").inner_text()[:3000] if page is not None and not page.is_closed() else ""
    pytest.fail(f"{what}: {error}\nThe page says:\n{text}\nServer log ({app.log_path}):\n{app.log()}", pytrace=False)


def open_video_page(page: Page, app: AppServer) -> None:
    page.goto(f"{app}/video")
    expect(page.get_by_role("heading", name="Video", exact=True)).to_be_visible(timeout=WAIT_MS)
    wait_for_app_idle(page)


def show_results(page: Page, app: AppServer, video: Path, *, upload: bool = True,
                 timeout_ms: float = RESULT_TIMEOUT_MS) -> ElementHandle:
    """Upload ``video`` (unless done already) and wait for the results, settled: the player's poses loaded, the
    downloads shown, no progress bar left (the review copy the page makes after the analysis is done and playing)
    and the script idle; the player's root element."""
    if upload:
        upload_files(page, video)
    try:
        page.wait_for_function(SETTLED, polling=100, timeout=timeout_ms)
        wait_for_app_idle(page)
    except Exception as error:  # noqa: BLE001 - the UI hides tracebacks; the server's log has them
        fail_with_log(app, f"The results of {video.name} did not appear and settle", error, page)
    assert_no_exception(page)
    root = page.evaluate_handle(FIND_PLAYER).as_element()
    assert root is not None
    root.evaluate(HISTORY)
    return root


def state(root: ElementHandle) -> dict[str, Any]:
    return root.evaluate(STATE)


def wait_until(page: Page, root: ElementHandle, condition: str, what: str, then: str = "s",
               timeout_ms: float = WAIT_MS) -> Any:
    """Wait for the first animation frame where the JavaScript expression ``condition`` (over ``s``, the player's
    STATE, and ``r``, its root) holds, and evaluate ``then`` in that same frame; its value. On timeout, fail saying what
    was awaited, the player's state and its recent history."""
    try:
        return page.wait_for_function(f"r => {{ const s = ({STATE})(r); return ({condition}) ? ({then}) : null; }}",
                                      arg=root, polling="raf", timeout=timeout_ms).json_value()
    except Exception as error:  # noqa: BLE001 - a timeout: say what the player was doing instead
        history = "\n".join(map(str, root.evaluate("r => (r.__history || []).slice(-40)")))
        pytest.fail(f"{what} within {timeout_ms / 1000:.0f} s ({condition}); the player: {state(root)}\n"
                    f"Its history [ms, event, data-frame, data-shown-time, currentTime, paused]:\n{history}\n{error}",
                    pytrace=False)


def capture_when(page: Page, root: ElementHandle, condition: str, what: str) -> dict[str, Any]:
    """The OVERLAY reading taken on the first animation frame where ``condition`` (over ``s``) holds."""
    return wait_until(page, root, condition, what, then=f"({OVERLAY})(r)")


def pause_late_in_a_frame(page: Page, root: ElementHandle, after_frame: int) -> dict[str, Any]:
    """Play at 0.25× and press pause (the button, clicked in the page on that very animation frame) once the video is
    past ``after_frame`` and currentTime is 55–85 % of the way through a frame's time, as half of all pauses land;
    the player's state once paused. Playing slowly leaves the click 50 ms or more before the next frame."""
    speed = page.locator(".ps-player input[type=range]")
    speed.focus()
    steps = round((float(speed.input_value()) - 0.25) / 0.05)  # the slider's keys move it by 0.05
    for _ in range(abs(steps)):
        speed.press("ArrowLeft" if steps > 0 else "ArrowRight")
    expect(speed).to_have_value("0.25")
    page.locator(".ps-player [data-action=play]").click()
    gap = 1 / 30
    wait_until(page, root, f"!s.paused && s.frame > {after_frame} && s.currentTime % {gap} > {0.55 * gap} "
                           f"&& s.currentTime % {gap} < {0.85 * gap}",
               f"The video did not play past frame {after_frame}",
               then="(r.querySelector('[data-action=play]').click(), true)")
    return wait_until(page, root, "s.paused && !s.seeking", "The video did not pause")


def wait_shown(page: Page, root: ElementHandle, frame: int, time_s: float, what: str) -> dict[str, Any]:
    """Wait until the player draws ``frame``, its video rests on it (not seeking, paused) and the last presented
    picture is the one at time_s (±1 ms)."""
    return wait_until(page, root, f"s.frame === {frame} && !s.seeking && s.paused && s.shownTime !== null "
                                  f"&& Math.abs(s.shownTime - {float(time_s)!r}) < 0.001", what)


def caption_shows(page: Page, app: AppServer, frame: int, time_s: float) -> None:
    """The Landmarks caption names the player's frame: it was reported to Python."""
    try:
        expect(page.get_by_text(f"Frame {frame} at {time_s:.2f} s", exact=True)).to_be_visible(timeout=WAIT_MS)
    except AssertionError as error:
        captions = page.get_by_text(re.compile(r"^Frame \d+ at ")).all_inner_texts()
        fail_with_log(app, f"The Landmarks caption does not show frame {frame} (it shows {captions})", error, page)


def best_match(root: ElementHandle, crops: np.ndarray, frame: int) -> tuple[int, list[float]]:
    """Which of the Python-decoded frames frame-1, frame, frame+1 the <video>'s picture is closest to (mean absolute
    difference of the small crops), and the three differences."""
    picture = np.asarray(root.evaluate(GRAB), np.float32).reshape(GRAB_H, GRAB_W, 3)
    candidates = [k for k in (frame - 1, frame, frame + 1) if 0 <= k < len(crops)]
    errors = [float(np.abs(crops[k] - picture).mean()) for k in candidates]
    return candidates[int(np.argmin(errors))], errors


def nearest(times: np.ndarray, t: float) -> int:
    return int(np.argmin(np.abs(times - t)))


def angle_deg(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    """The angle at b between b→a and b→c, in degrees."""
    u, v = np.subtract(a, b), np.subtract(c, b)
    return math.degrees(math.acos(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))))


# --- tests -----------------------------------------------------------------------------------------------------------

def test_the_overlay_draws_a_skeleton_that_moves_while_the_video_plays(
        page: Page, app: AppServer, jacks5: dict[str, Any], tmp_path: Path) -> None:
    """While jacks5 plays, the overlay holds a skeleton (white bones, red joints) on the jumper at two moments, the two
    skeletons are different drawings, and data-frame and the video's time moved on."""
    open_video_page(page, app)
    root = show_results(page, app, jacks5["path"])
    still = root.evaluate(OVERLAY)
    summary = {k: v for k, v in still.items() if k != "skeleton"}
    assert still["bone"] > 200 and still["joint"] > 100, f"no skeleton on the paused first frame: {summary}"

    page.locator(".ps-player [data-action=play]").click()
    first = capture_when(page, root, "!s.paused && s.frame >= 5", "The video did not play to frame 5")
    second = capture_when(page, root, f"!s.paused && s.frame >= {first['frame'] + 12}",
                          f"The video did not play on to frame {first['frame'] + 12}")
    root.screenshot(path=str(tmp_path / "player.png"))  # for people; not asserted
    print(f"\nScreenshot of the player: {tmp_path / 'player.png'}")

    for shot in (first, second):
        summary = {k: v for k, v in shot.items() if k != "skeleton"}
        assert shot["playing"], summary
        assert shot["bone"] > 200 and shot["joint"] > 100, f"no skeleton while playing: {summary}"
        centre = (shot["box"][0] + shot["box"][2]) / 2 / shot["w"]
        assert 0.35 < centre < 0.65, f"the skeleton is not on the jumper (middle of the frame): {summary}"
    assert second["frame"] > first["frame"], (first["frame"], second["frame"])
    assert second["videoTime"] > first["videoTime"] + 0.3, (first["videoTime"], second["videoTime"])
    a, b = set(first["skeleton"]), set(second["skeleton"])
    overlap = len(a & b) / len(a | b)
    assert overlap < 0.6, f"the skeleton did not move: {overlap:.0%} of its pixels are the same"
    assert first["box"] != second["box"], (first["box"], second["box"])
    assert_no_exception(page)


def test_stepping_moves_exactly_one_frame_and_shows_that_frame(
        page: Page, app: AppServer, jacks5: dict[str, Any]) -> None:
    """Paused during playback (late in a frame's time, as half of all pauses land), → and the back button, and ←,
    move data-frame by exactly one; the video then presents that frame's time (±1 ms of the times read_frames gives)
    and its picture is that very frame, not a neighbour; Python hears of the frame (the Landmarks caption)."""
    times, crops = jacks5["times"], jacks5["crops"]
    open_video_page(page, app)
    root = show_results(page, app, jacks5["path"])

    paused = pause_late_in_a_frame(page, root, after_frame=20)
    k = paused["frame"]
    assert 20 < k < len(times) - 8, paused
    # The frame drawn is the one presented last, whichever frame's time currentTime is in: Chromium 150 rests a frame
    # ahead of currentTime (paused at 0.688 s, it shows the frame of 0.700 s), earlier versions on it.
    assert paused["shownTime"] == pytest.approx(times[k], abs=1e-3), f"the player does not draw the frame shown: {paused}"
    match, errors = best_match(root, crops, k)
    assert match == k, f"paused on frame {k}, the video shows frame {match}: differences {errors}"

    page.locator(".ps-player").focus()
    for step in range(1, 5):
        page.keyboard.press("ArrowRight")
        shown = wait_shown(page, root, k + step, times[k + step],
                           f"→ did not take frame {k + step - 1} to {k + step}")
        assert shown["time"] == pytest.approx(times[k + step], abs=1e-3), shown
        match, errors = best_match(root, crops, k + step)
        assert match == k + step, f"after → the video shows frame {match}, not {k + step}: differences {errors}"
    for step in range(3, -1, -1):
        page.locator(".ps-player [data-action=back]").click()
        wait_shown(page, root, k + step, times[k + step], f"back did not take frame {k + step + 1} to {k + step}")
        match, errors = best_match(root, crops, k + step)
        assert match == k + step, f"after back the video shows frame {match}, not {k + step}: differences {errors}"
    caption_shows(page, app, k, times[k])

    paused = pause_late_in_a_frame(page, root, after_frame=k + 10)
    k = paused["frame"]
    assert k < len(times) - 1, paused
    page.locator(".ps-player").focus()
    page.keyboard.press("ArrowLeft")
    wait_shown(page, root, k - 1, times[k - 1], f"← did not take frame {k} to {k - 1}")
    match, errors = best_match(root, crops, k - 1)
    assert match == k - 1, f"after ← the video shows frame {match}, not {k - 1}: differences {errors}"
    caption_shows(page, app, k - 1, times[k - 1])
    assert_no_exception(page)


def test_a_click_on_the_joint_angles_chart_takes_the_player_there(
        page: Page, app: AppServer, jacks5: dict[str, Any]) -> None:
    """A click on the Joint angles chart's point at ~60 % of its width (frame 113 of 190) moves the player to that
    frame: it draws that pose, its video presents that frame, and the Landmarks caption names it."""
    times = jacks5["times"]
    target = nearest(times, times[0] + 0.6 * (times[-1] - times[0]))
    open_video_page(page, app)
    root = show_results(page, app, jacks5["path"])
    assert state(root)["frame"] != target
    chart = page.locator(".st-key-angle_chart .js-plotly-plot")
    chart.scroll_into_view_if_needed()
    # Where the topmost smoothed curve's marker at the target frame is on screen, and Plotly's own report of the
    # point a click selects (what Streamlit sends to Python).
    x, y = chart.evaluate(CHART_POINT, target)
    page.mouse.move(x - 8, y)
    page.mouse.move(x, y)  # Plotly picks the point under the mouse on hover, then clicks it
    page.wait_for_function("t => [...document.querySelectorAll('.st-key-angle_chart .hoverlayer text')]"
                           ".some(e => e.textContent.includes(t))", arg=f"{times[target]:.2f}", timeout=WAIT_MS)
    page.mouse.click(x, y)
    page.wait_for_function("() => window.__selected !== null", timeout=WAIT_MS)
    selected = float(page.evaluate("() => window.__selected"))
    assert selected == pytest.approx(times[target], abs=1e-6), f"the click selected the point at {selected} s"

    shown = wait_until(page, root, f"s.frame === {target} && !s.seeking && s.shownTime !== null "
                                   f"&& Math.abs(s.shownTime - {float(times[target])!r}) < 0.001",
                       f"The click on the point at {selected:.4f} s did not take the player to frame {target}")
    assert shown["time"] == pytest.approx(times[target], abs=1e-3), shown
    caption_shows(page, app, target, times[target])
    assert_no_exception(page)


def test_the_angle_tool_measures_the_clicked_angle_in_the_frames_pixels(
        page: Page, app: AppServer, jacks5: dict[str, Any]) -> None:
    """Three clicks with the angle tool at known fractions of the picture give, in the Measurements table and its
    CSV, the angle of those fractions × the analysed frame's size (960×720, so not the 90° of a square), at the
    frame shown."""
    times = jacks5["times"]
    width, height = jacks5["width"], jacks5["height"]
    assert (width, height) == (960, 720)
    fractions = [(0.2, 0.2), (0.5, 0.5), (0.8, 0.2)]
    expected = angle_deg(*[(fx * width, fy * height) for fx, fy in fractions])
    assert abs(expected - 90) > 10  # the frame's aspect matters
    open_video_page(page, app)
    root = show_results(page, app, jacks5["path"])
    page.locator(".ps-player").focus()
    page.keyboard.press("Shift+ArrowRight")  # ten frames on: a known frame
    wait_shown(page, root, 10, times[10], "Shift+→ did not show frame 10")

    page.locator(".ps-player select").select_option("angle")
    box = page.locator(".ps-player canvas.ps-overlay").bounding_box()
    assert box is not None
    for fx, fy in fractions:
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    try:
        expect(page.get_by_role("heading", name="Measurements")).to_be_visible(timeout=WAIT_MS)
        wait_for_app_idle(page)
    except AssertionError as error:
        fail_with_log(app, "The Measurements table did not appear", error, page)
    assert state(root)["frame"] == 10

    grid = page.locator('[data-testid="stDataFrame"]').filter(has_text="kind").filter(has_text="points_px")
    expect(grid.locator('table[role="grid"] tbody tr')).to_have_count(1, timeout=WAIT_MS)
    head = [h.strip() for h in grid.locator('table[role="grid"] thead th').all_inner_texts()]
    cells = [c.strip() for c in grid.locator('table[role="grid"] tbody tr').first.locator("td").all_inner_texts()]
    row = dict(zip(head, cells, strict=False))
    assert row.get("kind") == "angle" and row.get("unit") == "deg", row
    assert float(row["value"]) == pytest.approx(expected, abs=1.0), (row, expected)

    with page.expect_download() as caught:
        page.get_by_test_id("stDownloadButton").filter(has_text="Measurements CSV").locator("button").click()
    rows = list(csv.DictReader(io.StringIO(Path(caught.value.path()).read_text())))
    assert len(rows) == 1, rows
    assert rows[0]["kind"] == "angle" and rows[0]["unit"] == "deg", rows
    assert float(rows[0]["value"]) == pytest.approx(expected, abs=1.0), (rows, expected)
    assert int(rows[0]["frame"]) == 10 and float(rows[0]["time_s"]) == pytest.approx(times[10], abs=1e-3), rows
    points = [float(v) for p in rows[0]["points_px"].split() for v in p.split(",")]
    assert points == pytest.approx([v for fx, fy in fractions for v in (fx * width, fy * height)], abs=3), rows
    assert_no_exception(page)


def test_privacy_mode_never_loads_the_source_video(page: Page, app: AppServer, jacks5: dict[str, Any]) -> None:
    """With "Privacy mode (skeleton only)" on before the upload, no video is requested from the server (the poses
    come as a /media/ .bin file), the <video> has no source, and the overlay is the blank background with the skeleton
    on it; playing moves the skeleton on."""
    requests: list[tuple[str, str]] = []
    responses: list[tuple[str, str]] = []
    page.on("request", lambda request: requests.append((request.resource_type, request.url)))
    page.on("response", lambda response: responses.append((response.headers.get("content-type", ""), response.url)))
    open_video_page(page, app)
    toggle = page.get_by_test_id("stSidebar").get_by_role("switch", name="Privacy mode (skeleton only)")
    page.get_by_test_id("stSidebar").get_by_text("Privacy mode (skeleton only)").click()
    expect(toggle).to_be_checked(timeout=WAIT_MS)
    wait_for_app_idle(page)
    root = show_results(page, app, jacks5["path"])

    player = state(root)
    assert player["src"] is None and player["currentSrc"] == "" and player["hidden"], player
    assert "Privacy mode" in player["message"], player
    still = root.evaluate(OVERLAY)
    summary = {k: v for k, v in still.items() if k != "skeleton"}
    pixels = still["w"] * still["h"]
    assert still["opaque"] == pixels, f"the overlay lets something show through: {summary}"
    assert still["background"] > 0.85 * pixels, f"the stage is not the blank background {PRIVACY_BACKGROUND}: {summary}"
    assert still["bone"] > 200 and still["joint"] > 100, f"no skeleton on the blank stage: {summary}"
    box = still["box"]
    assert (box[2] - box[0]) < 0.6 * still["w"], f"the drawing is wider than the jumper: {summary}"

    page.locator(".ps-player [data-action=play]").click()
    wait_until(page, root, f"s.frame >= {still['frame'] + 10}", "The blank stage did not play on")

    media = [(kind, url) for kind, url in requests if urlsplit(url).path.startswith("/media/")]
    assert any(urlsplit(url).path.endswith(".bin") for _, url in media), f"the poses were not fetched: {requests}"
    videos = [(kind, url) for kind, url in media
              if kind == "media" or urlsplit(url).path.lower().endswith(VIDEO_SUFFIXES)]
    assert not videos, f"privacy mode requested a video: {videos}"
    typed = [(mime, url) for mime, url in responses if mime.startswith("video/")]
    assert not typed, f"privacy mode received a video: {typed}"
    assert state(root)["src"] is None
    assert_no_exception(page)


def test_a_video_the_browser_cannot_play_gets_a_playable_copy(
        page: Page, app: AppServer, jacks5: dict[str, Any], tmp_path: Path) -> None:
    """An MJPEG AVI (no browser plays it) gets its results at once, a message on the stage while a playable copy is
    made, then, within a minute, that copy as the player's video, which plays."""
    avi = tmp_path / "jacks.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (jacks5["width"], jacks5["height"]))
    assert writer.isOpened(), "OpenCV cannot write MJPEG AVI here"
    for _, _, rgb in read_frames(jacks5["path"], end_s=3.0):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    info = probe(avi)
    assert info.codec == "mjpeg" and info.frame_count_estimate == 90, info

    open_video_page(page, app)
    upload_files(page, avi)
    # The first animation frame with the poses loaded: unless the copy is already there (a fast machine), the stage
    # says that it is being made.
    try:
        first = page.wait_for_function(f"() => {{ const r = ({FIND_PLAYER})();"
                                       f" return r && r.dataset.state === 'ready' && ({STATE})(r); }}",
                                       polling="raf", timeout=RESULT_TIMEOUT_MS).json_value()
    except Exception as error:  # noqa: BLE001
        fail_with_log(app, "The results of the AVI did not appear", error, page)
    if first["src"] is None:
        assert "cannot play MJPEG" in first["message"] and "copy" in first["message"], first
    try:  # a player with a source: the copy (a new player, as the page rebuilds it), the page settled
        page.wait_for_function(f"() => {{ const r = ({FIND_PLAYER})();"
                               f" return r && r.querySelector('video.ps-video[src]') && ({SETTLED})(); }}",
                               polling=100, timeout=PROXY_TIMEOUT_MS)
    except Exception as error:  # noqa: BLE001
        fail_with_log(app, "The player got no playable copy within a minute", error, page)
    root = show_results(page, app, avi, upload=False)
    ready = wait_until(page, root, "s.readyState >= 2 && s.shownTime !== null", "The copy did not load")
    assert urlsplit(ready["src"]).path.startswith("/media/") and not ready["hidden"], ready
    assert "copy" not in ready["message"], ready

    page.locator(".ps-player [data-action=play]").click()
    start = ready["shownTime"]
    playing = wait_until(page, root, f"!s.paused && s.shownTime > {start + 0.5} && s.frame >= 10",
                         "The playable copy did not play")
    assert playing["frame"] > ready["frame"], (ready, playing)
    assert_no_exception(page)


def test_the_player_goes_on_playing_when_the_review_copy_replaces_the_upload(
        page: Page, app: AppServer, jacks5: dict[str, Any], tmp_path: Path) -> None:
    """Right after the analysis the player plays the upload itself while the page makes its review copy (a progress
    bar says so); when the copy arrives, the same player goes on playing from where it was (player.js swaps the
    source on the same clock): it is not rebuilt, stopped or sent back to the start."""
    # A video of its own, so that its copy is made now (copies are kept per content), and long enough (19 s, 570
    # frames) for the copy to take a few seconds after the poses.
    video = tmp_path / "jacks15.mp4"
    frames = [rgb for _, _, rgb in read_frames(jacks5["path"])]
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = jacks5["width"], jacks5["height"], "yuv420p"
        for index in range(3 * len(frames)):
            frame = av.VideoFrame.from_ndarray(frames[index % len(frames)], format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    del frames
    open_video_page(page, app)
    upload_files(page, video)
    try:
        handle = page.wait_for_function(f"""() => {{ const r = ({FIND_PLAYER})();
            return r && r.dataset.state === 'ready' && document.querySelector('[data-testid=stProgress]') && r; }}""",
                                        polling="raf", timeout=RESULT_TIMEOUT_MS)
    except Exception as error:  # noqa: BLE001
        fail_with_log(app, "The results did not appear while the review copy was being made", error, page)
    root = handle.as_element()
    assert root is not None
    root.evaluate(HISTORY)
    upload_src = state(root)["src"]
    assert upload_src, state(root)
    speed = root.query_selector("input[type=range]")
    assert speed is not None
    speed.evaluate("e => { e.value = '0.25'; e.dispatchEvent(new Event('input', {bubbles: true})); }")  # 25 s of play
    root.evaluate("r => r.querySelector('[data-action=play]').click()")  # at once: the page is still laid out
    before = wait_until(page, root, "!s.paused && s.shownTime > 0.2", "The upload did not play")

    try:
        page.wait_for_function(f"""src => {{ const r = ({FIND_PLAYER})(), v = r && r.querySelector('video.ps-video');
            return v && v.getAttribute('src') && v.getAttribute('src') !== src
                && !document.querySelector('[data-testid=stProgress]'); }}""", arg=upload_src, polling=100,
                               timeout=PROXY_TIMEOUT_MS)
    except Exception as error:  # noqa: BLE001
        fail_with_log(app, "The review copy did not replace the upload within a minute", error, page)
    history = "\n".join(map(str, root.evaluate("r => r.__history.slice(-15)")))
    assert root.evaluate("r => r.isConnected"), (
        "the player was rebuilt when the review copy arrived (its root left the page): what the user was doing in "
        f"it (playing, the frame, the speed, a measurement half-clicked) is lost. Its last moments:\n{history}")
    after = wait_until(page, root, f"s.src !== {upload_src!r} && s.readyState >= 2", "The copy did not load")
    assert not after["paused"], f"the copy's arrival stopped the playback: {after}"
    playing = wait_until(page, root, f"!s.paused && s.shownTime > {after['shownTime'] or 0} + 0.1",
                         "The copy did not go on playing")
    assert playing["shownTime"] >= before["shownTime"], (before, playing)
    assert_no_exception(page)
