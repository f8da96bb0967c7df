"""A whole clip's poses over time, and what is derived from them: smoothing, angles, speeds, quality.

A PoseSeries is what the Video page, the CLI, the exports and a webcam recording all share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.angles import DEFAULT_VISIBILITY_THRESHOLD, compute_angles
from analysis.engine import FramePose
from analysis.filters import (
    angular_velocity,
    butterworth_lowpass,
    interpolate_gaps,
    metres_per_pixel,
    speed,
    unwrap_degrees,
)
from analysis.landmarks import LANDMARK_COUNT, VISIBILITY, X, Y
from analysis.tables import landmark_table
from analysis.tracking import FORGET_S, PersonTracker, unswap_left_right


class SeriesError(ValueError):
    """Arrays that do not make a pose series; the message says what is wrong, as the end of a sentence."""


@dataclass(frozen=True)
class PoseSeries:
    """Poses of up to `people` people in every analysed frame.

    times_s: (frames,) float64, each frame's own time from the start of the video.
    frame_index: (frames,) int64, the frame's number in the source video.
    landmarks: (frames, people, 33, 5) float32 normalised x, y, z, visibility, presence; NaN where that
        person was not found in that frame.
    world: (frames, people, 33, 3) float32 metres, origin between the hips; NaN likewise.
    width, height: the analysed frames' size in pixels (after rotation).
    """

    times_s: np.ndarray
    frame_index: np.ndarray
    landmarks: np.ndarray
    world: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        """Refuse arrays that are not a series: every reader (filters, charts, exports) relies on these."""
        times, index, landmarks, world = self.times_s, self.frame_index, self.landmarks, self.world
        arrays = (times, index, landmarks, world)
        if not all(isinstance(a, np.ndarray) for a in arrays):
            raise SeriesError("its arrays are missing.")
        if times.ndim != 1 or times.dtype != np.float64 or index.shape != times.shape or index.dtype != np.int64:
            raise SeriesError("its frame times or frame numbers have the wrong shape or type.")
        if len(times) == 0:
            raise SeriesError("it holds no frames.")
        if (landmarks.dtype != np.float32 or landmarks.ndim != 4 or landmarks.shape[0] != len(times)
                or landmarks.shape[1] < 1 or landmarks.shape[2:] != (LANDMARK_COUNT, 5)
                or world.dtype != np.float32 or world.shape != (*landmarks.shape[:3], 3)):
            raise SeriesError(f"its landmarks are not (frames, people, {LANDMARK_COUNT}, 5) and "
                              f"(frames, people, {LANDMARK_COUNT}, 3) float32 arrays.")
        if not np.isfinite(times).all():
            raise SeriesError("some frame times are not numbers.")
        steps = np.diff(times)
        if (steps < 0).any():
            raise SeriesError("its frame times are not in order.")
        if (steps == 0).any():
            raise SeriesError(f"{int((steps == 0).sum())} frame times repeat the one before.")
        if not (isinstance(self.width, int) and isinstance(self.height, int) and self.width > 0 and self.height > 0):
            raise SeriesError(f"its frame size {self.width} × {self.height} is not a picture size.")

    @property
    def frames(self) -> int:
        return len(self.times_s)

    @property
    def people(self) -> int:
        return self.landmarks.shape[1]

    @property
    def pixels(self) -> np.ndarray:
        """(frames, people, 33, 2) image coordinates in pixels."""
        return self.landmarks[..., [X, Y]] * np.array([self.width, self.height], np.float32)

    @property
    def visibility(self) -> np.ndarray:
        return self.landmarks[..., VISIBILITY]

    @property
    def present(self) -> np.ndarray:
        """(frames, people) bool: the person was found in that frame."""
        return ~np.isnan(self.landmarks[..., 0]).all(axis=-1)

    @property
    def median_rate_hz(self) -> float:
        """Frames per second from the median gap between frame times (30 for a single frame)."""
        return 1 / float(np.median(np.diff(self.times_s))) if self.frames > 1 else 30.0

    def select(self, frames: slice | np.ndarray | None = None, people: slice | np.ndarray | None = None) -> PoseSeries:
        """Some frames (a slice, indices or a mask; kept in time order) and/or some people's slots."""
        frames = slice(None) if frames is None else frames
        people = slice(None) if people is None else people
        if not isinstance(frames, slice):
            frames = np.asarray(frames)
            frames = np.flatnonzero(frames) if frames.dtype == bool else np.sort(frames)
        if not isinstance(people, slice):
            people = np.asarray(people)
        landmarks = self.landmarks[frames][:, people]
        world = self.world[frames][:, people]
        return PoseSeries(self.times_s[frames], self.frame_index[frames], landmarks, world, self.width, self.height)

    def frame(self, i: int) -> FramePose:
        """Frame i as a FramePose of the people present in it, for drawing and tables."""
        here = self.present[i]
        return FramePose(self.landmarks[i, here], self.world[i, here], self.width, self.height)

    def frame_table(self, frame: int, person: int) -> pd.DataFrame:
        """One person's 33 landmarks at one frame, as the Image page shows a photo's (PhotoAnalysis.landmarks):
        landmark, x, y, z, visibility, presence, x_px, y_px, world_x, world_y, world_z.

        Why here: the Video page's landmark table is the same table for a scrubbed frame; building it in the
        library keeps the two pages' columns in one order. No rows (same columns) where the person is not found.
        """
        table = landmark_table(self.landmarks[frame:frame + 1, person:person + 1],
                               self.world[frame:frame + 1, person:person + 1], self.times_s[frame:frame + 1])
        pixels = self.landmarks[frame, person][:, [X, Y]] * np.array([self.width, self.height], np.float32)
        pixels = pixels[:len(table)]  # 33 rows, or none
        after_presence = table.columns.get_loc("presence") + 1
        table.insert(after_presence, "x_px", pixels[:, 0])
        table.insert(after_presence + 1, "y_px", pixels[:, 1])
        return table.drop(columns=["frame", "time_s", "person"])


