"""The Compare page through Streamlit's AppTest: the real page, the real analyses, a known offset between the two."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from analysis.compare import DEFAULT_JOINTS, FILES
from conftest import open_page
from test_compare import shifted_copy

SHIFT_S = 0.8


@pytest.fixture(scope="module")
def later(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jacks5.mp4 from 0.8 s on, at 25 frames/s."""
    return shifted_copy(media / "jacks5.mp4", tmp_path_factory.mktemp("later") / "later.mp4", SHIFT_S, 25)


def settle(app: AppTest, timeout_s: float = 240) -> AppTest:
    """Rerun the page, as its polling fragments do, until neither side shows an analysis's progress."""
    deadline = time.monotonic() + timeout_s
    app.run()
    while len(app.get("progress")) and time.monotonic() < deadline:
        time.sleep(0.25)
        app.run()
    assert not app.exception, app.exception
    return app


def compared(media: Path, later: Path) -> AppTest:
    app = open_page("compare")
    app.file_uploader[0].set_value(("jacks5.mp4", (media / "jacks5.mp4").read_bytes(), "video/mp4"))
    app.file_uploader[1].set_value(("later.mp4", later.read_bytes(), "video/mp4"))
    return settle(app)


def said_offset(app: AppTest) -> float:
    found = [re.search(r"starts at \*\*([-\d.]+) s\*\*", m.value) for m in app.markdown]
    return float(next(match for match in found if match).group(1))


def players(app: AppTest) -> list[dict[str, Any]]:
    shown = app.get("bidi_component")
    assert [component.proto.component_name for component in shown] == ["posescope_player"] * 2
    return [json.loads(component.proto.json) for component in shown]


def charts(app: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def test_two_videos_are_synchronised_aligned_and_compared(media: Path, later: Path) -> None:
    app = compared(media, later)
    assert [uploader.label.split(":")[0] for uploader in app.file_uploader] == ["The reference", "The athlete"]
    assert said_offset(app) == pytest.approx(SHIFT_S, abs=1 / 30)
    reference, athlete = players(app)
    assert reference["video"] and athlete["video"] and reference["video"] != athlete["video"]  # each its own picture
    assert (reference["frames"], athlete["frames"]) == (190, 137)
    overlay, aligned = charts(app)
    assert [trace["name"] for trace in overlay["data"] if trace.get("mode") == "lines"] == ["reference", "athlete"]
    assert len(aligned["data"]) == 2 * len(DEFAULT_JOINTS) and aligned["layout"]["yaxis"]["title"]["text"] == "Angle (°)"
    table = app.dataframe[0].value
    assert list(table["joint"]) == list(DEFAULT_JOINTS)
    assert (table["mean difference (°)"] < 10).all(), table  # the same movement: small differences
    assert [button.label for button in app.get("download_button")] == list(FILES)


def test_the_moment_slider_moves_both_players_to_matching_moments(media: Path, later: Path) -> None:
    app = compared(media, later)
    app.slider(key="moment").set_value(3.0).run()
    reference, athlete = players(app)
    assert reference["seek"]["time_s"] == pytest.approx(3.0)
    assert athlete["seek"]["time_s"] == pytest.approx(3.0 - SHIFT_S, abs=0.1)  # the same phase of the jack
    overlay_marker = [shape for shape in charts(app)[1]["layout"]["shapes"] if shape["name"] == "scrubbed time"]
    assert overlay_marker[0]["x0"] == pytest.approx(3.0)


def test_the_offset_can_be_set_by_hand_and_the_joints_chosen(media: Path, later: Path) -> None:
    app = compared(media, later)
    app.toggle(key="by_hand").set_value(True).run()
    app.number_input(key="offset").set_value(1.0).run()
    assert said_offset(app) == pytest.approx(1.0) and any("set by hand" in m.value for m in app.markdown)
    app.multiselect(key="joints").set_value(["left knee", "right elbow"]).run()
    assert list(app.dataframe[0].value["joint"]) == ["left knee", "right elbow"]
    app.number_input(key="offset").set_value(50.0).run()  # past the end of the reference
    assert not app.exception and "do not overlap" in app.error[0].value


def test_a_side_that_is_not_a_video_says_so_and_nothing_is_compared(media: Path, tmp_path: Path) -> None:
    app = open_page("compare")
    app.file_uploader[0].set_value(("jacks5.mp4", (media / "jacks5.mp4").read_bytes(), "video/mp4"))
    app.file_uploader[1].set_value(("<b>notes</b>.mp4", b"These are my training notes.\n" * 50, "video/mp4"))
    app = settle(app)
    errors = [error.value for error in app.error]
    assert len(errors) == 1 and "not a video file we can read" in errors[0] and "notes" in errors[0], errors
    assert len(app.get("bidi_component")) == 0 and not app.dataframe


def test_a_side_stays_until_closed_and_then_nothing_is_compared(media: Path, later: Path) -> None:
    app = compared(media, later)
    app.file_uploader[1].set_value(None).run()  # the file's chip removed: the video stays, as on the Video page
    assert app.dataframe and [button.label for button in app.button] == ["Close this video"]
    app.button(key="athlete_close").click().run()
    assert not app.exception and not app.dataframe and len(app.get("bidi_component")) == 0
