"""The charts: units on every axis, time in seconds as the frames' own timestamps, the scrubbed time marked."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from analysis.figures import (
    CURVE_COLOURS,
    MARKER_COLOUR,
    PERSON_COLOURS,
    TIME_TITLE,
    Quality,
    quality_strip,
    skeleton_3d,
    time_series,
)

# A variable frame rate: gaps of 1/30 s and 1/15 s, as a phone records when the light drops.
TIMES = np.array([0.0, 1 / 30, 2 / 30, 4 / 30, 5 / 30, 7 / 30])


def marker_times(figure: go.Figure) -> list[float]:
    shapes = [s for s in figure.layout.shapes if s.name == "scrubbed time"]
    for shape in shapes:
        assert shape.type == "line" and shape.x0 == shape.x1
        assert (shape.yref, shape.y0, shape.y1) == ("paper", 0, 1)  # across the whole plot
        assert shape.line.color == MARKER_COLOUR
    return [shape.x0 for shape in shapes]


def test_time_series_axes_are_titled_with_units_and_time_is_in_seconds() -> None:
    values = np.column_stack([np.linspace(90, 180, len(TIMES)), np.linspace(170, 100, len(TIMES))])
    figure = time_series(TIMES, values, ["left knee", "right knee"], "Angle (°)")
    assert figure.layout.xaxis.title.text == TIME_TITLE == "Time (s)"
    assert figure.layout.yaxis.title.text == "Angle (°)"
    for trace in figure.data:
        np.testing.assert_array_equal(trace.x, TIMES)  # each frame at its own time, not index / fps
    assert [t.name for t in figure.data] == ["left knee", "right knee"]
    assert all(t.showlegend is not False for t in figure.data)  # one legend entry per joint
    assert "°" in figure.data[0].hovertemplate
    assert marker_times(figure) == []


@pytest.mark.parametrize("y_title", ["Speed (px/s)", "Speed (m/s)", "Angular velocity (°/s)"])
def test_speed_charts_carry_their_unit(y_title: str) -> None:
    figure = time_series(TIMES, np.ones((len(TIMES), 1)), ["left_wrist"], y_title, marker_s=0.1)
    assert figure.layout.yaxis.title.text == y_title
    unit = y_title[y_title.index("(") + 1:-1]
    assert unit in figure.data[0].hovertemplate
    assert figure.layout.xaxis.title.text == "Time (s)"


def test_raw_lines_are_thin_and_faint_under_bold_smoothed_ones_of_the_same_colour() -> None:
    smoothed = np.full((len(TIMES), 2), 120.0)
    raw = smoothed + np.array([[3.0, -3.0]])
    figure = time_series(TIMES, smoothed, ["left elbow", "right elbow"], "Angle (°)", raw=raw)
    assert len(figure.data) == 4
    by_name = {t.name: t for t in figure.data}
    for i, joint in enumerate(["left elbow", "right elbow"]):
        bold, faint = by_name[joint], by_name[f"{joint} (raw)"]
        assert bold.line.color == faint.line.color == CURVE_COLOURS[i]
        assert faint.line.width < bold.line.width
        assert faint.opacity < 1 and bold.opacity in (None, 1)
        assert faint.showlegend is False and faint.legendgroup == bold.legendgroup == joint  # toggled together
        np.testing.assert_array_equal(faint.y, raw[:, i])
    # Raw lines are drawn first, so the smoothed ones lie on top.
    assert [t.name for t in figure.data].index("left elbow (raw)") < [t.name for t in figure.data].index("left elbow")


def test_the_scrubbed_time_is_marked_at_that_time() -> None:
    figure = time_series(TIMES, np.zeros((len(TIMES), 1)), ["trunk lean"], "Angle (°)", marker_s=4 / 30)
    assert marker_times(figure) == [pytest.approx(4 / 30)]


def test_missing_values_break_the_line_instead_of_being_joined() -> None:
    values = np.array([[1.0], [2.0], [np.nan], [np.nan], [5.0], [6.0]])
    figure = time_series(TIMES, values, ["left hip"], "Angle (°)")
    assert np.isnan(np.asarray(figure.data[0].y, float)[2:4]).all()
    assert not figure.data[0].connectgaps


def test_many_curves_cycle_through_distinct_colours() -> None:
    names = [f"joint {i}" for i in range(12)]
    figure = time_series(TIMES, np.zeros((len(TIMES), 12)), names, "Angle (°)")
    colours = [t.line.color for t in figure.data]
    assert colours[:len(CURVE_COLOURS)] == list(CURVE_COLOURS)
    assert len(set(CURVE_COLOURS)) == len(CURVE_COLOURS) and MARKER_COLOUR not in CURVE_COLOURS


def test_quality_counts_missing_people_hidden_and_interpolated_landmarks() -> None:
    present = np.array([True, True, False, True, True, True])
    visibility = np.full((6, 33), 0.9)
    visibility[1, :11] = 0.2  # a third of the landmarks hidden in frame 1
    visibility[2] = np.nan  # nobody in frame 2
    interpolated = np.zeros((6, 33), bool)
    interpolated[4, :33] = True
    quality = Quality.of(present, visibility, interpolated, threshold=0.5)
    np.testing.assert_array_equal(quality.no_person, [0, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(quality.low_visibility, [0, 1 / 3, 0, 0, 0, 0])  # a missing person is not "hidden"
    np.testing.assert_allclose(quality.interpolated, [0, 0, 0, 0, 1, 0])
    assert quality.frames_affected() == {"No person": 1, "Low visibility": 1, "Interpolated": 1}


def test_quality_strip_has_a_row_per_check_over_time_in_seconds_with_the_marker() -> None:
    present = np.array([True, False, True, True, True, True])
    visibility = np.where(present[:, None], 0.9, np.nan) * np.ones((6, 33))
    quality = Quality.of(present, visibility, np.zeros((6, 33), bool), 0.5)
    figure = quality_strip(TIMES, quality, marker_s=2 / 30)
    assert [t.type for t in figure.data] == ["heatmap"] * 3
    labels = dict(zip(figure.layout.yaxis.tickvals, figure.layout.yaxis.ticktext))
    assert [labels[t.y[0]] for t in figure.data] == ["No person", "Low visibility", "Interpolated"]
    assert [t.name for t in figure.data] == ["No person", "Low visibility", "Interpolated"]
    for trace in figure.data:
        np.testing.assert_array_equal(trace.x, TIMES)
    no_person = np.asarray(figure.data[0].z[0], float)
    assert no_person[1] == 1 and np.isnan(no_person[[0, 2, 3, 4, 5]]).all()  # clean frames are left blank
    assert figure.layout.xaxis.title.text == "Time (s)"
    assert marker_times(figure) == [pytest.approx(2 / 30)]
    assert not figure.layout.annotations


def test_a_clean_clip_keeps_its_row_labels_and_says_so() -> None:
    quality = Quality.of(np.ones(6, bool), np.ones((6, 33)), np.zeros((6, 33), bool), 0.5)
    figure = quality_strip(TIMES, quality)
    assert list(figure.layout.yaxis.ticktext) == ["No person", "Low visibility", "Interpolated"]
    assert figure.layout.yaxis.type != "category"  # Plotly.js cannot draw heatmaps on a categoryarray axis
    assert [a.text for a in figure.layout.annotations] == ["every frame clean"]
    assert marker_times(figure) == []


def test_quality_strip_of_a_single_frame_does_not_fail() -> None:
    quality = Quality.of(np.array([False]), np.full((1, 33), np.nan), np.zeros((1, 33), bool), 0.5)
    figure = quality_strip(np.array([0.0]), quality, marker_s=0.0)
    assert figure.layout.xaxis.range[0] < 0.0 < figure.layout.xaxis.range[1]


def test_skeleton_3d_is_unchanged_by_the_new_charts() -> None:
    rng = np.random.default_rng(0)
    world = rng.normal(0, 0.3, (2, 33, 3)).astype(np.float32)
    visibility = np.ones((2, 33), np.float32)
    visibility[1, 0] = 0.1
    figure = skeleton_3d(world, visibility)
    assert [t.type for t in figure.data] == ["scatter3d"] * 4
    assert [t.name for t in figure.data if t.showlegend is not False] == ["person 1", "person 2"]
    assert figure.data[0].line.color == PERSON_COLOURS[0]
    assert len(figure.data[3].x) == 32  # the hidden nose of person 2 is left out
    scene = figure.layout.scene
    assert (scene.xaxis.title.text, scene.yaxis.title.text, scene.zaxis.title.text) == ("x (m)", "depth (m)",
                                                                                       "height (m)")
