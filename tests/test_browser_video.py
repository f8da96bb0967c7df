"""The Video page in a real browser: the real app (``streamlit run dashboard.py``), headless Chromium, real uploads.

One server (with a temporary folder of its own, so that leftovers can be seen) and one Chromium serve the module;
every test gets its own browser context, hence its own Streamlit session.
Run: ``.venv/bin/python -m pytest tests/test_browser_video.py -q``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from analysis.result import ClipResult
from analysis.video_io import read_frames
from browser_support import (  # noqa: F401 - the *_fixture names register the playwright, browser and page fixtures
    AppServer,
    assert_no_exception,
    browser_fixture,
    choose_option,
    full_page_screenshot,
    page_fixture,
    playwright_fixture,
    screenshot_path,
    streamlit_server,
    upload_files,
    wait_for_app_idle,
)
from test_browser_offline import Recorder  # the offline test's recorder: requests, sockets, workers, frames, ICE

pytestmark = pytest.mark.browser

# Chromium only plays media without a user's gesture with this (the test also mutes the video, as users' pages may).
CHROMIUM_EXTRA_ARGS = ("--autoplay-policy=no-user-gesture-required",)
RESULT_TIMEOUT_MS = 90_000  # the first analysis loads the pose model
SCREENSHOT = Path("/tmp/video_page.png")
PROGRESS = re.compile(r"Analysing: \d+ / \d+ frames · \d+ frames/s · about (\d+ s|\d+ min \d+ s) left")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app, with TMPDIR pointed at a folder of its own (``app.temp``) so tests can see what it leaves, and
    closed tabs' sessions ended after 1 s instead of 2 minutes, so that their staged uploads go quickly."""
    temp = tmp_path_factory.mktemp("server_tmp")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TMPDIR", str(temp))
        env.setenv("STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL", "1")
        with streamlit_server() as base_url:
            env.undo()  # the server has its environment; the tests keep theirs
            base_url.temp = temp  # type: ignore[attr-defined]
            yield base_url


