"""Drawing poses onto frames: the one place a skeleton is painted.

Frames are RGB uint8. Line widths and dot sizes follow the image size, so a 4K photo and a
webcam frame look alike. Landmarks the model thinks hidden are left out rather than guessed.
"""

from __future__ import annotations

import cv2
import numpy as np

from analysis.angles import ANGLES, DEFAULT_VISIBILITY_THRESHOLD
from analysis.engine import FramePose
from analysis.landmarks import BONES, INDEX, LANDMARK_NAMES

JOINT_COLOUR = (230, 30, 30)  # red, RGB
BONE_COLOUR = (255, 255, 255)
LABEL_COLOUR = (255, 230, 80)
PRIVACY_BACKGROUND = (18, 18, 24)
FACE = frozenset(range(LANDMARK_NAMES.index("mouth_right") + 1))


def _scale(width: int, height: int) -> float:
    """Stroke size in pixels: about 0.4 % of the image diagonal, never under 1."""
    return max(1.0, 0.004 * float(np.hypot(width, height)))


def draw_pose(frame: np.ndarray, pose: FramePose, threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """A copy of `frame` with every person's skeleton drawn on it; `frame` may be a resized copy of the
    image the pose was found in (a preview), the skeleton is scaled to it."""
    out = np.ascontiguousarray(frame).copy()
    size = _scale(out.shape[1], out.shape[0])
    thickness, radius = max(1, round(size)), max(2, round(1.2 * size))
    scale = np.array([out.shape[1] / pose.width, out.shape[0] / pose.height], np.float32)
    for xy, visible in zip(pose.pixels * scale, pose.visibility >= threshold):
        points = np.round(xy).astype(np.int32)
        for a, b in BONES:
            if visible[a] and visible[b]:
                cv2.line(out, tuple(points[a]), tuple(points[b]), BONE_COLOUR, thickness, cv2.LINE_AA)
        for index in np.flatnonzero(visible):
            dot = max(1, radius // 2) if index in FACE else radius  # the face's 11 points sit close together
            cv2.circle(out, tuple(points[index]), dot, JOINT_COLOUR, -1, cv2.LINE_AA)
    return out


def draw_skeleton_only(pose: FramePose, threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """The skeleton on a plain background: privacy mode, no pixel of the person."""
    blank = np.empty((pose.height, pose.width, 3), np.uint8)
    blank[:] = PRIVACY_BACKGROUND
    return draw_pose(blank, pose, threshold)


def draw_angle_labels(frame: np.ndarray, pose: FramePose, angles: np.ndarray, names: list[str]) -> np.ndarray:
    """Write each named joint angle (degrees, from `angles` (people, len(ANGLES))) beside its joint, in place."""
    size = _scale(frame.shape[1], frame.shape[0])
    font_scale, thickness = 0.18 * size, max(1, round(size / 2))
    columns = {a.name: (i, a) for i, a in enumerate(ANGLES)}
    for person in range(pose.people):
        for name in names:
            column, definition = columns[name]
            value = angles[person, column]
            anchor = definition.points[1] if definition.kind == "joint" else definition.points[0]
            if np.isnan(value) or anchor not in INDEX:
                continue
            x, y = np.round(pose.pixels[person, INDEX[anchor]]).astype(int)
            text = f"{value:.0f}"
            origin = (int(x + 2 * size), int(y - 2 * size))
            cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
            cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, LABEL_COLOUR, thickness, cv2.LINE_AA)
    return frame
