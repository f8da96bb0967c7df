"""Drawing onto frames, the one place anything is painted: skeletons, the privacy background, angle labels
and the live HUD, each a small annotator (as supervision's): settings in the constructor, one `annotate`.

The one rule: `annotate(scene, …)` draws in place on the array it is given and returns that same array.
A caller who still needs the original passes a copy (`rgb.copy()`). A scene is an RGB uint8 (h, w, 3)
array, C-contiguous and writable (a mirrored view `rgb[:, ::-1]` is not: pass `np.ascontiguousarray` of
it); anything else is refused rather than silently copied. A scene may be a resized copy of the frame
the pose was found in (a preview): positions are scaled to it. Line widths, dots and text follow the
scene's size, so a 4K photo and a webcam frame look alike. Landmarks the model thinks hidden are left
out rather than guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from analysis.angles import ANGLE_NAMES, ANGLES, DEFAULT_VISIBILITY_THRESHOLD
from analysis.engine import FramePose
from analysis.landmarks import BONES, INDEX, LANDMARK_NAMES

Colour = tuple[int, int, int]  # RGB

JOINT_COLOUR = (230, 30, 30)  # red, RGB
BONE_COLOUR = (255, 255, 255)
LABEL_COLOUR = (255, 230, 80)
PRIVACY_BACKGROUND = (18, 18, 24)
REC_COLOUR = (235, 40, 40)
HUD_COLOUR = (240, 240, 240)
ALARM_COLOUR = (200, 20, 20)
# A form cue's colour on the HUD by its severity (analysis.reps.Cue), as the page colours its message.
SEVERITY_COLOURS = {"info": (120, 200, 255), "warning": (255, 200, 60), "error": (255, 90, 90)}
FACE = frozenset(range(LANDMARK_NAMES.index("mouth_right") + 1))
_BONES = np.array(BONES)


def _checked(scene: np.ndarray) -> np.ndarray:
    if not (isinstance(scene, np.ndarray) and scene.dtype == np.uint8 and scene.ndim == 3 and scene.shape[2] == 3
            and scene.flags.c_contiguous and scene.flags.writeable):
        raise ValueError("a scene must be a writable, C-contiguous (h, w, 3) uint8 RGB array; "
                         "pass a copy (np.ascontiguousarray) of anything else")
    return scene


def _stroke(scene: np.ndarray) -> float:
    """Stroke size in pixels: about 0.4 % of the scene's diagonal, never under 1."""
    return max(1.0, 0.004 * float(np.hypot(scene.shape[1], scene.shape[0])))


def _scene_pixels(scene: np.ndarray, pose: FramePose) -> np.ndarray:
    """(people, 33, 2) float32: the pose's landmarks in the scene's pixels."""
    return pose.pixels * np.array([scene.shape[1] / pose.width, scene.shape[0] / pose.height], np.float32)