class SeriesBuilder:
    """Collects FramePoses frame by frame, each person in the slot a PersonTracker gives them (the rule the
    live chart follows too), and builds the PoseSeries, with limbs MediaPipe gave the wrong side put back
    (analysis.tracking.unswap_left_right)."""

    def __init__(self, max_people: int, width: int, height: int, keep_id_s: float = FORGET_S) -> None:
        self.max_people, self.width, self.height = max_people, width, height
        self._tracker = PersonTracker(max_people, keep_id_s)
        self._times: list[float] = []
        self._indices: list[int] = []
        self._landmarks: list[np.ndarray] = []
        self._world: list[np.ndarray] = []

    def add(self, frame_index: int, time_s: float, pose: FramePose) -> None:
        landmarks = np.full((self.max_people, LANDMARK_COUNT, 5), np.nan, np.float32)
        world = np.full((self.max_people, LANDMARK_COUNT, 3), np.nan, np.float32)
        slots = self._tracker.assign(pose, time_s)
        landmarks[slots] = pose.landmarks[: len(slots)]
        world[slots] = pose.world[: len(slots)]
        self._times.append(time_s)
        self._indices.append(frame_index)
        self._landmarks.append(landmarks)
        self._world.append(world)

    @property
    def last_index(self) -> int | None:
        """The frame number of the last frame added; None before the first."""
        return self._indices[-1] if self._indices else None

    def build(self) -> PoseSeries:
        """The series of the frames added; SeriesError if there were none (a series holds at least one)."""
        if not self._times:
            raise SeriesError("it holds no frames.")
        times = np.array(self._times, np.float64)
        landmarks, world, _ = unswap_left_right(np.stack(self._landmarks), np.stack(self._world), times, self.width,
                                                self.height)
        return PoseSeries(times, np.array(self._indices, np.int64), landmarks, world, self.width, self.height)


