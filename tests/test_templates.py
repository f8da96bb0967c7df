"""Pose templates on real MediaPipe landmarks: the man standing in bus.jpg, transformed copies of him, poses built
from him by moving his limbs, and the jumping jacks of the test clip."""

from __future__ import annotations

import json
import timeit
from pathlib import Path

import av
import numpy as np
import pytest

from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.images import load_image
from analysis.landmarks import INDEX
from analysis.templates import (
    OFF_COLOUR,
    SIDE_SWAP,
    OffJointAnnotator,
    PoseTemplate,
    TemplateError,
    furthest_joints,
    score,
)

ARM = ("elbow", "wrist", "pinky", "index", "thumb")


@pytest.fixture(scope="module")
def bus(media: Path) -> FramePose:
    with PoseEngine(PoseSettings()) as engine:
        pose = engine.detect(load_image((media / "bus.jpg").read_bytes()))
    assert pose.people == 1
    return pose


@pytest.fixture(scope="module")
def standing(bus: FramePose) -> tuple[np.ndarray, np.ndarray]:
    """The man's pixels (33, 2) float64 and visibility (33,)."""
    return bus.pixels[0].astype(np.float64), bus.visibility[0]


@pytest.fixture(scope="module")
def template(standing: tuple[np.ndarray, np.ndarray]) -> PoseTemplate:
    return PoseTemplate.from_pose(*standing, name="standing", source="bus.jpg")