@pytest.fixture(autouse=True)
def no_script_errors(page: Page) -> Iterator[None]:
    """No uncaught JavaScript error in the page (a chart that fails to draw throws one and is left blank)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == [], f"JavaScript errors in the page: {errors}"


@pytest.fixture(scope="module")
def long_video(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of the test clip played forwards and backwards: long enough to press Cancel while it is analysed."""
    frames = [rgb for _, _, rgb in read_frames(media / "clip.mp4")]
    path = tmp_path_factory.mktemp("long") / "session.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 960, 540, "yuv420p"
        for i in range(600):
            cycle = i % 118
            frame = av.VideoFrame.from_ndarray(frames[cycle if cycle < 60 else 118 - cycle], format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def open_video_page(page: Page, app: AppServer) -> None:
    page.goto(f"{app}/video")
    expect(page.get_by_role("heading", name="Video", exact=True)).to_be_visible(timeout=30_000)
    wait_for_app_idle(page)


def wait_visible(locator: Locator, app: AppServer, what: str, timeout_ms: float = RESULT_TIMEOUT_MS) -> None:
    """Wait for ``locator`` to be visible; on timeout, fail with the server's log (tracebacks are hidden in the UI)."""
    try:
        expect(locator.first).to_be_visible(timeout=timeout_ms)
    except AssertionError as error:
        pytest.fail(f"{what} did not appear within {timeout_ms / 1000:.0f} s: {error}\n"
                    f"Server log ({app.log_path}):\n{app.log()}", pytrace=False)


def leftovers(app: AppServer) -> list[str]:
    """The files in the server's temporary folder, by name (its own log file lives elsewhere)."""
    return sorted(p.name for p in app.temp.rglob("*") if p.is_file())  # type: ignore[attr-defined]


def wait_for_leftovers(app: AppServer, expected: list[str], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while leftovers(app) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(app) == expected, "the server's temporary files are not what this test expects"


@pytest.fixture(autouse=True)
def sessions_leave_nothing(app: AppServer, page: Page) -> Iterator[None]:
    """Each test starts with an empty temporary folder; once its tab is closed (its session ends), the staged
    upload it used is removed too."""
    wait_for_leftovers(app, [])
    yield
    page.context.close()
    wait_for_leftovers(app, [])


def test_clip_plays_in_the_player_and_draws_the_charts(page: Page, app: AppServer, media: Path) -> None:
    open_video_page(page, app)
    started = time.perf_counter()
    upload_files(page, media / "clip.mp4")

    player = page.locator(".ps-player")
    wait_visible(player, app, "The review player")
    charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    wait_visible(charts.nth(2), app, "The third chart")
    print(f"\nclip.mp4: player after {time.perf_counter() - started:.1f} s (incl. the upload), ", end="")
    wait_for_app_idle(page)
    print(f"whole page after {time.perf_counter() - started:.1f} s")
    expect(page.get_by_text(re.compile(r"analysed 60 frames in [\d.]+ s"))).to_be_visible()
    expect(player).to_have_attribute("data-state", "ready")

    # The upload itself plays in the player: the source's own frames and size, and time moves on after play().
    video = player.locator("video")
    expect(video).to_have_count(1)
    playing = video.evaluate("""async v => {
        if (v.readyState < 1) await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
        v.muted = true;
        await v.play();
        const start = v.currentTime;
        await new Promise(r => setTimeout(r, 1000));
        return {width: v.videoWidth, height: v.videoHeight, duration: v.duration, start, now: v.currentTime,
                error: v.error && v.error.code};
    }""")
    assert playing["error"] is None, playing
    assert (playing["width"], playing["height"]) == (960, 540), playing
    assert playing["duration"] == pytest.approx(2.0, abs=0.1), playing
    assert playing["now"] > playing["start"] + 0.2, f"the video did not advance after play(): {playing}"

    # The charts are drawn: angle and speed lines with real paths, the quality strip, and the scrubbed time marked.
    expect(charts).to_have_count(3)
    drawn = charts.evaluate_all("""plots => plots.map(p => ({
        lines: [...p.querySelectorAll('.scatterlayer path.js-line')]
            .filter(l => (l.getAttribute('d') || '').length > 50).length,
        types: p._fullData.map(t => t.type),
        rows: [...p.querySelectorAll('.ytick text')].map(t => t.textContent),
        notes: [...p.querySelectorAll('.annotation-text')].map(t => t.textContent),
        x: p._fullLayout.xaxis.title.text, y: p._fullLayout.yaxis.title.text,
        marker: (p.layout.shapes || []).filter(s => s.name === 'scrubbed time').map(s => s.x0),
    }))""")
    angles, speed, quality = drawn
    assert angles["lines"] >= 6 and angles["y"] == "Angle (°)" and angles["x"] == "Time (s)", drawn
    assert speed["lines"] >= 4 and speed["y"] == "Speed (px/s)", drawn
    # The quality strip: its three rows labelled; this clip has no problem to paint, and the strip says so.
    assert quality["types"] == ["heatmap"] * 3, drawn
    assert sorted(quality["rows"]) == ["Interpolated", "Low visibility", "No person"], drawn
    assert quality["notes"] == ["every frame clean"], drawn
    assert all(chart["marker"] == [0] for chart in drawn), drawn

    # Step to 1 s with the keyboard in the player: the caption and every chart's marker follow.
    video.evaluate("v => { v.pause(); v.currentTime = 0; }")
    expect(player).to_have_attribute("data-frame", "0")
    player.locator("[data-action=back]").click()  # stays on the first frame, and gives the player the focus
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    wait_visible(page.get_by_text("Frame 30 at 1.00 s"), app, "The caption of frame 30", 30_000)
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
        .every(p => (p.layout.shapes || []).some(s => s.name === 'scrubbed time' && Math.abs(s.x0 - 1) < 1e-3))""",
                           timeout=30_000)
    wait_for_app_idle(page)

    # Every export downloads, most of them made on the server when clicked; the annotated video once asked for.
    downloads = page.get_by_test_id("stDownloadButton")
    expect(downloads).to_have_count(7)  # the clip's six files, and the player's frame as a pose template
    page.get_by_role("button", name="Make the annotated video").click()
    wait_visible(downloads.filter(has_text="Annotated video"), app, "The annotated video's download", 60_000)
    expect(downloads).to_contain_text(["This frame as a template", "Landmarks CSV", "Angles CSV",
                                       "Summary JSON", "Events CSV", "TRC person 1", "Pose series (.npz)",
                                       "Annotated video"])
    files = {}
    for label in ["Annotated video", "Landmarks CSV", "Angles CSV", "Summary JSON", "Events CSV", "TRC person 1",
                  "Pose series (.npz)"]:
        with page.expect_download() as caught:
            downloads.filter(has_text=label).locator("button").click()
        files[caught.value.suggested_filename] = Path(caught.value.path()).read_bytes()
    assert sorted(files) == ["clip_angles.csv", "clip_annotated.mp4", "clip_events.csv", "clip_landmarks.csv",
                             "clip_person1.trc", "clip_series.npz", "clip_summary.json"]
    assert files["clip_events.csv"].startswith(b"person,event,start_s,end_s,duration_s,flight_s")
    assert files["clip_annotated.mp4"][4:8] == b"ftyp"
    assert files["clip_landmarks.csv"].startswith(b"frame,time_s,person,landmark,x,y,z,visibility")
    assert len(files["clip_landmarks.csv"].splitlines()) == 1 + 60 * 33
    assert files["clip_angles.csv"].startswith(b"frame,time_s,person,left elbow,")
    assert len(files["clip_angles.csv"].splitlines()) == 61
    summary = json.loads(files["clip_summary.json"])
    assert summary["counts"]["frames"] == 60 and summary["source"] == {"name": "clip.mp4", "kind": "file"}
    assert files["clip_person1.trc"].startswith(b"PathFileType\t4\t(X/Y/Z)\tperson1.trc")
    saved = ClipResult.from_npz(files["clip_series.npz"])
    assert saved.series.frames == 60 and (saved.series.width, saved.series.height) == (960, 540)
    assert saved.source.name == "clip.mp4"

    assert_no_exception(page)
    assert leftovers(app) == ["upload.mp4"]  # the one staged copy, kept while the session shows it
    full_page_screenshot(page, SCREENSHOT)


def test_two_people_get_a_selector_and_the_quality_strip_paints_the_frames_without_them(
        page: Page, app: AppServer, media: Path) -> None:
    open_video_page(page, app)
    people = page.locator('[data-testid="stSlider"]').filter(has_text="Most people to find").get_by_role("slider")
    people.focus()
    people.press("ArrowRight")
    wait_for_app_idle(page)
    upload_files(page, media / "clip.mp4")
    chooser = page.get_by_test_id("stSelectbox").filter(has_text="Person")
    wait_visible(chooser, app, "The person selector")
    expect(page.get_by_test_id("stProgress")).to_have_count(0, timeout=60_000)  # the review copy made: no more reruns
    wait_for_app_idle(page)
    expect(page.get_by_test_id("stDownloadButton").filter(has_text="TRC person 2")).to_have_count(1)

    choose_option(page, chooser, re.compile(r"^person 2 "))
    wait_for_app_idle(page)
    expect(chooser.get_by_role("combobox")).to_have_value(re.compile(r"^person 2 \("))
    # The strip (the third chart) draws its cells as images; wait for Plotly to finish drawing it after the change.
    page.wait_for_function("""() => {
        const strip = document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')[2];
        return strip && strip._fullData && strip._fullData.length === 3
            && strip.querySelectorAll('.heatmaplayer image').length > 0
            && strip.getBoundingClientRect().height > 100;
    }""", timeout=30_000)
    expect(page.get_by_text(re.compile(r"Of 60 frames: no person in [1-9]\d*,"))).to_be_visible()
    assert_no_exception(page)


def frames_done(page: Page) -> int:
    """Frames analysed so far, read from the progress bar's sentence; 0 when there is none (yet)."""
    text = page.get_by_test_id("stProgress").all_inner_texts()
    found = re.search(r"Analysing: ([\d,]+) / ", " ".join(text))
    return int(found.group(1).replace(",", "")) if found else 0


def test_cancel_stops_the_analysis_and_removes_its_files(page: Page, app: AppServer, long_video: Path) -> None:
    open_video_page(page, app)
    upload_files(page, long_video)
    progress = page.get_by_test_id("stProgress")
    wait_visible(progress.filter(has_text=PROGRESS), app, "The progress bar with frames, rate and time left")
    assert leftovers(app) == ["upload.mp4"]  # the staged upload, and nothing written beside it while analysing

    page.get_by_role("button", name="Cancel").click()
    cancelled = page.get_by_test_id("stAlert").filter(has_text="The analysis was cancelled")
    wait_visible(cancelled, app, "The 'cancelled' sentence", 30_000)
    wait_for_app_idle(page)
    expect(progress).to_have_count(0)
    expect(page.locator(".ps-player")).to_have_count(0)
    assert_no_exception(page)
    wait_for_leftovers(app, ["upload.mp4"])  # the upload stays for a retry

    # It starts again only when asked, and can be cancelled again.
    page.get_by_role("button", name="Analyse again").click()
    wait_visible(progress.filter(has_text=PROGRESS), app, "The progress bar, again")
    page.get_by_role("button", name="Cancel").click()
    wait_visible(cancelled, app, "The 'cancelled' sentence, again", 30_000)
    wait_for_app_idle(page)
    assert_no_exception(page)
    wait_for_leftovers(app, ["upload.mp4"])


def test_a_sidebar_change_or_leaving_the_page_neither_restarts_nor_loses_the_analysis(
        page: Page, app: AppServer, long_video: Path) -> None:
    open_video_page(page, app)
    upload_files(page, long_video)
    wait_visible(page.get_by_test_id("stProgress").filter(has_text=PROGRESS), app, "The progress bar")
    page.wait_for_function("""() => /Analysing: ([6-9]\\d|\\d{3}) \\//.test(
        [...document.querySelectorAll('[data-testid="stProgress"]')].map(p => p.innerText).join(' '))""",
                           timeout=60_000)
    seen = [frames_done(page)]

    cutoff = page.locator('[data-testid="stSlider"]').filter(has_text="Cutoff (Hz)").get_by_role("slider")
    cutoff.focus()
    for _ in range(4):
        cutoff.press("ArrowLeft")
        page.wait_for_timeout(300)
        seen.append(frames_done(page))
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Image").click()
    expect(page.get_by_role("heading", name="Image", exact=True)).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1000)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Video").click()
    expect(page.get_by_role("heading", name="Video", exact=True)).to_be_visible(timeout=30_000)
    while page.get_by_test_id("stProgress").count():
        seen.append(frames_done(page))
        page.wait_for_timeout(500)
    counted = [n for n in seen if n]
    assert counted == sorted(counted) and len(counted) >= 3, f"the progress went back: {seen}"

    wait_visible(page.get_by_text(re.compile(r"analysed 600 frames in [\d.]+ s")), app, "The finished analysis")
    wait_visible(page.get_by_role("heading", name="Downloads"), app, "The downloads")
    expect(page.get_by_role("button", name="Close this video")).to_be_visible()
    assert_no_exception(page)


def test_two_sessions_analyse_at_once_each_with_its_own_job_and_results(
        page: Page, browser: Browser, app: AppServer, long_video: Path, media: Path) -> None:
    open_video_page(page, app)
    # Settings no earlier test used, so that the analysis runs rather than coming from the server's cache.
    people = page.locator('[data-testid="stSlider"]').filter(has_text="Most people to find").get_by_role("slider")
    people.focus()
    people.press("ArrowRight")
    wait_for_app_idle(page)
    upload_files(page, long_video)
    wait_visible(page.get_by_test_id("stProgress").filter(has_text=PROGRESS), app, "The first session's progress")

    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        open_video_page(other, app)
        other.get_by_test_id("stSidebar").get_by_text("lite", exact=True).click()  # not in the cache either
        wait_for_app_idle(other)
        upload_files(other, media / "clip.mp4")
        waiting = other.get_by_test_id("stProgress").filter(has_text="Waiting for another analysis to finish")
        wait_visible(waiting, app, "The second session's place in the queue", 30_000)

        wait_visible(page.get_by_text(re.compile(r"session\.mp4 · .* analysed 600 frames")), app, "The first result",
                     240_000)
        wait_visible(other.get_by_text(re.compile(r"clip\.mp4 · .* analysed 60 frames")), app, "The second result",
                     120_000)
        for tab in (page, other):
            wait_for_app_idle(tab)
            expect(tab.locator(".ps-player video")).to_have_count(1)
            assert_no_exception(tab)
    finally:
        other.context.close()


def test_the_player_loops_a_range_at_the_speed_chosen(page: Page, app: AppServer, media: Path) -> None:
    open_video_page(page, app)
    upload_files(page, media / "jacks5.mp4")
    player = page.locator(".ps-player")
    wait_visible(player, app, "The review player")
    expect(player).to_have_attribute("data-state", "ready", timeout=RESULT_TIMEOUT_MS)
    wait_for_app_idle(page)
    video = player.locator("video")
    speed = player.locator("input[type=range]")
    speed.fill("2")  # the fastest: 2x
    assert video.evaluate("v => v.playbackRate") == 2
    video.evaluate("v => { v.pause(); v.currentTime = 1.0; }")
    expect(player).to_have_attribute("data-frame", "30")
    player.locator("[data-action=loop-start]").click()
    video.evaluate("v => { v.currentTime = 2.0; }")
    expect(player).to_have_attribute("data-frame", "60")
    player.locator("[data-action=loop-end]").click()
    expect(player.get_by_role("checkbox", name="Loop")).to_be_checked()
    player.locator("[data-action=play]").click()
    times = []  # 3 s at 2x would run past 2.0 s six times over without the loop
    for _ in range(30):
        page.wait_for_timeout(100)
        times.append(float(player.get_attribute("data-time")))
    player.locator("[data-action=play]").click()
    assert min(times) >= 1.0 - 1e-3 and max(times) <= 2.0 + 0.05, times
    assert any(later < earlier for earlier, later in zip(times, times[1:])), f"it never looped back: {times}"
    speed.fill("0.1")  # the slowest
    assert video.evaluate("v => v.playbackRate") == pytest.approx(0.1)
    assert_no_exception(page)


def test_a_text_file_named_mp4_gets_a_sentence(page: Page, app: AppServer, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("These are my training notes, not a video.\n" * 20)
    open_video_page(page, app)
    upload_files(page, fake)
    error = page.get_by_test_id("stAlert").filter(has_text="not a video file we can read")
    wait_visible(error, app, "The 'not a video file we can read' error")
    expect(error).to_contain_text("notes.mp4")
    wait_for_app_idle(page)
    expect(page.locator("video")).to_have_count(0)
    assert_no_exception(page)
    assert leftovers(app) == []  # a file that is not a video is not kept


# --- exercises --------------------------------------------------------------------------------------------------------

EXERCISE_SCREENSHOT = screenshot_path("exercise.png")
JACKS5_RESULT_TIMEOUT_MS = 240_000  # 190 frames at 960x720 (about 12 s when idle), plus the model's first load
JACKS5_REPS = 5  # tests/media/README.md: one real jumping jack of the Sports2D demo, looped 5 times

# The grids of the page's dataframes, through glide-data-grid's accessible <table role="grid"> (the cells themselves
# are painted on a canvas); it holds the rendered rows and columns only, which for a five-rep table is every row.
DATAFRAME_GRIDS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] table[role="grid"]')].map(t => ({
    rows: Number(t.getAttribute('aria-rowcount')),
    head: [...t.querySelectorAll('thead th')].map(h => h.textContent.trim()),
    body: [...t.querySelectorAll('tbody tr')].map(r => [...r.querySelectorAll('td')].map(c => c.textContent.trim())),
}))"""
# What each Plotly chart of the page holds, by its Streamlit key (st.plotly_chart(..., key=...) → st-key-<key>).
PLOTLY_CHARTS = """() => Object.fromEntries([...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
    .map(p => {
        const key = [...(p.closest('[class*="st-key-"]') || {classList: []}).classList]
            .find(c => c.startsWith('st-key-'));
        const shapes = p.layout.shapes || [];
        return [key ? key.slice('st-key-'.length) : '?', {
            shapes: shapes.map(s => ({name: s.name || null, type: s.type, x0: s.x0, x1: s.x1})),
            drawn: p.querySelectorAll('.shapelayer path').length,
            annotations: [...p.querySelectorAll('.annotation-text')].map(a => a.textContent),
            traces: p._fullData.map(t => t.name),
            y: p._fullLayout.yaxis.title.text,
            width: p.getBoundingClientRect().width, height: p.getBoundingClientRect().height,
        }];
    }))"""
# Set in the page before a change: whether a progress bar shows up at any moment afterwards (however briefly).
WATCH_FOR_PROGRESS = """() => {
    window.__progressSeen = false;
    const look = () => { if (document.querySelector('[data-testid="stProgress"]')) window.__progressSeen = true; };
    window.__progressWatch = new MutationObserver(look);
    window.__progressWatch.observe(document.body, {childList: true, subtree: true});
    look();
}"""


def exercise_picker(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Exercise")


def metric_value(page: Page, label: str) -> str:
    """The value of the st.metric labelled ``label`` (its label, value and any delta are separate blocks)."""
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(
        label, exact=True))
    expect(metric).to_have_count(1)
    return metric.get_by_test_id("stMetricValue").inner_text().strip()


def rep_grid(page: Page) -> dict:
    """The rep table: the one dataframe whose columns start rep, start, duration (as the page names them). Data grids draw
    (and fill their accessible table) once on screen, so the exercise section is scrolled to first."""
    page.get_by_test_id("stMain").get_by_role("heading", name="Exercise", exact=True).scroll_into_view_if_needed()
    page.wait_for_function(f"""() => ({DATAFRAME_GRIDS})().some(g => g.head.slice(0, 3).join() === 'rep,start,duration'
        && g.body.length === g.rows - 1)""", timeout=30_000)
    grids = [g for g in page.evaluate(DATAFRAME_GRIDS) if g["head"][:3] == ["rep", "start", "duration"]]
    assert len(grids) == 1, f"expected one rep table among the page's dataframes: {page.evaluate(DATAFRAME_GRIDS)}"
    return grids[0]


def exercise_region_screenshot(page: Page, path: Path, settle_ms: int = 1500) -> Path:
    """The results from the sidebar's exercise picker and the shaded angle chart down to the rep chart, at the
    page's width: as full_page_screenshot, the viewport grown to the content for the shot, then clipped."""
    viewport = page.viewport_size or {"width": 1400, "height": 1000}
    height = page.evaluate("""() => Math.max(document.documentElement.scrollHeight,
        ...['[data-testid="stMain"]', '[data-testid="stAppViewContainer"]', '[data-testid="stSidebarContent"]']
            .map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": viewport["width"], "height": max(int(height) + 40, viewport["height"])})
    try:
        page.wait_for_timeout(settle_ms)  # charts and data grids redraw after a resize
        top = min(page.get_by_test_id("stSidebar").get_by_role("heading", name="Exercise").bounding_box()["y"],
                  page.get_by_role("heading", name="Joint angles").bounding_box()["y"])
        rep_chart = page.locator(".st-key-rep_chart").bounding_box()
        assert rep_chart is not None, "the rep chart has no box"
        bottom = rep_chart["y"] + rep_chart["height"]
        path.parent.mkdir(parents=True, exist_ok=True)
        # From the top of the sidebar's exercise heading box (its own padding is the margin; a few pixels higher, the
        # main column's video caption would be cut through) to a little below the rep chart.
        page.screenshot(path=str(path), full_page=True,
                        clip={"x": 0, "y": max(0, top - 2), "width": viewport["width"], "height": bottom - top + 26})
    finally:
        page.set_viewport_size(viewport)
    return path


def test_jumping_jacks_from_the_url_are_counted_shaded_and_charted_then_found_from_the_motion(
        page: Page, app: AppServer, media: Path) -> None:
    """jacks5.mp4 (five real jumping jacks: one cycle of the Sports2D demo looped 5 times, tests/media/README.md)
    opened at /video?exercise=jumping_jack: the picker, the Reps metric, the rep table, the five reps shaded on the
    angle chart and the range-of-motion and tempo chart; then `auto` finds the exercise from the same poses, with no
    new analysis. Nothing on the way contacts a host but the app."""
    recorder = Recorder(page)
    page.goto(f"{app}/video?exercise=jumping_jack")
    expect(page.get_by_role("heading", name="Video", exact=True)).to_be_visible(timeout=30_000)
    wait_for_app_idle(page)
    picker = exercise_picker(page)
    expect(picker.get_by_role("combobox")).to_have_value("Jumping jack")
    upload_files(page, media / "jacks5.mp4")

    wait_visible(page.get_by_text(re.compile(r"analysed 190 frames in [\d.]+ s")), app, "The finished analysis",
                 JACKS5_RESULT_TIMEOUT_MS)
    wait_visible(page.locator(".st-key-rep_chart .js-plotly-plot"), app, "The rep chart", 60_000)
    wait_visible(page.get_by_role("heading", name="Downloads"), app, "The downloads", 60_000)
    wait_for_app_idle(page)
    assert_no_exception(page)
    analysed = page.get_by_text(re.compile(r"analysed 190 frames in [\d.]+ s")).inner_text()

    # The choice holds: the picker, the address, the section.
    expect(picker.get_by_role("combobox")).to_have_value("Jumping jack")
    assert "exercise=jumping_jack" in page.url, page.url
    expect(page.get_by_test_id("stMain").get_by_role("heading", name="Exercise", exact=True)).to_be_visible()
    assert metric_value(page, "Reps") == str(JACKS5_REPS)
    assert metric_value(page, "Partial reps") == "0"

    # The rep table: five rows numbered 1 to 5, each about one 38-frame cycle (1.27 s) long, in time order.
    grid = rep_grid(page)
    assert grid["rows"] == 1 + JACKS5_REPS, grid
    assert [row[0] for row in grid["body"]] == [str(n) for n in range(1, JACKS5_REPS + 1)], grid
    starts, durations = ([float(row[grid["head"].index(column)].rstrip(" s")) for row in grid["body"]]
                         for column in ("start", "duration"))
    ends = [s + d for s, d in zip(starts, durations)]
    assert starts == sorted(starts) and all(0.6 < d < 1.6 for d in durations), grid

    # The angle chart shades the five reps (named rep 1..5, drawn as paths of its shape layer, numbered above), at the
    # table's times; the rep chart shows range of motion and tempo for the five reps.
    page.wait_for_function("""() => {
        const chart = document.querySelector('.st-key-angle_chart .js-plotly-plot');
        return chart && (chart.layout.shapes || []).filter(s => /^rep \\d+$/.test(s.name || '')).length > 0
            && chart.querySelectorAll('.shapelayer path').length >= (chart.layout.shapes || []).length;
    }""", timeout=30_000)
    charts = page.evaluate(PLOTLY_CHARTS)
    angles, reps_chart = charts["angle_chart"], charts["rep_chart"]
    assert angles["y"] == "Angle (°)", angles
    shaded = [s for s in angles["shapes"] if (s["name"] or "").startswith("rep ")]
    assert [s["name"] for s in shaded] == [f"rep {n}" for n in range(1, JACKS5_REPS + 1)], angles
    assert all(s["type"] == "rect" for s in shaded), angles
    assert [s["x0"] for s in shaded] == pytest.approx(starts, abs=0.01), (shaded, starts)
    assert [s["x1"] for s in shaded] == pytest.approx(ends, abs=0.01), (shaded, ends)
    assert angles["drawn"] >= len(angles["shapes"]), angles  # every shape of the layout is drawn
    assert all(str(n) in angles["annotations"] for n in range(1, JACKS5_REPS + 1)), angles
    assert {"Range of motion", "Tempo"} <= set(reps_chart["annotations"]), reps_chart
    assert {"range of motion", "eccentric", "concentric"} <= set(reps_chart["traces"]), reps_chart
    assert reps_chart["width"] > 300 and reps_chart["height"] > 300, reps_chart
    assert "exercise=jumping_jack" in page.url, page.url
    assert_no_exception(page)

    exercise_region_screenshot(page, EXERCISE_SCREENSHOT)
    print(f"\nScreenshot of the exercise results: {EXERCISE_SCREENSHOT}")

    # `auto`: the same poses, the exercise found from the motion, and no progress bar at any moment (no new analysis).
    page.evaluate(WATCH_FOR_PROGRESS)
    choose_option(page, picker, "Find it from the motion")
    found = page.get_by_text(re.compile(r"Found from the motion: Jumping jack, \d{1,3}% sure"))
    wait_visible(found, app, "The exercise found from the motion", 60_000)
    wait_for_app_idle(page)
    expect(picker.get_by_role("combobox")).to_have_value("Find it from the motion")
    assert "exercise=auto" in page.url, page.url
    assert page.evaluate("() => window.__progressSeen") is False, "a progress bar appeared: the poses were analysed again"
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"analysed 190 frames in [\d.]+ s"))).to_have_text(analysed)
    assert metric_value(page, "Reps") == str(JACKS5_REPS)
    assert_no_exception(page)
    assert leftovers(app) == ["upload.mp4"]  # the one staged copy; no second annotated video was written

    recorder.snapshot(page)
    assert any(urlsplit(url).netloc == urlsplit(app).netloc for _, url in recorder.seen), "nothing was recorded"
    foreign = recorder.foreign(app)
    assert not foreign, "The Video page contacted another host:\n" + "\n".join(foreign)


def test_an_unknown_exercise_in_the_url_lists_the_known_ones(page: Page, app: AppServer) -> None:
    page.goto(f"{app}/video?exercise=burpee")
    expect(page.get_by_role("heading", name="Video", exact=True)).to_be_visible(timeout=30_000)
    wait_for_app_idle(page)
    message = page.get_by_test_id("stSidebar").get_by_test_id("stAlert").filter(has_text="burpee")
    wait_visible(message, app, "The message about the unknown exercise", 30_000)
    expect(message).to_contain_text("There is no exercise called “burpee”")
    text = message.inner_text()
    known = text.split("Known exercises:", 1)[-1]
    for name in ("squat", "push_up", "jumping_jack", "plank", "wall_sit"):
        assert name in known, text
    expect(exercise_picker(page).get_by_role("combobox")).to_have_value("None")  # the page goes on without one
    assert_no_exception(page)
