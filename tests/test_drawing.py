"""The annotators on a real photo and the real model's pose: one rule (in place, on the array given), scaling
to a preview, and what each draws where."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from analysis.angles import ANGLE_NAMES, compute_angles
from analysis.drawing import (
    JOINT_COLOUR,
    LABEL_COLOUR,
    PRIVACY_BACKGROUND,
    REC_COLOUR,
    AngleLabelAnnotator,
    HudAnnotator,
    PrivacyAnnotator,
    SkeletonAnnotator,
    draw_skeleton_only,
)
from analysis.engine import FramePose, PoseEngine, PoseSettings
from analysis.images import load_image
from analysis.landmarks import INDEX


@pytest.fixture(scope="module")
def bus(media: Path) -> tuple[np.ndarray, FramePose]:
    """bus.jpg (810x1080) and the standing man the lite model finds in it."""
    rgb = load_image((media / "bus.jpg").read_bytes())
    with PoseEngine(PoseSettings(complexity="lite")) as engine:
        pose = engine.detect(rgb)
    assert pose.people == 1
    return rgb, pose


def near(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int = 30) -> np.ndarray:
    return (np.abs(rgb.astype(np.int16) - colour) <= tolerance).all(axis=-1)


def test_every_annotator_draws_in_place_on_the_array_it_is_given_and_returns_it(bus) -> None:
    rgb, pose = bus
    angles = compute_angles(pose.pixels, pose.visibility)
    for annotate in (lambda scene: SkeletonAnnotator().annotate(scene, pose),
                     lambda scene: PrivacyAnnotator().annotate(scene),
                     lambda scene: AngleLabelAnnotator(["left knee"]).annotate(scene, pose, angles),
                     lambda scene: HudAnnotator().annotate(scene, ["lite  30.0 fps"], 65.0)):
        scene = rgb.copy()
        assert annotate(scene) is scene
        assert not np.array_equal(scene, rgb)


@pytest.mark.parametrize("make", [lambda rgb: rgb[:, ::-1], lambda rgb: rgb[..., 0],
                                  lambda rgb: rgb.astype(np.float32)])
def test_a_scene_it_cannot_draw_on_in_place_is_refused_rather_than_copied(bus, make) -> None:
    rgb, pose = bus
    with pytest.raises(ValueError, match="writable, C-contiguous"):
        SkeletonAnnotator().annotate(make(rgb.copy()), pose)
    frozen = rgb.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        PrivacyAnnotator().annotate(frozen)


def test_the_skeleton_is_drawn_where_the_joints_are_on_a_smaller_preview_too(bus) -> None:
    rgb, pose = bus
    assert near(rgb, JOINT_COLOUR).sum() < 50  # the photo itself has little of the joints' red
    for width, height in ((810, 1080), (405, 540)):
        scene = SkeletonAnnotator().annotate(np.ascontiguousarray(cv2.resize(rgb, (width, height))), pose)
        x, y = np.round(pose.pixels[0, INDEX["left_knee"]] * [width / 810, height / 1080]).astype(int)
        assert near(scene[y - 1:y + 2, x - 1:x + 2], JOINT_COLOUR).all(), (width, height)
        assert near(scene, JOINT_COLOUR).sum() > 0.0005 * width * height


def test_a_landmark_below_the_threshold_is_left_out(bus) -> None:
    rgb, pose = bus
    x, y = np.round(pose.pixels[0, INDEX["nose"]]).astype(int)
    visibility = pose.visibility[0, INDEX["nose"]]
    shown = SkeletonAnnotator(threshold=visibility - 0.01).annotate(rgb.copy(), pose)
    hidden = SkeletonAnnotator(threshold=visibility + 0.01).annotate(rgb.copy(), pose)
    assert near(shown[y - 1:y + 2, x - 1:x + 2], JOINT_COLOUR).all()
    assert not near(hidden[y - 1:y + 2, x - 1:x + 2], JOINT_COLOUR).any()


def test_angle_labels_are_written_beside_their_joint_and_not_where_unmeasured(bus) -> None:
    rgb, pose = bus
    angles = compute_angles(pose.pixels, pose.visibility)
    scene = AngleLabelAnnotator(["left knee"]).annotate(rgb.copy(), pose, angles)
    x, y = np.round(pose.pixels[0, INDEX["left_knee"]]).astype(int)
    label = near(scene, LABEL_COLOUR) & ~near(rgb, LABEL_COLOUR)
    rows, columns = np.nonzero(label)
    assert len(rows) > 20
    assert (columns > x).all() and (columns < x + 80).all() and (rows < y).all() and (rows > y - 60).all()
    unmeasured = angles.copy()
    unmeasured[0, ANGLE_NAMES.index("left knee")] = np.nan
    np.testing.assert_array_equal(AngleLabelAnnotator(["left knee"]).annotate(rgb.copy(), pose, unmeasured), rgb)


def test_privacy_mode_shows_the_skeleton_on_a_plain_background_only(bus) -> None:
    _, pose = bus
    picture = draw_skeleton_only(pose)
    assert picture.shape == (1080, 810, 3)
    assert near(picture, PRIVACY_BACKGROUND, 0).mean() > 0.95 and near(picture, JOINT_COLOUR).sum() > 200


def test_the_hud_darkens_its_corner_and_marks_a_recording_in_red(bus) -> None:
    rgb, _ = bus
    plain = HudAnnotator().annotate(rgb.copy(), ["lite  30.0 fps  12.0 ms", "lag 3 ms  dropped 0"])
    recording = HudAnnotator().annotate(rgb.copy(), ["lite  30.0 fps  12.0 ms", "lag 3 ms  dropped 0"], 65.0)
    corner = (slice(10, 60), slice(10, 200))
    darkened = (plain[corner] <= 0.35 * rgb[corner].astype(float) + 1).all(axis=-1)
    assert darkened.mean() > 0.6  # the box behind the text, at a third of its brightness
    assert (plain[corner] > 200).all(axis=-1).sum() > 50  # light text
    np.testing.assert_array_equal(plain[400:], rgb[400:])  # nothing beyond the corner
    assert near(recording, REC_COLOUR, 20).sum() > near(plain, REC_COLOUR, 20).sum() + 50
