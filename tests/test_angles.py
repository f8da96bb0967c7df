"""Angles against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.angles import ANGLE_NAMES, ANGLES, compute_angles
from analysis.landmarks import INDEX, LANDMARK_COUNT

COLUMN = {name: i for i, name in enumerate(ANGLE_NAMES)}


def skeleton(points: dict[str, tuple[float, ...]], dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A (33, dims) pose with the given landmarks placed and the rest far away, all visible."""
    xy = np.full((LANDMARK_COUNT, dims), 1000.0)
    for name, value in points.items():
        xy[INDEX[name]] = value
    return xy, np.ones(LANDMARK_COUNT)


def test_elbow_right_angle_and_straight_arm_in_image_coordinates() -> None:
    xy, seen = skeleton({"left_shoulder": (0, 0), "left_elbow": (0, 10), "left_wrist": (10, 10),
                         "right_shoulder": (50, 0), "right_elbow": (50, 10), "right_wrist": (50, 25)})
    angles = compute_angles(xy, seen)
    assert angles[COLUMN["left elbow"]] == pytest.approx(90.0)
    assert angles[COLUMN["right elbow"]] == pytest.approx(180.0)


def test_knee_angle_of_60_degrees_in_3d() -> None:
    xyz, seen = skeleton({"right_hip": (0, 0, 0), "right_knee": (0, 1, 0),
                          "right_ankle": (0, 1 - np.cos(np.radians(60)), np.sin(np.radians(60)))}, dims=3)
    assert compute_angles(xyz, seen)[COLUMN["right knee"]] == pytest.approx(60.0, abs=1e-4)


def test_trunk_lean_neck_and_trunk_segment_of_an_upright_then_leaning_person() -> None:
    upright = {"left_hip": (-1, 0), "right_hip": (1, 0), "left_shoulder": (-1, -10), "right_shoulder": (1, -10),
               "left_ear": (-0.5, -13), "right_ear": (0.5, -13)}
    angles = compute_angles(*skeleton(upright))
    assert angles[COLUMN["trunk lean"]] == pytest.approx(0.0, abs=1e-6)
    assert angles[COLUMN["trunk"]] == pytest.approx(90.0)
    assert angles[COLUMN["neck flexion"]] == pytest.approx(180.0)
    assert angles[COLUMN["pelvis"]] == pytest.approx(180.0)  # right hip → left hip points left in the image

    leaning = dict(upright, left_shoulder=(9, -10), right_shoulder=(11, -10))  # shoulders 10 right, 10 up
    angles = compute_angles(*skeleton(leaning))
    assert angles[COLUMN["trunk lean"]] == pytest.approx(45.0)
    assert angles[COLUMN["trunk"]] == pytest.approx(45.0)


def test_segment_angles_follow_the_image_counter_clockwise_and_3d_elevation() -> None:
    # Forearm pointing down-left in the image (y grows downward): -135°.
    xy, seen = skeleton({"left_elbow": (0, 0), "left_wrist": (-5, 5)})
    assert compute_angles(xy, seen)[COLUMN["left forearm"]] == pytest.approx(-135.0)
    # In 3D the same direction, plus depth, is an elevation below the horizontal plane.
    xyz, seen = skeleton({"left_elbow": (0, 0, 0), "left_wrist": (-3, 5, 4)}, dims=3)
    assert compute_angles(xyz, seen)[COLUMN["left forearm"]] == pytest.approx(-45.0)


def test_hidden_landmark_gives_nan_only_for_the_angles_that_use_it() -> None:
    xy, seen = skeleton({"left_shoulder": (0, 0), "left_elbow": (0, 10), "left_wrist": (10, 10),
                         "left_hip": (0, 30), "right_shoulder": (5, 0), "right_hip": (5, 30)})
    seen[INDEX["left_wrist"]] = 0.2
    angles = compute_angles(xy, seen)
    assert np.isnan(angles[COLUMN["left elbow"]])
    assert np.isnan(angles[COLUMN["left forearm"]])
    assert angles[COLUMN["left shoulder"]] == pytest.approx(0.0, abs=1e-6)  # arm hangs along the trunk
    # A midpoint is only as visible as its least visible landmark.
    seen[INDEX["left_hip"]] = 0.1
    assert np.isnan(compute_angles(xy, seen)[COLUMN["trunk lean"]])


def test_coincident_points_give_nan_not_zero() -> None:
    xy, seen = skeleton({"right_shoulder": (3, 3), "right_elbow": (3, 3), "right_wrist": (8, 3),
                         "right_knee": (1, 1), "right_hip": (1, 1)})
    angles = compute_angles(xy, seen)
    assert np.isnan(angles[COLUMN["right elbow"]])
    assert np.isnan(angles[COLUMN["right thigh"]])


def test_vectorised_over_frames_and_people_matches_one_at_a_time() -> None:
    rng = np.random.default_rng(7)
    points = rng.normal(size=(5, 3, LANDMARK_COUNT, 3))
    visibility = rng.uniform(0.3, 1.0, size=(5, 3, LANDMARK_COUNT))
    together = compute_angles(points, visibility)
    assert together.shape == (5, 3, len(ANGLES))
    for f in range(5):
        for p in range(3):
            np.testing.assert_allclose(together[f, p], compute_angles(points[f, p], visibility[f, p]), rtol=1e-5)
    assert np.isnan(together).any() and np.isfinite(together).any()


def test_every_definition_explains_itself() -> None:
    assert len(set(ANGLE_NAMES)) == len(ANGLES)
    for definition in ANGLES:
        assert definition.meaning and len(definition.points) == (3 if definition.kind == "joint" else 2)


def test_a_missing_landmark_spoils_only_the_angles_that_use_it() -> None:
    xy, seen = skeleton({"left_shoulder": (0, 0), "left_elbow": (0, 10), "left_wrist": (10, 10),
                         "right_shoulder": (50, 0), "right_elbow": (50, 10), "right_wrist": (50, 25)})
    xy[INDEX["nose"]] = np.nan
    xy[INDEX["right_wrist"]] = np.nan
    angles = compute_angles(xy, seen)
    assert angles[COLUMN["left elbow"]] == pytest.approx(90.0)
    assert np.isnan(angles[COLUMN["right elbow"]])
