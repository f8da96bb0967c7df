"""The Image page in a real browser: the real app (``streamlit run dashboard.py``), headless Chromium, real uploads.

One server and one Chromium serve the whole module; every test gets its own browser context, hence its own
Streamlit session. Run: ``.venv/bin/python -m pytest tests/test_browser_image.py -q``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect

from analysis.angles import ANGLES
from analysis.figures import PERSON_COLOURS
from analysis.landmarks import LANDMARK_NAMES
from analysis.templates import PoseTemplate
from browser_support import (  # noqa: F401 - the *_fixture names register the app_url, browser and page fixtures
    AppServer,
    app_url_fixture,
    assert_no_exception,
    browser_fixture,
    full_page_screenshot,
    page_fixture,
    playwright_fixture,
    streamlit_server,
    upload_files,
    wait_for_app_idle,
)

pytestmark = pytest.mark.browser

RESULT_TIMEOUT_MS = 60_000  # the first analysis loads the pose model
SCREENSHOT = Path("/tmp/browser_image.png")


def open_image_page(page: Page, app_url: AppServer) -> None:
    page.goto(f"{app_url}/image")
    expect(page.get_by_role("heading", name="Image", exact=True)).to_be_visible(timeout=30_000)


def wait_visible(locator: Locator, app_url: AppServer, what: str, timeout_ms: float = RESULT_TIMEOUT_MS) -> None:
    """Wait for ``locator`` to be visible; on timeout, fail with the server's log (tracebacks are hidden in the UI)."""
    try:
        expect(locator.first).to_be_visible(timeout=timeout_ms)
    except AssertionError as error:
        pytest.fail(f"{what} did not appear within {timeout_ms / 1000:.0f} s: {error}\n"
                    f"Server log:\n{app_url.log()}", pytrace=False)


def keyed_container(page: Page, key: str) -> Locator:
    """The ``st.container(key=...)`` holding a table and its heading (Streamlit marks it with a class)."""
    return page.locator(f".st-key-{key}")


def coloured_pixels(png: bytes, hex_colour: str, tolerance: int = 40) -> int:
    """How many pixels of a screenshot are within ``tolerance`` (per channel) of ``hex_colour``."""
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], np.int16)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)
    return int(np.all(np.abs(pixels - target) <= tolerance, axis=-1).sum())


def test_bus_photo_shows_skeleton_landmarks_angles_and_3d_view(page: Page, app_url: AppServer, media: Path) -> None:
    open_image_page(page, app_url)
    upload_files(page, media / "bus.jpg")

    # The annotated photo: a real, decoded <img> at the photo's own size (bus.jpg is 810 x 1080).
    picture = page.locator('[data-testid="stImage"] img')
    wait_visible(picture, app_url, "The annotated photo")
    expect(picture).to_have_count(1)
    expect(picture).to_have_js_property("complete", True, timeout=RESULT_TIMEOUT_MS)
    expect(picture).to_have_js_property("naturalWidth", 810)
    expect(picture).to_have_js_property("naturalHeight", 1080)
    expect(page.get_by_text("bus.jpg: 810 × 1080 px, 1 person")).to_be_visible()

    # The landmark table. st.dataframe draws on a canvas, but glide-data-grid renders an accessible <table role=grid>
    # as the canvas's fallback content (attached, never "visible") whose aria-rowcount is the full row count plus the
    # header row, whatever rows are scrolled into view.
    landmark_frame = keyed_container(page, "landmarks-bus").get_by_test_id("stDataFrame")
    wait_visible(landmark_frame, app_url, "The landmark table")
    expect(landmark_frame).to_have_count(1)
    landmark_grid = landmark_frame.locator('canvas table[role="grid"]')
    expect(landmark_grid).to_have_count(1)
    expect(landmark_grid).to_have_attribute("aria-rowcount", str(33 + 1))
    expect(landmark_grid.locator("th").first).to_have_text("landmark")
    expect(landmark_grid.get_by_test_id("glide-cell-0-0")).to_have_text(LANDMARK_NAMES[0])  # nose

    angle_grid = keyed_container(page, "angles-bus").get_by_test_id("stDataFrame").locator('canvas table[role="grid"]')
    expect(angle_grid).to_have_count(1)
    expect(angle_grid).to_have_attribute("aria-rowcount", str(len(ANGLES) + 1))
    expect(angle_grid.get_by_test_id("glide-cell-0-0")).to_have_text(ANGLES[0].name)

    # The 3D view: Plotly built a 3D scene with the traces, and WebGL really drew the skeleton's bones in
    # person 1's colour, counted in a screenshot of the chart: about 2,500 pixels when drawn; a blank or failed WebGL
    # canvas leaves only the legend's swatch (about 120).
    chart = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    wait_visible(chart, app_url, "The 3D chart")
    expect(chart).to_have_count(1)
    canvas = chart.locator(".gl-container canvas")
    expect(canvas.first).to_be_visible(timeout=30_000)
    scene = chart.evaluate("""plot => ({scene: !!(plot._fullLayout && plot._fullLayout.scene),
                                       traces: (plot.data || []).map(t => t.type),
                                       canvas: [...plot.querySelectorAll('.gl-container canvas')]
                                           .map(c => [c.width, c.height])})""")
    assert scene["scene"], f"The Plotly chart has no 3D scene: {scene}"
    assert scene["traces"] == ["scatter3d", "scatter3d"], f"Expected bones and joints of one person: {scene}"
    assert all(w > 0 and h > 0 for w, h in scene["canvas"]), f"The WebGL canvas has no size: {scene}"
    expect(chart.locator(".legendtext")).to_have_text(["person 1"])
    bones = 0
    for _ in range(20):  # WebGL draws a frame or two after the DOM is ready
        bones = coloured_pixels(chart.screenshot(), PERSON_COLOURS[0])
        if bones > 800:
            break
        page.wait_for_timeout(500)
    assert bones > 800, f"The 3D chart shows almost no pixels of the skeleton's colour ({bones}): WebGL drew nothing?"

    downloads = page.get_by_test_id("stDownloadButton")
    expect(downloads).to_have_count(4)
    expect(downloads).to_have_text(["Annotated PNG", "Landmarks CSV", "Everything (JSON)", "Pose template (JSON)"])
    with page.expect_download() as caught:
        downloads.nth(3).locator("button").click()
    assert caught.value.suggested_filename == "bus_template.json"
    template = PoseTemplate.from_json(Path(caught.value.path()).read_bytes())  # what the Webcam page will load
    assert template.name.startswith("bus") and template.weights.sum() > 10

    wait_for_app_idle(page)
    assert_no_exception(page)
    full_page_screenshot(page, SCREENSHOT)