def rotated(points: np.ndarray, centre: np.ndarray, degrees: float) -> np.ndarray:
    turn = np.radians(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return (points - centre) @ rotation.T + centre


def arm_raised(pixels: np.ndarray, side: str, degrees: float) -> np.ndarray:
    """The pose with one arm swung out from the body about its shoulder by `degrees` (180: straight overhead)."""
    moved = pixels.copy()
    arm = [INDEX[f"{side}_{point}"] for point in ARM]
    outwards = 1 if pixels[INDEX[f"{side}_shoulder"], 0] > pixels[:, 0].mean() else -1  # image x of his side
    moved[arm] = rotated(pixels[arm], pixels[INDEX[f"{side}_shoulder"]], -outwards * degrees)
    return moved


def arms_raised(pixels: np.ndarray, degrees: float) -> np.ndarray:
    return arm_raised(arm_raised(pixels, "left", degrees), "right", degrees)


def mirror_picture(pixels: np.ndarray, width: float) -> np.ndarray:
    flipped = pixels.copy()
    flipped[:, 0] = width - flipped[:, 0]
    return flipped


def test_the_identical_pose_scores_100(template: PoseTemplate, standing: tuple[np.ndarray, np.ndarray]) -> None:
    similarity = score(template, *standing)
    assert similarity.score.shape == () and similarity.score >= 99.9
    assert np.nanmax(similarity.joint_error) < 1e-4 and not similarity.mirrored
    assert furthest_joints(similarity.joint_error) == []


@pytest.mark.parametrize("degrees", [-8, 8, 15])
def test_a_moved_scaled_and_slightly_turned_pose_scores_near_100(template: PoseTemplate, degrees: float,
                                                                 standing: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, visibility = standing
    moved = rotated(pixels, pixels.mean(axis=0), degrees) * 1.7 + [300, -50]
    assert score(template, moved, visibility).score >= 99


def test_a_turn_past_the_small_range_costs_and_upside_down_is_another_pose(
        template: PoseTemplate, standing: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, visibility = standing
    scores = [float(score(template, rotated(pixels, pixels.mean(axis=0), d), visibility).score)
              for d in (20, 30, 45, 180)]
    assert scores[0] >= 99 and scores[0] > scores[1] > scores[2]
    assert scores[2] < 20 and scores[3] < 1


def test_the_score_falls_as_the_arms_rise_and_names_the_arms(template: PoseTemplate,
                                                             standing: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, visibility = standing
    raised = np.stack([arms_raised(pixels, degrees) for degrees in (0, 10, 20, 45, 90, 170)])
    similarity = score(template, raised, np.broadcast_to(visibility, raised.shape[:-1]))
    assert similarity.score[0] >= 99.9 and similarity.score[1] > 90
    assert np.all(np.diff(similarity.score) < 0), similarity.score
    assert similarity.score[4] < 20 and similarity.score[5] < 20  # arms out level, arms overhead: other poses
    off = furthest_joints(similarity.joint_error[5])
    assert len(off) == 3 and all(name.split("_")[1] in ("elbow", "wrist") for name in off), off


def test_a_knee_lifted_scores_low_and_that_knee_is_furthest_off(template: PoseTemplate,
                                                                standing: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, visibility = standing
    lifted = pixels.copy()
    leg = [INDEX[f"right_{point}"] for point in ("knee", "ankle", "heel", "foot_index")]
    lifted[leg] = rotated(pixels[leg], pixels[INDEX["right_hip"]], -90)  # the thigh level
    lifted[leg[1:]] = rotated(lifted[leg[1:]], lifted[INDEX["right_knee"]], 90)  # the shin hanging down
    similarity = score(template, lifted, visibility)
    assert similarity.score < 40
    assert furthest_joints(similarity.joint_error)[:2] == ["right_knee", "right_ankle"]


def test_a_pose_on_the_other_side_matches_only_with_mirror_on(bus: FramePose,
                                                             standing: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, visibility = standing
    right_arm_up = PoseTemplate.from_pose(arm_raised(pixels, "right", 150), visibility, "right arm up")
    other_side = mirror_picture(arm_raised(pixels, "right", 150), bus.width)
    off, on = (score(right_arm_up, other_side, visibility, mirror=mirror) for mirror in (False, True))
    assert off.score < 30 and not off.mirrored
    assert on.score >= 99.9 and on.mirrored
    same_side = score(right_arm_up, arm_raised(pixels, "right", 150), visibility, mirror=True)
    assert same_side.score >= 99.9 and not same_side.mirrored


def test_left_and_right_swapped_by_the_model_is_the_same_picture(template: PoseTemplate,
                                                                  standing: tuple[np.ndarray, np.ndarray]) -> None:
    """MediaPipe swaps the labels for a frame now and then; the score stays, and the errors stay with the pose's own
    landmarks: the wrist it calls left is the one named when it is off."""
    pixels, visibility = standing
    swapped, swapped_visibility = pixels[SIDE_SWAP], visibility[SIDE_SWAP]
    assert score(template, swapped, swapped_visibility).score >= 99.9
    swapped[INDEX["left_wrist"]] += [0, -150]
    similarity = score(template, swapped, swapped_visibility)
    assert 20 < similarity.score < 95
    assert furthest_joints(similarity.joint_error)[0] == "left_wrist"


def test_hidden_landmarks_do_not_count_and_too_few_give_no_score(template: PoseTemplate,
                                                                 standing: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, visibility = standing
    arms = [INDEX[f"{side}_{point}"] for side in ("left", "right") for point in ARM]
    hidden = visibility.copy()
    hidden[arms] = 0.1
    assert score(template, arms_raised(pixels, 170), visibility).score < 20
    similarity = score(template, arms_raised(pixels, 170), hidden)
    assert similarity.score >= 99.9  # the raised arms are hidden, the rest is the man as he stands
    assert np.isnan(similarity.joint_error[arms]).all()
    legs_only = np.zeros_like(visibility)
    legs_only[[INDEX[f"{side}_{point}"] for side in ("left", "right") for point in ("knee", "ankle")]] = 1
    nobody = score(template, pixels, legs_only)
    assert np.isnan(nobody.score) and np.isnan(nobody.joint_error).all()


def test_the_eyes_and_mouth_do_not_count_and_a_hand_counts_less_than_an_elbow(
        template: PoseTemplate, standing: tuple[np.ndarray, np.ndarray]) -> None:
    """Eleven face points and three per hand would otherwise outweigh the joints that make a pose."""
    pixels, visibility = standing
    face = [INDEX[name] for name in ("left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
                                     "right_eye_outer", "mouth_left", "mouth_right")]
    moved = pixels.copy()
    moved[face] += [60, 40]
    assert score(template, moved, visibility).score >= 99.9
    hand, elbow = pixels.copy(), pixels.copy()
    hand[[INDEX["left_pinky"], INDEX["left_index"], INDEX["left_thumb"]]] += [0, 60]
    elbow[INDEX["left_elbow"]] += [0, 60]
    visible = np.ones_like(visibility)
    assert score(template, hand, visible).score > score(template, elbow, visible).score


def test_scores_over_frames_and_people_in_one_call(template: PoseTemplate,
                                                   standing: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, visibility = standing
    poses = np.stack([[pixels * 0.5 + [400, 10], arms_raised(pixels, 90)],
                      [rotated(pixels, pixels[0], 5), np.full_like(pixels, np.nan)],
                      [arms_raised(pixels, 20), mirror_picture(arm_raised(pixels, "left", 90), 810)]])
    visible = np.broadcast_to(visibility, poses.shape[:-1]).copy()
    visible[1, 1] = 0  # nobody in that slot
    similarity = score(template, poses, visible, mirror=True)
    assert similarity.score.shape == similarity.mirrored.shape == (3, 2)
    assert similarity.joint_error.shape == (3, 2, 33)
    for frame, person in np.ndindex(3, 2):
        one = score(template, poses[frame, person], visible[frame, person], mirror=True)
        np.testing.assert_allclose(similarity.score[frame, person], one.score, rtol=1e-9)
        np.testing.assert_allclose(similarity.joint_error[frame, person], one.joint_error, rtol=1e-9)
        assert similarity.mirrored[frame, person] == one.mirrored
    assert np.isnan(similarity.score[1, 1]) and (similarity.score[[0, 1], [0, 0]] >= 99).all()
    assert similarity.score[0, 1] < 20
    nobody = score(template, np.zeros((0, 33, 2)), np.zeros((0, 33)), mirror=True)  # a frame with no one in it
    assert nobody.score.shape == nobody.mirrored.shape == (0,) and nobody.joint_error.shape == (0, 33)


def test_a_similarity_curve_over_the_jumping_jacks_finds_the_next_rep(media: Path) -> None:
    """Frame 18 of the clip has the man's arms overhead, legs apart: one rep later (frames 50-56) he is there
    again, and with his arms down in between he is nothing like it."""
    pixels, visibility = [], []
    with av.open(str(media / "clip.mp4")) as container, PoseEngine(PoseSettings(), Mode.VIDEO) as engine:
        for frame in container.decode(video=0):
            pose = engine.detect_frame(frame.to_ndarray(format="rgb24"), round(frame.time * 1000))
            pixels.append(pose.pixels[0] if pose.people else np.full((33, 2), np.nan, np.float32))
            visibility.append(pose.visibility[0] if pose.people else np.zeros(33, np.float32))
    pixels, visibility = np.stack(pixels), np.stack(visibility)
    arms_up = PoseTemplate.from_pose(pixels[18], visibility[18], "arms up")
    curve = score(arms_up, pixels, visibility).score
    assert curve.shape == (60,) and curve[18] >= 99.9
    assert np.nanmax(curve[40:]) >= 85, curve.round()
    shoulders = pixels[:, [INDEX["left_shoulder"], INDEX["right_shoulder"]], 1].mean(axis=1)
    wrists = pixels[:, [INDEX["left_wrist"], INDEX["right_wrist"]], 1].mean(axis=1)
    arms_down = wrists - shoulders > 0.5 * np.nanmax(wrists - shoulders)
    assert arms_down.sum() >= 10 and np.nanmax(curve[arms_down]) < 10, curve.round()


def test_from_pose_refuses_a_pose_with_too_few_visible_joints(standing: tuple[np.ndarray, np.ndarray]) -> None:
    pixels, visibility = standing
    few = np.zeros_like(visibility)
    few[[INDEX[name] for name in ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_knee")]] = 1
    with pytest.raises(TemplateError, match="Only 5 of the 12 main joints"):
        PoseTemplate.from_pose(pixels, few, "few")
    with pytest.raises(TemplateError, match="Only 0"):
        PoseTemplate.from_pose(np.full_like(pixels, np.nan), visibility, "nothing")


def test_a_template_is_centred_and_unit_size(template: PoseTemplate) -> None:
    seen = template.weights > 0
    assert not seen.all() and (template.weights[~seen] == 0).all()  # bus.jpg's fingers are below 0.5
    np.testing.assert_allclose(np.average(template.points, axis=0, weights=template.weights), 0, atol=1e-6)
    radius = np.sqrt(np.average((template.points ** 2).sum(axis=-1), weights=template.weights))
    assert radius == pytest.approx(1, abs=1e-6)


def test_json_round_trip(template: PoseTemplate, standing: tuple[np.ndarray, np.ndarray]) -> None:
    text = template.to_json()
    assert len(text.encode()) < 4096
    document = json.loads(text)
    assert document["format"] == "posescope-pose-template/1" and list(document["landmarks"])[0] == "nose"
    again = PoseTemplate.from_json(text.encode())
    assert (again.name, again.source) == ("standing", "bus.jpg")
    np.testing.assert_allclose(again.points, template.points, atol=1e-4)
    np.testing.assert_allclose(again.weights, template.weights, atol=1e-4)
    assert score(again, *standing).score >= 99.9


def _document(template: PoseTemplate) -> dict:
    return json.loads(template.to_json())


@pytest.mark.parametrize(("spoil", "words"), [
    (lambda d: b"\xff\xfe not json at all", "not a JSON file"),
    (lambda d: "{" * 40000, "not a JSON file"),
    (lambda d: json.dumps([1, 2, 3]), "not a PoseScope pose template"),
    (lambda d: json.dumps(d | {"format": "posescope-pose-template/2"}), "not a PoseScope pose template"),
    (lambda d: json.dumps(d | {"name": 42}), "name and source must be text"),
    (lambda d: json.dumps(d | {"name": "  "}), "name must be 1 to 200"),
    (lambda d: json.dumps({**d, "landmarks": {k: v for k, v in d["landmarks"].items() if k != "nose"}}),
     "each of the 33 landmarks"),
    (lambda d: json.dumps({**d, "landmarks": d["landmarks"] | {"tail": {"x": 0, "y": 0, "weight": 1}}}),
     "each of the 33 landmarks"),
    (lambda d: json.dumps({**d, "landmarks": d["landmarks"] | {"nose": {"x": "0.1", "y": 0, "weight": 1}}}),
     "needs a number"),
    (lambda d: json.dumps({**d, "landmarks": d["landmarks"] | {"nose": {"x": True, "y": 0, "weight": 1}}}),
     "needs a number"),
    (lambda d: json.dumps({**d, "landmarks": d["landmarks"] | {"nose": [0.1, 0.2, 1]}}), "needs a number"),
    (lambda d: json.dumps({**d, "landmarks": d["landmarks"] | {"nose": {"x": 0.1, "y": 0}}}), "needs a number"),
    (lambda d: json.dumps({**d, "landmarks": d["landmarks"] | {"nose": {"x": float("nan"), "y": 0, "weight": 1}}}),
     "must all be numbers"),
    (lambda d: json.dumps({**d, "landmarks": d["landmarks"] | {"nose": {"x": 10 ** 400, "y": 0, "weight": 1}}}),
     "needs a number"),
    (lambda d: json.dumps({**d, "landmarks": d["landmarks"] | {"nose": {"x": 0, "y": 0, "weight": 1.5}}}),
     "between 0 and 1"),
    (lambda d: json.dumps({**d, "landmarks": {k: {**v, "x": 0.5, "y": 0.5} for k, v in d["landmarks"].items()}}),
     "all sit on one spot"),
    (lambda d: json.dumps(d | {"padding": "x" * 70000}), "at most 64 KB"),
])
def test_bad_template_files_get_a_sentence(template: PoseTemplate, spoil, words: str) -> None:
    with pytest.raises(TemplateError, match=words):
        PoseTemplate.from_json(spoil(_document(template)))


def test_score_refuses_arrays_of_the_wrong_shape(template: PoseTemplate) -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 33, 2\)"):
        score(template, np.zeros((17, 2)), np.ones(17))
    with pytest.raises(ValueError, match="visibility"):
        score(template, np.zeros((4, 33, 2)), np.ones((3, 33)))


def test_rings_go_round_the_joints_furthest_off(bus: FramePose) -> None:
    scene = np.zeros((bus.height // 2, bus.width // 2, 3), np.uint8)  # a preview at half size
    assert OffJointAnnotator().annotate(scene, bus, 0, ["left_wrist"]) is scene
    ringed = np.argwhere((scene == OFF_COLOUR).all(axis=-1))
    assert len(ringed) > 20
    wrist = bus.pixels[0, INDEX["left_wrist"]] / 2
    distances = np.hypot(*(ringed[:, ::-1] - wrist).T)
    assert distances.min() > 3 and distances.max() < 40  # a ring round the wrist, not a dot, and nowhere else


def test_score_is_cheap_enough_for_every_live_frame(template: PoseTemplate,
                                                    standing: tuple[np.ndarray, np.ndarray]) -> None:
    """One frame's one person, mirror on (the dearest case): well under 0.3 ms (about 0.12 ms on the 2-core
    machine), so the webcam can score every frame."""
    pixels, visibility = standing[0][None], standing[1][None]
    calls = 200
    seconds = min(timeit.repeat(lambda: score(template, pixels, visibility, mirror=True), number=calls, repeat=5))
    assert seconds / calls < 0.3e-3
