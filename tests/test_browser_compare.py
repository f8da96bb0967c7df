"""The Compare page in real headless Chromium: two videos uploaded through their real inputs, both review players
playing their own video, the moment slider taking both to the same phase of the movement, the charts drawn."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from browser_support import (  # noqa: F401 - the *_fixture names register the playwright, browser and page fixtures
    AppServer,
    assert_no_exception,
    browser_fixture,
    full_page_screenshot,
    page_fixture,
    playwright_fixture,
    screenshot_path,
    streamlit_server,
    upload_files,
    wait_for_app_idle,
)
from test_compare import shifted_copy

SHIFT_S = 0.8
SCREENSHOT = screenshot_path("compare.png")
RESULT_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def app() -> Iterator[AppServer]:
    with streamlit_server() as server:
        yield server


@pytest.fixture(scope="module")
def later(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shifted_copy(media / "jacks5.mp4", tmp_path_factory.mktemp("later") / "later.mp4", SHIFT_S, 25)


def player_times(page: Page) -> list[float]:
    return page.locator(".ps-player").evaluate_all("players => players.map(p => Number(p.dataset.time))")


def test_compare_shows_both_players_in_step_and_the_differences(page: Page, app: AppServer, media: Path,
                                                                 later: Path) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{app}/compare")
    expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=30_000)
    wait_for_app_idle(page)
    upload_files(page, media / "jacks5.mp4", uploader=0)
    upload_files(page, later, uploader=1)
    try:
        expect(page.get_by_role("heading", name="Differences per joint")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    except AssertionError as error:
        pytest.fail(f"The comparison did not appear: {error}\nServer log:\n{app.log()}", pytrace=False)
    players = page.locator(".ps-player")
    expect(players).to_have_count(2)
    for i in range(2):
        expect(players.nth(i)).to_have_attribute("data-state", "ready", timeout=60_000)
    sources = players.locator("video").evaluate_all("videos => videos.map(v => v.currentSrc)")
    assert all(src.startswith(app) for src in sources) and sources[0] != sources[1], sources
    expect(page.get_by_text("starts at 0.79", exact=False).or_(page.get_by_text("starts at 0.80"))).to_be_visible()
    wait_for_app_idle(page)

    # Click the middle of the moment slider: both players go to the same phase, the athlete's 0.8 s earlier.
    slider = page.get_by_test_id("stSlider").filter(has_text="Moment").get_by_role("slider")
    widget = page.get_by_test_id("stSlider").filter(has_text="Moment").bounding_box()
    handle = slider.bounding_box()
    assert widget is not None and handle is not None
    page.mouse.click(widget["x"] + widget["width"] * 0.5, handle["y"] + handle["height"] / 2)  # on the track
    wait_for_app_idle(page)
    thumb = page.get_by_test_id("stSlider").filter(has_text="Moment").get_by_test_id("stSliderThumbValue")
    moment = float(thumb.inner_text().removesuffix(" s"))
    assert 2.5 < moment < 4.5, moment
    deadline = time.monotonic() + 30
    # The two players seek on their own: wait for both (a CI run once read the athlete's before it had moved).
    while time.monotonic() < deadline:
        reference_s, athlete_s = player_times(page)
        if abs(reference_s - moment) <= 0.05 and abs(athlete_s - (reference_s - SHIFT_S)) <= 0.1:
            break
        page.wait_for_timeout(100)
    assert reference_s == pytest.approx(moment, abs=0.05), (moment, reference_s)
    assert athlete_s == pytest.approx(reference_s - SHIFT_S, abs=0.1), (reference_s, athlete_s)

    # Both angle curves on one chart, the skeletons over each other, the table with a row per joint.
    plots = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    expect(plots).to_have_count(2)
    drawn = plots.evaluate_all("plots => plots.map(p => p._fullData.length)")
    assert drawn == [4, 16], drawn
    grid = page.locator('[data-testid="stDataFrame"] table[role="grid"]')
    expect(grid).to_have_attribute("aria-rowcount", "9")  # a header and the eight default joints
    expect(page.get_by_test_id("stDownloadButton")).to_have_count(3)

    # Picking a joint's row takes both players to its largest difference.
    rows = grid.evaluate("""t => [...t.querySelectorAll('tbody tr')].map(r =>
        [...r.querySelectorAll('td')].map(c => c.textContent.trim()))""")
    head = grid.evaluate("t => [...t.querySelectorAll('thead th')].map(h => h.textContent.trim())")
    row = next(i for i, cells in enumerate(rows) if "right elbow" in cells)
    largest_at = float(rows[row][head.index("largest at, reference (s)")])
    page.get_by_test_id("stDataFrame").scroll_into_view_if_needed()
    table_box = page.get_by_test_id("stDataFrame").bounding_box()
    assert table_box is not None
    row_height = table_box["height"] / (len(rows) + 1)
    page.mouse.click(table_box["x"] + 17, table_box["y"] + row_height * (row + 1.5))  # the row's checkbox
    wait_for_app_idle(page)
    expect(thumb).to_have_text(f"{largest_at:.2f} s", timeout=30_000)
    assert_no_exception(page)
    assert errors == [], errors
    full_page_screenshot(page, SCREENSHOT)