def test_two_photos_with_the_same_name_each_show_with_their_own_downloads(page: Page, app_url: AppServer,
                                                                          media: Path, tmp_path: Path) -> None:
    """Two phones' IMG_0001.jpg: different photos, one name; and a name Markdown would read as formatting."""
    photo = Image.open(media / "bus.jpg")
    buffers = []
    for picture in (photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=90)
        buffers.append(buffer.getvalue())
    open_image_page(page, app_url)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": buffers[0]},
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": buffers[1]},
        {"name": "**me** [at](x).jpg", "mimeType": "image/jpeg", "buffer": buffers[0]},
    ])
    pictures = page.locator('[data-testid="stImage"] img')
    wait_visible(pictures.nth(2), app_url, "The third annotated photo")
    wait_for_app_idle(page)
    expect(pictures).to_have_count(3)
    expect(page.get_by_text("IMG_0001.jpg: 810 × 1080 px, 1 person")).to_have_count(2)
    expect(page.get_by_text("**me** [at](x).jpg: 810 × 1080 px, 1 person")).to_have_count(1)  # shown as it is

    downloads = page.get_by_test_id("stDownloadButton").filter(has_text="Annotated PNG")
    expect(downloads).to_have_count(3)
    names, pixels = [], []
    for i in range(3):
        with page.expect_download() as caught:
            downloads.nth(i).locator("button").click()
        names.append(caught.value.suggested_filename)
        pixels.append(np.asarray(Image.open(caught.value.path()).convert("RGB"), np.int16))
    assert names == ["IMG_0001_annotated.png", "IMG_0001-2_annotated.png", "me_at_x_annotated.png"]
    assert np.abs(pixels[0] - pixels[1]).mean() > 10  # each download is its own photo's, not the other's
    assert np.abs(pixels[0] - pixels[2]).mean() < 1
    assert_no_exception(page)


def test_photo_without_a_person_says_so(page: Page, app_url: AppServer, media: Path) -> None:
    open_image_page(page, app_url)
    upload_files(page, media / "zidane.jpg")

    hint = page.get_by_test_id("stAlert").filter(has_text="No person was found in this picture")
    wait_visible(hint, app_url, "The 'No person was found' hint")
    expect(page.get_by_text("zidane.jpg: 1280 × 720 px, 0 people")).to_be_visible()
    expect(page.locator('[data-testid="stImage"] img')).to_have_js_property("naturalWidth", 1280)
    wait_for_app_idle(page)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(0)
    expect(page.get_by_test_id("stDownloadButton")).to_have_count(0)
    assert_no_exception(page)


def test_text_file_named_jpg_gets_a_human_error(page: Page, app_url: AppServer, tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("These are my training notes, not a photo.\n" * 20)
    open_image_page(page, app_url)
    upload_files(page, fake)

    error = page.get_by_test_id("stAlert").filter(has_text="not an image we can read")
    wait_visible(error, app_url, "The 'not an image we can read' error")
    expect(error).to_have_count(1)
    expect(error).to_contain_text("notes.jpg")
    expect(error).to_contain_text("Choose a JPEG, PNG, WebP or BMP photo.")
    wait_for_app_idle(page)
    expect(page.get_by_test_id("stImage")).to_have_count(0)
    assert_no_exception(page)


def test_deep_link_to_image_page_on_a_fresh_server_uses_the_app_navigation(browser: Browser) -> None:
    with streamlit_server() as fresh:  # a server no one has visited: the first request is the deep link
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            tab = context.new_page()
            tab.goto(f"{fresh}/image")
            expect(tab.get_by_role("heading", name="Image", exact=True)).to_be_visible(timeout=30_000)
            wait_for_app_idle(tab)
            links = tab.locator('[data-testid="stSidebarNav"] a')
            expect(links.first).to_have_text(re.compile(r"Home$"), timeout=2_000)  # dashboard.py's own navigation
            expect(links.filter(has_text=re.compile(r"^(dashboard|shared)$"))).to_have_count(0)  # not views/*.py
            expect(tab).to_have_title(re.compile("PoseScope"))  # dashboard.py's set_page_config ran
        finally:
            context.close()
