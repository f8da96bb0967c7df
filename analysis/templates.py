"""Pose templates: a reference pose (a yoga pose, a rehab position) and how close any pose comes to it.

A template is the reference's 33 image-plane landmarks, centred and scaled to unit size, with the
reference's visibility as weights; it saves as a small JSON file. Scoring aligns each pose onto it with a
weighted similarity transform (translation, scale, and a rotation of at most MAX_ROTATION_DEG, so that a
small camera tilt costs nothing but a pose upside down is not the same pose), then maps the weighted RMS
distance left to 0–100. What is compared is the picture of the skeleton: left and right labels exchanged
(as MediaPipe sometimes does) change nothing, and on request its mirror picture counts too. Everything is
vectorised over any leading shape (frames, people): no loop over poses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from analysis.angles import DEFAULT_VISIBILITY_THRESHOLD
from analysis.engine import FramePose
from analysis.landmarks import INDEX, LANDMARK_COUNT, LANDMARK_NAMES

FORMAT = "posescope-pose-template/1"
MAX_JSON_BYTES = 64 << 10
MAX_NAME_CHARS = 200
MAX_ROTATION_DEG = 20.0
MIN_MAIN_JOINTS = 6
"""Of MAIN_JOINTS, how many must be visible (in the template, and in both template and pose to score)."""
SCORE_WIDTH = 0.17
"""The RMS distance (in units of the pose's size) at which the score falls to exp(-1/2) ≈ 61. On real
landmarks: identical 100; 5 px of jitter on a person 410 px tall about 97; the same moment of the next jumping
jack in the test clip 87–96; both arms swung 20° out from the body 83, 45° out 41, out level 7."""
OFF_BY = 0.15
"""A joint further than this from the template (in units of the pose's size) counts as off."""
OFF_COLOUR = (255, 170, 0)  # amber, RGB

MAIN_JOINTS: tuple[str, ...] = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
_MAIN = np.array([INDEX[name] for name in MAIN_JOINTS])

# How much each landmark counts in a score, besides visibility: the main joints fully; the head by the nose
# and ears (the eyes and mouth add nothing they do not say); each hand and foot about as much as one joint,
# shared among its points, so that the 11 face points and the 3 points of a hand do not outweigh an elbow.
_IMPORTANCE_BY_NAME: dict[str, float] = (
    {name: 1.0 for name in MAIN_JOINTS}
    | {"nose": 1.0, "left_ear": 0.5, "right_ear": 0.5}
    | {f"{side}_{point}": 1 / 3 for side in ("left", "right") for point in ("pinky", "index", "thumb")}
    | {f"{side}_{point}": 0.5 for side in ("left", "right") for point in ("heel", "foot_index")}
)
IMPORTANCE = np.array([_IMPORTANCE_BY_NAME.get(name, 0.0) for name in LANDMARK_NAMES], np.float32)

# Each landmark's counterpart on the other side of the body (the nose is its own).
SIDE_SWAP = np.array([INDEX[name.replace("left", "@").replace("right", "left").replace("@", "right")]
                   for name in LANDMARK_NAMES])


class TemplateError(ValueError):
    """A template that cannot be made or read; the message is a sentence for the user."""


@dataclass(frozen=True)
class PoseTemplate:
    """A reference pose.

    points: (33, 2) float32 image-plane positions (x right, y down), centred on the visible landmarks and
        scaled to unit RMS radius (made so on construction, whatever the scale given); hidden ones at 0.
    weights: (33,) float32 in [0, 1]: the reference's visibility, 0 where a landmark was hidden.
    source: where the reference came from (a file name), for the user.
    """

    name: str
    points: np.ndarray
    weights: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        points, weights = np.asarray(self.points, np.float64), np.asarray(self.weights, np.float64)
        if points.shape != (LANDMARK_COUNT, 2) or weights.shape != (LANDMARK_COUNT,):
            raise TemplateError(f"A template has {LANDMARK_COUNT} landmarks with x and y each; "
                                f"this one has points {points.shape} and weights {weights.shape}.")
        if not (np.isfinite(points).all() and np.isfinite(weights).all()):
            raise TemplateError("A template's positions and weights must all be numbers.")
        if ((weights < 0) | (weights > 1)).any():
            raise TemplateError("A template's weights are visibilities, between 0 and 1.")
        visible = np.count_nonzero(weights[_MAIN] > 0)
        if visible < MIN_MAIN_JOINTS:
            raise TemplateError(f"Only {visible} of the {len(MAIN_JOINTS)} main joints (shoulders, elbows, wrists, "
                                f"hips, knees, ankles) are visible; a template needs at least {MIN_MAIN_JOINTS}.")
        if not self.name.strip() or len(self.name) > MAX_NAME_CHARS:
            raise TemplateError(f"A template's name must be 1 to {MAX_NAME_CHARS} characters.")
        centred = np.where(weights[:, None] > 0, points - np.average(points, axis=0, weights=weights), 0.0)
        radius = math.sqrt(np.average((centred ** 2).sum(axis=-1), weights=weights))
        if not radius > 1e-9 * (1 + np.abs(points).max()):
            raise TemplateError("A template's visible landmarks all sit on one spot.")
        object.__setattr__(self, "points", (centred / radius).astype(np.float32))
        object.__setattr__(self, "weights", weights.astype(np.float32))

    @classmethod
    def from_pose(cls, pixels: np.ndarray, visibility: np.ndarray, name: str, source: str = "",
                  threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> PoseTemplate:
        """One person's pose, pixels (33, 2) and visibility (33,), as a template; landmarks below `threshold`
        visibility get weight 0. A long name is cut to MAX_NAME_CHARS."""
        pixels, visibility = np.asarray(pixels, np.float64), np.asarray(visibility, np.float64)
        if pixels.shape != (LANDMARK_COUNT, 2) or visibility.shape != (LANDMARK_COUNT,):
            raise TemplateError(f"A pose has {LANDMARK_COUNT} landmarks; got {pixels.shape} and {visibility.shape}.")
        weights = np.where((visibility >= threshold) & np.isfinite(pixels).all(axis=-1), visibility, 0.0)
        return cls(name.strip()[:MAX_NAME_CHARS], np.where(weights[:, None] > 0, pixels, 0.0), weights, source)

    def to_json(self) -> str:
        """A small document (about 3 KB): the format tag, the name, the source, and x, y, weight per landmark."""
        landmarks = {name: {"x": round(float(x), 5), "y": round(float(y), 5), "weight": round(float(w), 4)}
                     for name, (x, y), w in zip(LANDMARK_NAMES, self.points, self.weights)}
        return json.dumps({"format": FORMAT, "name": self.name, "source": self.source, "landmarks": landmarks},
                          indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> PoseTemplate:
        """A template read back from to_json's document; anything else is refused with a TemplateError."""
        if len(text) > MAX_JSON_BYTES:
            raise TemplateError(f"This file is {len(text) / 1024:,.0f} KB; a pose template is a few KB "
                                f"(at most {MAX_JSON_BYTES >> 10} KB).")
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise TemplateError("This is not a JSON file.") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise TemplateError(f'This JSON file is not a PoseScope pose template (no "format": "{FORMAT}").')
        name, source, landmarks = document.get("name"), document.get("source", ""), document.get("landmarks")
        if not isinstance(name, str) or not isinstance(source, str):
            raise TemplateError("A template's name and source must be text.")
        if not isinstance(landmarks, dict) or set(landmarks) != set(LANDMARK_NAMES):
            raise TemplateError(f'A template lists each of the {LANDMARK_COUNT} landmarks by name, '
                                f'from "nose" to "right_foot_index".')
        try:
            values = np.array([[_number(landmarks[n][field]) for field in ("x", "y", "weight")]
                               for n in LANDMARK_NAMES])
        except (TypeError, KeyError, OverflowError):
            raise TemplateError("Each landmark of a template needs a number for x, y and weight.") from None
        return cls(name, values[:, :2], values[:, 2], source)


def _number(value: object) -> float:
    """A JSON number as a float; anything else (text, true, null, a list) is a TypeError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return float(value)


@dataclass(frozen=True)
class Similarity:
    """How close poses of shape (...,) come to one template.

    score: (...,) float64, 0–100; NaN where a pose is missing or shares fewer than MIN_MAIN_JOINTS visible main
        joints with the template.
    joint_error: (..., 33) float64: each landmark's distance from the template after alignment, in units of the
        pose's size (its RMS radius), indexed by the pose's own landmarks even when the mirror image matched;
        NaN for landmarks that took no part in the score.
    mirrored: (...,) bool: the pose's mirror picture matched better (only with mirror=True).
    """

    score: np.ndarray
    joint_error: np.ndarray
    mirrored: np.ndarray


def score(template: PoseTemplate, pixels: np.ndarray, visibility: np.ndarray, mirror: bool = False,
          threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> Similarity:
    """pixels (..., 33, 2) and visibility (..., 33) against the template.

    The score compares pictures of skeletons, so the pose is also tried with its left and right labels exchanged:
    MediaPipe swaps them now and then in a front view (7 of the 60 frames of the test clip), which leaves the
    picture the same. With `mirror`, the mirror picture (x flipped) is tried too: the pose done on the other side.
    The best candidate counts. Landmarks below `threshold` visibility or not finite are left out; the others
    weigh by the template's weight, the pose's visibility and IMPORTANCE."""
    pixels, visibility = np.asarray(pixels, np.float64), np.asarray(visibility, np.float64)
    if pixels.shape[-2:] != (LANDMARK_COUNT, 2) or visibility.shape != pixels.shape[:-1]:
        raise ValueError(f"expected pixels (..., 33, 2) and visibility (..., 33), got {pixels.shape} "
                         f"and {visibility.shape}")
    shape = pixels.shape[:-2]
    pose = (pixels[..., 0] + 1j * pixels[..., 1]).reshape(-1, LANDMARK_COUNT)  # one row a pose
    visibility = visibility.reshape(-1, LANDMARK_COUNT)
    seen = np.isfinite(pose) & (visibility >= threshold)
    pose, visibility = np.where(seen, pose, 0), np.where(seen, visibility, 0.0)
    candidates = [(False, False), (False, True)] + ([(True, False), (True, True)] if mirror else [])
    flipped, swapped = np.array(candidates).T
    pose = np.stack([_variant(pose, flip, swap) for flip, swap in candidates])  # (candidates, poses, 33)
    visibility = np.stack([visibility[..., SIDE_SWAP] if swap else visibility for _, swap in candidates])

    reference = template.points[:, 0].astype(np.float64) + 1j * template.points[:, 1]
    weights = visibility * (template.weights * IMPORTANCE)
    total = weights.sum(axis=-1, keepdims=True)
    enough = np.count_nonzero(weights[..., _MAIN], axis=-1) >= MIN_MAIN_JOINTS
    weights = weights / np.where(total > 0, total, 1.0)
    pose, reference = _unit_size(pose, weights), _unit_size(reference, weights)
    # The rotation that best turns the pose onto the reference (both centred, unit size) is the angle of their
    # weighted inner product; with it clamped, the distance left is still the least a rotation in range can give.
    limit = math.radians(MAX_ROTATION_DEG)
    turn = np.angle((weights * np.conj(pose) * reference).sum(axis=-1, keepdims=True))
    error = np.abs(pose * np.exp(1j * np.minimum(np.maximum(turn, -limit), limit)) - reference)
    distance = np.where(enough, np.sqrt((weights * error ** 2).sum(axis=-1)), np.inf)

    best, poses = distance.argmin(axis=0), np.arange(distance.shape[1])
    distance = distance[best, poses]
    distance[np.isinf(distance)] = np.nan
    error = np.where(weights[best, poses] > 0, error[best, poses], np.nan)
    error = np.where(swapped[best, None], error[:, SIDE_SWAP], error)  # back to the pose's own landmarks
    error[np.isnan(distance)] = np.nan
    return Similarity((100.0 * np.exp(-0.5 * (distance / SCORE_WIDTH) ** 2)).reshape(shape),
                      error.reshape(*shape, LANDMARK_COUNT), flipped[best].reshape(shape))


def _variant(pose: np.ndarray, flip: bool, swap: bool) -> np.ndarray:
    """Complex points (..., 33), mirrored (x flipped) and/or with left and right labels exchanged."""
    pose = pose[..., SIDE_SWAP] if swap else pose
    return -np.conj(pose) if flip else pose


def _unit_size(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Complex points (..., 33) centred on their weighted mean and scaled to unit weighted RMS radius."""
    centred = points - (weights * points).sum(axis=-1, keepdims=True)
    radius = np.sqrt((weights * np.abs(centred) ** 2).sum(axis=-1, keepdims=True))
    return centred / np.where(radius > 1e-12, radius, np.inf)


def furthest_joints(joint_error: np.ndarray, k: int = 3, off_by: float = OFF_BY) -> list[str]:
    """Up to k of one pose's MAIN_JOINTS, furthest first, that are more than `off_by` from the template;
    joint_error: (33,) as in Similarity. Face, hand and foot points are left out: they are not what a coach
    corrects first."""
    joint_error = np.asarray(joint_error)
    if joint_error.shape != (LANDMARK_COUNT,):
        raise ValueError(f"expected one pose's joint errors (33,), got {joint_error.shape}")
    errors = np.nan_to_num(joint_error[_MAIN], nan=-np.inf)
    order = np.argsort(-errors, kind="stable")[:k]
    return [MAIN_JOINTS[i] for i in order if errors[i] > off_by]


class OffJointAnnotator:
    """Rings round the named joints of one person, the ones furthest from the template, so the eye goes where
    the pose differs. Draws in place, as analysis.drawing's annotators do."""

    def __init__(self, colour: tuple[int, int, int] = OFF_COLOUR) -> None:
        self.colour = colour

    def annotate(self, scene: np.ndarray, pose: FramePose, person: int, names: Sequence[str]) -> np.ndarray:
        """scene: an RGB uint8 (h, w, 3) picture of the pose's image, possibly resized."""
        if not (scene.dtype == np.uint8 and scene.ndim == 3 and scene.shape[2] == 3 and scene.flags.writeable):
            raise ValueError("a scene must be a writable (h, w, 3) uint8 RGB array")
        scale = np.array([scene.shape[1] / pose.width, scene.shape[0] / pose.height])
        centres = np.round(pose.pixels[person, [INDEX[name] for name in names]] * scale).astype(int)
        size = max(1.0, 0.004 * math.hypot(scene.shape[1], scene.shape[0]))  # the skeleton's stroke, as drawing's
        for x, y in centres:
            cv2.circle(scene, (int(x), int(y)), round(5 * size), self.colour, max(1, round(size)), cv2.LINE_AA)
        return scene
