"""The one place pose estimation runs: MediaPipe's PoseLandmarker behind a small typed API.

Results leave as numpy arrays (FramePose), never as MediaPipe's per-landmark objects, so that
drawing, angles, tables, charts and exports all read the same compact data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from mediapipe import Image, ImageFormat
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import (
    PoseLandmarker,
    PoseLandmarkerOptions,
    PoseLandmarkerResult,
    RunningMode,
)

from analysis.landmarks import LANDMARK_COUNT, VISIBILITY, X, Y
from analysis.models import Complexity, verified_bundle


class Mode(Enum):
    """IMAGE: independent photos. VIDEO: frames with timestamps, tracked between frames (videos and the
    webcam: see analysis.live for why not MediaPipe's LIVE_STREAM mode)."""

    IMAGE = RunningMode.IMAGE
    VIDEO = RunningMode.VIDEO


@dataclass(frozen=True)
class PoseSettings:
    """How people are found (MediaPipe's model and thresholds) and followed: keep_id_s is how long a person out of
    view keeps their ID (analysis.tracking)."""

    complexity: Complexity = "full"
    max_people: int = 1
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    keep_id_s: float = 1.0


@dataclass(frozen=True)
class FramePose:
    """Every person found in one image.

    landmarks: (people, 33, 5) float32: x, y normalised to the image width and height, z (relative
        depth, hips at 0, about the scale of x), visibility and presence in [0, 1].
    world: (people, 33, 3) float32: x, y, z in metres, origin between the hips, y pointing down.
    width, height: the image size in pixels.
    ids: (people,) int, who each person is as an engine that follows people knows them (analysis.people's
        PeopleFinder: one landmarker per person, so it knows); unique in the process, never reused for someone
        else. None where the engine does not follow people (MediaPipe's own order, which it does not promise).
    """

    landmarks: np.ndarray
    world: np.ndarray
    width: int
    height: int
    ids: np.ndarray | None = None

    @property
    def people(self) -> int:
        return self.landmarks.shape[0]

    @property
    def pixels(self) -> np.ndarray:
        """(people, 33, 2) float32 image coordinates in pixels."""
        return self.landmarks[..., [X, Y]] * np.array([self.width, self.height], np.float32)

    @property
    def visibility(self) -> np.ndarray:
        """(people, 33) float32: how likely each landmark is visible, not hidden."""
        return self.landmarks[..., VISIBILITY]

    @classmethod
    def empty(cls, width: int, height: int) -> FramePose:
        return cls(np.zeros((0, LANDMARK_COUNT, 5), np.float32), np.zeros((0, LANDMARK_COUNT, 3), np.float32),
                   width, height)

    @classmethod
    def from_mediapipe(cls, result: PoseLandmarkerResult, width: int, height: int) -> FramePose:
        if not result.pose_landmarks:
            return cls.empty(width, height)
        landmarks = np.array(
            [[(p.x, p.y, p.z, p.visibility or 0.0, p.presence or 0.0) for p in person]
             for person in result.pose_landmarks], np.float32)
        world = np.array([[(p.x, p.y, p.z) for p in person] for person in result.pose_world_landmarks], np.float32)
        return cls(landmarks, world, width, height)


@dataclass
class PoseEngine:
    """A PoseLandmarker for one running mode and one set of settings.

    Creating one loads the model (tens of milliseconds to a second), so callers keep and reuse it, and
    close it when done: MediaPipe holds threads and memory until then. A VIDEO engine keeps tracking
    state: one engine per stream.
    """

    settings: PoseSettings = field(default_factory=PoseSettings)
    mode: Mode = Mode.IMAGE
    closed: bool = field(default=False, init=False)
    _landmarker: PoseLandmarker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        options = PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(verified_bundle(s.complexity))),
            running_mode=self.mode.value,
            num_poses=s.max_people,
            min_pose_detection_confidence=s.min_detection_confidence,
            min_pose_presence_confidence=s.min_presence_confidence,
            min_tracking_confidence=s.min_tracking_confidence,
        )
        self._landmarker = PoseLandmarker.create_from_options(options)

    def detect(self, rgb: np.ndarray) -> FramePose:
        """Poses in one RGB uint8 image (IMAGE mode)."""
        result = self._landmarker.detect(_as_mp_image(rgb))
        return FramePose.from_mediapipe(result, rgb.shape[1], rgb.shape[0])

    def detect_frame(self, rgb: np.ndarray, timestamp_ms: int) -> FramePose:
        """Poses in one video frame (VIDEO mode); timestamps must increase."""
        result = self._landmarker.detect_for_video(_as_mp_image(rgb), timestamp_ms)
        return FramePose.from_mediapipe(result, rgb.shape[1], rgb.shape[0])

    def close(self) -> None:
        """Release the model; a second call does nothing."""
        if not self.closed:
            self._landmarker.close()
            self.closed = True

    def __enter__(self) -> PoseEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_mp_image(rgb: np.ndarray) -> Image:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image of shape (h, w, 3), got {rgb.dtype} {rgb.shape}")
    return Image(image_format=ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