class SkeletonAnnotator:
    """Every person's bones and joints; landmarks below `threshold` visibility are left out."""

    def __init__(self, threshold: float = DEFAULT_VISIBILITY_THRESHOLD, bone_colour: tuple[int, int, int] = BONE_COLOUR,
                 joint_colour: tuple[int, int, int] = JOINT_COLOUR) -> None:
        self.threshold, self.bone_colour, self.joint_colour = threshold, bone_colour, joint_colour

    def annotate(self, scene: np.ndarray, pose: FramePose) -> np.ndarray:
        _checked(scene)
        size = _stroke(scene)
        thickness, radius = max(1, round(size)), max(2, round(1.2 * size))
        points = np.round(_scene_pixels(scene, pose)).astype(np.int32)
        for xy, visible in zip(points, pose.visibility >= self.threshold):
            bones = _BONES[visible[_BONES].all(axis=1)]
            cv2.polylines(scene, list(xy[bones]), False, self.bone_colour, thickness, cv2.LINE_AA)
            for index in np.flatnonzero(visible):
                dot = max(1, radius // 2) if index in FACE else radius  # the face's 11 points sit close together
                cv2.circle(scene, tuple(xy[index]), dot, self.joint_colour, -1, cv2.LINE_AA)
        return scene


class PrivacyAnnotator:
    """Paints the whole scene one colour: privacy mode, where no pixel of the person may be shown."""

    def __init__(self, colour: tuple[int, int, int] = PRIVACY_BACKGROUND) -> None:
        self.colour = colour

    def annotate(self, scene: np.ndarray) -> np.ndarray:
        _checked(scene)[:] = self.colour
        return scene


class AngleLabelAnnotator:
    """The named angles written beside their joint (a segment angle at its first point), in whole degrees."""

    def __init__(self, names: Sequence[str], colour: tuple[int, int, int] = LABEL_COLOUR) -> None:
        unknown = [name for name in names if name not in ANGLE_NAMES]
        if unknown:
            raise ValueError(f"unknown angles {unknown}; choose from analysis.angles.ANGLE_NAMES")
        labelled = [(ANGLE_NAMES.index(name), ANGLES[ANGLE_NAMES.index(name)]) for name in names]
        anchors = [(column, a.points[1] if a.kind == "joint" else a.points[0]) for column, a in labelled]
        # Angles anchored at a mid-point (trunk lean, neck) have no landmark of their own to sit beside.
        self._columns = np.array([column for column, anchor in anchors if anchor in INDEX], np.int64)
        self._anchors = np.array([INDEX[anchor] for _, anchor in anchors if anchor in INDEX], np.int64)
        self.colour = colour

    def annotate(self, scene: np.ndarray, pose: FramePose, angles: np.ndarray) -> np.ndarray:
        """angles: (people, len(ANGLES)) degrees for the pose's people; NaN ones are not written."""
        _checked(scene)
        size = _stroke(scene)
        font_scale, thickness = 0.18 * size, max(1, round(size / 2))
        anchors = np.round(_scene_pixels(scene, pose)[:, self._anchors]).astype(int)
        values = angles[:, self._columns]
        for person, column in zip(*np.nonzero(~np.isnan(values))):
            x, y = anchors[person, column]
            text = f"{values[person, column]:.0f}"
            origin = (int(x + 2 * size), int(y - 2 * size))
            cv2.putText(scene, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness + 2,
                        cv2.LINE_AA)
            cv2.putText(scene, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, self.colour, thickness,
                        cv2.LINE_AA)
        return scene


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only: a cue's degree sign is spelt out, other letters become "?"."""
    return text.replace("°", " deg").encode("ascii", "replace").decode()


class HudAnnotator:
    """Small figures in the top-left corner on a darkened box, and a red REC mark with the time while recording.

    A line is its text, or (text, colour) for one that must stand out (a form cue in its severity's colour).
    """

    def __init__(self, colour: Colour = HUD_COLOUR, rec_colour: Colour = REC_COLOUR) -> None:
        self.colour, self.rec_colour = colour, rec_colour

    def annotate(self, scene: np.ndarray, lines: Sequence[str | tuple[str, Colour]],
                 recording_s: float | None = None) -> np.ndarray:
        _checked(scene)
        height, width = scene.shape[:2]
        scale = max(0.35, min(width, height) / 900)
        thickness = max(1, round(scale * 2))
        line_height = round(32 * scale)
        pad = round(10 * scale)
        coloured = [(_ascii(line), self.colour) if isinstance(line, str) else (_ascii(line[0]), line[1])
                    for line in lines]
        if recording_s is not None:
            coloured = [(f"REC {int(recording_s) // 60}:{int(recording_s) % 60:02d}", self.rec_colour), *coloured]
        text_width = max(cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0]
                         for text, _ in coloured)
        x1 = min(width, 3 * pad + text_width + round(12 * scale))
        y1 = min(height, pad + line_height * len(coloured) + pad)
        box = scene[pad // 2:y1, pad // 2:x1]
        box[:] = (box * 0.35).astype(np.uint8)
        for i, (line, colour) in enumerate(coloured):
            origin = (pad * 2, pad + line_height * (i + 1) - round(8 * scale))
            if recording_s is not None and i == 0:
                cv2.circle(scene, (pad + round(3 * scale), origin[1] - round(8 * scale)), max(2, round(6 * scale)),
                           self.rec_colour, -1, cv2.LINE_AA)
                origin = (origin[0] + round(10 * scale), origin[1])
            cv2.putText(scene, line, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
        return scene


class BannerAnnotator:
    """Large white text on a red band across the bottom of the scene: an alarm (a fall) seen from across a room,
    clear of the HUD in the top-left corner."""

    def __init__(self, colour: Colour = ALARM_COLOUR, text_colour: Colour = HUD_COLOUR) -> None:
        self.colour, self.text_colour = colour, text_colour

    def annotate(self, scene: np.ndarray, text: str) -> np.ndarray:
        _checked(scene)
        height, width = scene.shape[:2]
        scale = max(0.8, min(width, height) / 240)
        thickness = max(2, round(scale * 2))
        (text_width, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, thickness)
        band = round(text_height * 1.8)
        scene[height - band:] = self.colour
        origin = (max(0, (width - text_width) // 2), height - (band - text_height) // 2)
        cv2.putText(scene, text, origin, cv2.FONT_HERSHEY_DUPLEX, scale, self.text_colour, thickness, cv2.LINE_AA)
        return scene


def draw_skeleton_only(pose: FramePose, threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """A new picture of the pose's size: the skeleton on the privacy background, no pixel of the person."""
    scene = PrivacyAnnotator().annotate(np.empty((pose.height, pose.width, 3), np.uint8))
    return SkeletonAnnotator(threshold).annotate(scene, pose)