@dataclass(frozen=True)
class Smoothing:
    """How a series is cleaned: gaps up to max_gap_s are interpolated, then a zero-phase Butterworth
    low-pass at cutoff_hz (None: no filter). Landmarks below `threshold` visibility count as gaps."""

    cutoff_hz: float | None = 6.0
    max_gap_s: float = 0.25
    threshold: float = DEFAULT_VISIBILITY_THRESHOLD

    def has_no_effect(self, times_s: np.ndarray) -> bool:
        """True when the low-pass filter is on but its cutoff is at or above the Nyquist frequency of these
        frame times (half the median frame rate), so it leaves the curves unchanged.

        Why: a cutoff the user chose can silently do nothing on a low-rate (or strided) clip; the page says so.
        Gap filling is not concerned. Needs two frames or more.
        """
        if not self.cutoff_hz:
            return False
        return self.cutoff_hz >= nyquist_hz(times_s)


def nyquist_hz(times_s: np.ndarray) -> float:
    """Half the median frame rate of these frame times (at least two), in Hz: the highest frequency they can hold."""
    return 0.5 / float(np.median(np.diff(times_s)))


@dataclass(frozen=True)
class Kinematics:
    """Angles and speeds of a series, raw and smoothed, ready to chart and export.

    pixels, world: the cleaned (gap-filled, filtered) landmark positions, (frames, people, 33, 2) px and
    (..., 3) m. angles_*: (frames, people, len(ANGLES)) degrees, unwrapped over time. interpolated:
    (frames, people, 33) bool, where a landmark was filled in. speed_px / speed_m: (frames, people, 33) px/s and m/s
    (m/s only with a height for calibration, else None). angular_velocity: deg/s of the smoothed angles.
    smoothing, height_m: what they were computed with, which the exports record.
    """

    pixels: np.ndarray
    world: np.ndarray
    angles_2d_raw: np.ndarray
    angles_2d: np.ndarray
    angles_3d: np.ndarray
    interpolated: np.ndarray
    speed_px: np.ndarray
    speed_m: np.ndarray | None
    angular_velocity: np.ndarray
    smoothing: Smoothing
    height_m: float | None


def clean(series: PoseSeries, smoothing: Smoothing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels, world, interpolated): hidden landmarks removed, short gaps filled, then low-pass filtered."""
    hidden = ~(series.visibility >= smoothing.threshold)
    pixels = np.where(hidden[..., None], np.nan, series.pixels)
    world = np.where(hidden[..., None], np.nan, series.world)
    pixels, filled = interpolate_gaps(pixels, series.times_s, smoothing.max_gap_s)
    world, _ = interpolate_gaps(world, series.times_s, smoothing.max_gap_s)
    if smoothing.cutoff_hz is not None and series.frames > 1:
        pixels = butterworth_lowpass(pixels, series.times_s, smoothing.cutoff_hz)
        world = butterworth_lowpass(world, series.times_s, smoothing.cutoff_hz)
    return pixels, world, filled.any(axis=-1)


def kinematics(series: PoseSeries, smoothing: Smoothing, height_m: float | None = None) -> Kinematics:
    pixels, world, interpolated = clean(series, smoothing)
    known = np.isfinite(pixels[..., 0]).astype(np.float32)
    raw = compute_angles(series.pixels, series.visibility, smoothing.threshold)
    angles_2d = unwrap_degrees(compute_angles(pixels, known, 0.5))
    angles_3d = unwrap_degrees(compute_angles(world, known, 0.5))
    speed_px = speed(pixels, series.times_s)
    speed_m = None
    if height_m:
        scale = metres_per_pixel(series.pixels, series.visibility, height_m, smoothing.threshold)
        speed_m = speed_px * scale[None, :, None]
    return Kinematics(pixels, world, unwrap_degrees(raw), angles_2d, angles_3d, interpolated, speed_px, speed_m,
                      angular_velocity(angles_2d, series.times_s), smoothing, height_m)
