"""Live pose on camera frames: what the Webcam page runs on each frame, without any Streamlit in it.

A LiveProcessor takes the newest camera frame, finds the pose, draws the skeleton, the chosen joint
angles and a small HUD, smooths the angles causally (One-Euro) into a bounded ring buffer for the live
chart, and, while recording, feeds a Recorder that builds a PoseSeries: the data the Video page charts.

Threads: `process_newest` / `process` run on one streaming thread (streamlit-webrtc's worker); `update`,
`window`, `latest`, `stats` and the recording controls are called from Streamlit's script threads.
Settings are one frozen object swapped whole, so a frame sees either the old settings or the new, never
a mix; a new model is loaded beside the running one and takes over when ready, so the stream never stops.

No backlog: streamlit-webrtc (with async_processing) hands the callback every frame that arrived while
the previous one was being processed; `process_newest` works on the newest and counts the rest as
dropped. The engine runs in MediaPipe's VIDEO mode (synchronous, tracking between frames). Measured on
2 cores at 640x480 with frames at 30 a second (`benchmarks/webcam_bench.py --compare-modes`), VIDEO mode
took 9.5 ms (lite) and 11.7 ms (full) per frame at the median, LIVE_STREAM mode answered in 9.8 and
11.9 ms: no faster, and its answer arrives after the frame has been sent on, so its skeleton would be
drawn on a later frame; and the stale frames LIVE_STREAM would drop are dropped before the engine here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import av
import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from aiortc.rtcicetransport import parse_stun_turn_uri

from analysis import exports
from analysis.angles import ANGLE_NAMES, ANGLES, DEFAULT_VISIBILITY_THRESHOLD, compute_angles
from analysis.drawing import draw_angle_labels, draw_pose, draw_skeleton_only
from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.figures import time_series
from analysis.filters import OneEuroFilter
from analysis.landmarks import FIELDS, INDEX, LANDMARK_COUNT, X
from analysis.models import ModelError
from analysis.series import Kinematics, PoseSeries, SeriesBuilder, Smoothing, kinematics
from analysis.tables import landmark_table
from analysis.video import ClipAnalysis, ClipOptions
from analysis.video_io import VideoError, VideoInfo, VideoWriter

LOGGER = logging.getLogger(__name__)
DEFAULT_LIVE_ANGLES: tuple[str, ...] = ("left elbow", "right elbow", "left knee", "right knee")
BUFFER_FRAMES = 2048  # the ring: about 68 s at 30 frames/s, 34 s at 60
MAX_RECORDING_S = 20 * 60.0  # a recording stops growing after 20 minutes
SMOOTHING = Smoothing()  # a recording's kinematics: the Video page's defaults
LIVE_CHART_POINTS = 150  # samples a line in the live chart: 10 a second over 15 s
_STATS_FRAMES = 240  # processing times and finish times kept for the figures (8 s at 30 frames/s)
_SEGMENT_COLUMNS = np.array([a.kind == "segment" for a in ANGLES])  # these wrap at ±180°
_HIPS = [INDEX["left_hip"], INDEX["right_hip"]]
_REC_COLOUR = (235, 40, 40)
_HUD_COLOUR = (240, 240, 240)
ANGLE_TITLE = "Angle (°)"


@dataclass(frozen=True)
class LiveSettings:
    """What the user chose for the live view. Changing any of it takes effect on the next frame.

    angles: names from ANGLES, labelled on the picture and charted. mirror: show the picture as a
    mirror (the data stays in camera coordinates, as recorded video would be). privacy: the skeleton
    on a blank background. min_cutoff (Hz) and beta (per deg/s): the One-Euro filter for the chart.
    """

    pose: PoseSettings = field(default_factory=lambda: PoseSettings(complexity="lite"))
    angles: tuple[str, ...] = DEFAULT_LIVE_ANGLES
    mirror: bool = True
    privacy: bool = False
    threshold: float = DEFAULT_VISIBILITY_THRESHOLD
    min_cutoff: float = 1.5
    beta: float = 0.02

    def __post_init__(self) -> None:
        unknown = [name for name in self.angles if name not in ANGLE_NAMES]
        if unknown:
            raise ValueError(f"unknown angles {unknown}; choose from analysis.angles.ANGLE_NAMES")


@dataclass(frozen=True)
class LiveStats:
    """How the stream is doing. Times in milliseconds.

    received: frames that reached the processor; processed: frames analysed and sent back; dropped:
    stale frames skipped because a newer one had arrived meanwhile (received = processed + dropped).
    fps: frames processed per second over the last two seconds; camera_fps: frames arriving per second.
    processing_ms_*: the whole per-frame path (conversion, pose, angles, drawing) over the last frames.
    lag_ms: how much later than the quickest frame of this stream the newest frame reached processing;
    it stays near 0 when nothing queues up. since_last_frame_s: how long ago the last frame was processed.
    model: the complexity in use; loading: one being loaded; error: why none could be, or why the last
    frame could not be processed.
    """

    received: int = 0
    processed: int = 0
    dropped: int = 0
    fps: float = 0.0
    camera_fps: float = 0.0
    processing_ms_p50: float = math.nan
    processing_ms_p95: float = math.nan
    lag_ms: float = math.nan
    since_last_frame_s: float = math.inf
    people: int = 0
    width: int = 0
    height: int = 0
    model: str | None = None
    loading: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LiveWindow:
    """The last seconds of the ring, oldest first, for the person the chart follows.

    times_s: (n,) session seconds. angles / smoothed: (n, len(ANGLES)) degrees, raw and One-Euro
    filtered; NaN where the angle could not be measured. landmarks: (n, 33, 5); world: (n, 33, 3).
    """

    times_s: np.ndarray
    angles: np.ndarray
    smoothed: np.ndarray
    landmarks: np.ndarray
    world: np.ndarray


@dataclass(frozen=True)
class LiveFrame:
    """The newest analysed frame: its session time, everyone's pose, and their angles (people, len(ANGLES))."""

    time_s: float
    pose: FramePose
    angles: np.ndarray

    def landmarks(self) -> pd.DataFrame:
        """The long landmark table of this frame, without the frame and time columns."""
        table = landmark_table(self.pose.landmarks[None], self.pose.world[None], np.array([self.time_s]))
        return table.drop(columns=["frame", "time_s"])


class LiveBuffer:
    """A thread-safe ring of the newest `capacity` frames of the person the chart follows, in fixed numpy arrays.

    One writer (the streaming thread) and any number of readers; each push and each read holds the lock
    for a few array copies only, so a reader never sees half a row and memory never grows.
    """

    def __init__(self, capacity: int = BUFFER_FRAMES) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._times = np.full(capacity, np.nan)
        self._angles = np.full((capacity, len(ANGLES)), np.nan, np.float32)
        self._smoothed = np.full((capacity, len(ANGLES)), np.nan, np.float32)
        self._landmarks = np.full((capacity, LANDMARK_COUNT, len(FIELDS)), np.nan, np.float32)
        self._world = np.full((capacity, LANDMARK_COUNT, 3), np.nan, np.float32)
        self._count = 0  # pushes ever; the next slot is _count % capacity

    def push(self, time_s: float, angles: np.ndarray, smoothed: np.ndarray, landmarks: np.ndarray,
             world: np.ndarray) -> None:
        with self._lock:
            slot = self._count % self.capacity
            self._times[slot] = time_s
            self._angles[slot] = angles
            self._smoothed[slot] = smoothed
            self._landmarks[slot] = landmarks
            self._world[slot] = world
            self._count += 1

    @property
    def pushed(self) -> int:
        """How many frames were ever pushed."""
        return self._count

    def window(self, seconds: float | None = None) -> LiveWindow:
        """Copies of the frames from the newest back `seconds` (all that the ring holds if None), oldest first."""
        with self._lock:
            size = min(self._count, self.capacity)
            order = (np.arange(self._count - size, self._count)) % self.capacity
            times = self._times[order]
            if seconds is not None and size:
                order = order[times >= times[-1] - seconds]
                times = self._times[order]
            return LiveWindow(times, self._angles[order], self._smoothed[order], self._landmarks[order],
                              self._world[order])


class AngleSmoother:
    """Causal One-Euro smoothing of one frame's angles (len(ANGLES),) at a time, for the live chart and labels.

    Segment angles wrap at ±180°: each is first unwrapped against the previous output, so that crossing
    ±180° is no jump for the filter, and wrapped back into (-180°, 180°] on the way out. A NaN angle comes
    out NaN and starts afresh (the filter's rule). A time that does not increase starts the filter afresh.
    """

    def __init__(self, min_cutoff: float, beta: float) -> None:
        self.min_cutoff, self.beta = min_cutoff, beta
        self._filter = OneEuroFilter(min_cutoff, beta)
        self._previous: np.ndarray | None = None  # the last output, segment angles unwrapped
        self._last_s = -math.inf

    def __call__(self, angles: np.ndarray, time_s: float) -> np.ndarray:
        if time_s <= self._last_s:
            self._filter, self._previous = OneEuroFilter(self.min_cutoff, self.beta), None
        self._last_s = time_s
        values = np.asarray(angles, np.float64)
        if self._previous is not None:
            step = (values - self._previous + 180.0) % 360.0 - 180.0
            values = np.where(_SEGMENT_COLUMNS & ~np.isnan(self._previous), self._previous + step, values)
        smoothed = self._previous = self._filter(values, time_s)
        wrapped = 180.0 - (180.0 - smoothed) % 360.0  # into (-180, 180]
        return np.where(_SEGMENT_COLUMNS, wrapped, smoothed).astype(np.float32)


class _Timings:
    """Per-frame processing times, finish times and arrivals in small fixed rings, for the page and the HUD."""

    def __init__(self, size: int = _STATS_FRAMES) -> None:
        self._lock = threading.Lock()
        self._durations = np.full(size, np.nan)
        self._finished = np.full(size, np.nan)
        self._processed_then = np.zeros(size)  # frames processed up to and including that one
        self._arrivals = np.full(size, np.nan)  # when a batch of frames reached the processor
        self._received_then = np.zeros(size)  # frames received up to and including that batch
        self._count = self._batches = 0
        self.received = self.dropped = 0
        self.lag_ms = math.nan

    def arrived(self, frames: int, now_s: float) -> None:
        with self._lock:
            self.received += frames
            self.dropped += frames - 1
            slot = self._batches % len(self._arrivals)
            self._arrivals[slot], self._received_then[slot] = now_s, self.received
            self._batches += 1

    def done(self, duration_s: float, finished_s: float) -> None:
        with self._lock:
            slot = self._count % len(self._durations)
            self._durations[slot] = duration_s
            self._finished[slot] = finished_s
            self._count += 1
            self._processed_then[slot] = self._count

    def figures(self, now_s: float) -> tuple[int, float, float, float, float, float]:
        """(processed, processed fps, camera fps, p50 ms, p95 ms, seconds since the last frame); rates over 2 s."""
        with self._lock:
            durations, finished, processed = self._durations.copy(), self._finished.copy(), self._count
            done, arrivals, received = self._processed_then.copy(), self._arrivals.copy(), self._received_then.copy()
        idle = now_s - np.nanmax(finished) if processed else math.inf
        fps = _rate(finished, done, now_s)
        camera_fps = _rate(arrivals, received, now_s)
        known = durations[~np.isnan(durations)] * 1000
        if not len(known):
            return processed, fps, camera_fps, math.nan, math.nan, idle
        p50, p95 = np.percentile(known, [50, 95])
        return processed, fps, camera_fps, float(p50), float(p95), idle


def _rate(times: np.ndarray, counts: np.ndarray, now_s: float, over_s: float = 2.0) -> float:
    """Events per second over the last `over_s` from a ring of times and the cumulative counts at those times.
    A stream that stalled (nothing for a second) reads 0, not its old rate."""
    recent = times >= now_s - over_s
    if recent.sum() < 2 or now_s - np.nanmax(times) > 1.0:
        return 0.0
    first, last = np.argmin(np.where(recent, times, np.inf)), np.argmax(np.where(recent, times, -np.inf))
    if times[last] <= times[first]:
        return 0.0
    return float((counts[last] - counts[first]) / (times[last] - times[first]))


class _StreamClock:
    """Turns each frame's media time into one increasing session time, and measures how late frames arrive.

    A stream's media time starts anew each time the camera starts; the session time (seconds on the
    monotonic clock of this process) keeps increasing across streams, as MediaPipe's VIDEO mode needs.
    The lag is the frame's delay (now - media time) above the smallest delay seen in this stream: 0 when
    frames are handled as they come, growing if they queued up anywhere before processing.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._last_media = math.nan
        self._last_time = -math.inf
        self._min_delay = math.inf

    def __call__(self, media_s: float | None, now_s: float) -> tuple[float, float]:
        if media_s is None:
            media_s = now_s
        # A new stream: media time went back, or jumped (a paused or restarted camera).
        if not (self._last_media < media_s <= self._last_media + 2.0):
            self._offset = now_s - media_s
            self._min_delay = math.inf
        self._last_media = media_s
        time_s = max(media_s + self._offset, self._last_time + 1e-3)
        self._last_time = time_s
        delay = now_s - time_s
        self._min_delay = min(self._min_delay, delay)
        return time_s, (delay - self._min_delay) * 1000


class Recorder:
    """Accumulates a recording's poses into a SeriesBuilder and, optionally, its raw frames into an MP4.

    Thread-safe: `add` runs on the streaming thread, `finish` on a script thread. Times are from the
    first recorded frame. After MAX_RECORDING_S the recording stops growing and says so (`truncated`).
    """

    def __init__(self, settings: LiveSettings, with_video: bool = False, max_s: float = MAX_RECORDING_S) -> None:
        self.settings = settings
        self.started = datetime.now().astimezone()
        self._with_video = with_video
        self._max_s = max_s
        self._lock = threading.Lock()
        self._builder: SeriesBuilder | None = None
        self._writer: VideoWriter | None = None
        self._video_path: str | None = None
        self._first_s = math.nan
        self._first_number = 0
        self._added = 0
        self._last_s = 0.0
        self._closed = self.truncated = False
        self.video_error: str | None = None
        self._discard: weakref.finalize | None = None  # set once a video file exists

    @property
    def seconds(self) -> float:
        return self._last_s

    def add(self, time_s: float, pose: FramePose, rgb: np.ndarray | None = None, frame_number: int | None = None
            ) -> None:
        """One analysed frame. frame_number: its number in the camera stream, so that dropped frames leave gaps
        in the series' frame_index as a stride does in a video (by default frames are counted as they come)."""
        with self._lock:
            if self._closed:
                return
            if self._builder is None:
                self._builder = SeriesBuilder(self.settings.pose.max_people, pose.width, pose.height)
                self._first_s, self._first_number = time_s, frame_number or 0
                if self._with_video and rgb is not None:
                    self._open_video()
            elapsed = time_s - self._first_s
            if elapsed > self._max_s:
                self.truncated = True
                return
            index = frame_number - self._first_number if frame_number is not None else self._added
            self._builder.add(index, elapsed, pose)
            self._added += 1
            if self._writer is not None and rgb is not None:
                try:
                    self._writer.write(rgb, elapsed)
                except (VideoError, ValueError) as error:
                    self._drop_video(str(error))
            self._last_s = elapsed

    def _open_video(self) -> None:
        handle, self._video_path = tempfile.mkstemp(prefix="posescope-webcam-", suffix=".mp4")
        os.close(handle)
        try:
            self._writer = VideoWriter(self._video_path, fps=30.0)
        except VideoError as error:
            self._drop_video(str(error))
            return
        # A recording abandoned unfinished (its browser session closed) leaves no encoder and no file behind.
        self._discard = weakref.finalize(self, _discard_video, self._writer, self._video_path)

    def _drop_video(self, reason: str) -> None:
        self.video_error = reason
        if self._discard is not None:
            self._discard.detach()
        _discard_video(self._writer, self._video_path)
        self._writer = self._video_path = None

    def finish(self) -> Recording:
        """Stop taking frames and return the recording; the temporary video file is read and removed."""
        with self._lock:
            self._closed = True
            builder, writer, path = self._builder, self._writer, self._video_path
            self._writer = None
            if self._discard is not None:
                self._discard.detach()
        video = None
        if writer is not None and path is not None:
            try:
                writer.close()
                with open(path, "rb") as file:
                    video = file.read()
            except (VideoError, OSError) as error:
                self.video_error = str(error)
            finally:
                with contextlib.suppress(OSError):
                    os.remove(path)
        if builder is None:
            builder = SeriesBuilder(self.settings.pose.max_people, 0, 0)
        return Recording(builder.build(), self.settings, self.started, video, self.truncated, self.video_error)


def _discard_video(writer: VideoWriter | None, path: str | None) -> None:
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.close()
    if path is not None:
        with contextlib.suppress(OSError):
            os.remove(path)


@dataclass(frozen=True)
class Recording:
    """A finished webcam recording, exported in the Video page's formats (analysis.exports).

    series: the poses (PoseSeries.to_npz is what the Video page opens). video: the raw camera frames as an
    H.264 MP4, if asked for. Kinematics and exports are computed on first use, with the Video page's
    default smoothing, and kept.
    """

    series: PoseSeries
    settings: LiveSettings
    started: datetime
    video: bytes | None = None
    truncated: bool = False
    video_error: str | None = None

    @property
    def duration_s(self) -> float:
        return float(self.series.times_s[-1]) if self.series.frames else 0.0

    @property
    def fps(self) -> float:
        return (self.series.frames - 1) / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def stem(self) -> str:
        return f"webcam_{self.started:%Y%m%d_%H%M%S}"

    @functools.cached_property
    def kinematics(self) -> Kinematics:
        return kinematics(self.series, SMOOTHING)

    def as_clip(self) -> ClipAnalysis:
        """The recording described as an analysed clip, so that the Video page's summary reads it alike."""
        s = self.series
        info = VideoInfo(s.width, s.height, 0, round(self.fps, 3), self.duration_s, s.frames, "webrtc", False)
        warning = (f"The recording reached its {MAX_RECORDING_S / 60:.0f}-minute limit and stopped there."
                   if self.truncated else None)
        return ClipAnalysis(s, info, ClipOptions(privacy=self.settings.privacy), self.settings.pose,
                            self.duration_s, warning)

    def landmarks_csv(self) -> str:
        return exports.landmarks_csv(self.series)

    def angles_csv(self) -> str:
        return exports.angles_csv(self.series, self.kinematics)

    def summary_json(self) -> str:
        return exports.summary_json(self.as_clip(), self.kinematics, SMOOTHING, source="webcam")

    def to_npz(self) -> bytes:
        return self.series.to_npz()


class LiveProcessor:
    """The per-session live pipeline: newest frame in, annotated frame out, figures and recordings aside."""

    def __init__(self, settings: LiveSettings | None = None, buffer_frames: int = BUFFER_FRAMES) -> None:
        self._settings = settings or LiveSettings()
        self.buffer = LiveBuffer(buffer_frames)
        self._timings = _Timings()
        self._clock = _StreamClock()
        self._smoother = AngleSmoother(self._settings.min_cutoff, self._settings.beta)
        self._engine: PoseEngine | None = None
        self._engine_lock = threading.Lock()  # guards _ready, _loading, _error
        self._ready: PoseEngine | None = None
        self._loading: PoseSettings | None = None
        self._error: str | None = None
        self._last_ms = -1
        self._primary_centre = np.full(2, np.nan)
        self._latest: LiveFrame | None = None
        self._recorder: Recorder | None = None
        self._recorder_lock = threading.Lock()
        self._failure: str | None = None  # the last frame that could not be processed, for the page

    # --- settings and model -------------------------------------------------------------------------------------

    @property
    def settings(self) -> LiveSettings:
        return self._settings

    def update(self, settings: LiveSettings) -> None:
        """Use these settings from the next frame on; a different model loads in the background meanwhile."""
        old, self._settings = self._settings, settings
        if (old.min_cutoff, old.beta) != (settings.min_cutoff, settings.beta):
            self._smoother = AngleSmoother(settings.min_cutoff, settings.beta)
        self.prepare()

    def prepare(self) -> None:
        """Start loading the model the settings ask for, unless it is in use or loading already."""
        wanted = self._settings.pose
        with self._engine_lock:
            current = self._ready or self._engine
            if (current is not None and current.settings == wanted) or self._loading == wanted:
                return
            self._loading, self._error = wanted, None
        threading.Thread(target=self._load, args=(wanted,), name="LiveProcessor-load", daemon=True).start()

    def _load(self, wanted: PoseSettings) -> None:
        try:
            engine: PoseEngine | None = PoseEngine(wanted, Mode.VIDEO)
            error = None
        except ModelError as problem:
            engine, error = None, str(problem)
        except Exception as problem:  # noqa: BLE001 - MediaPipe's own failures: shown on the page, not a dead stream
            engine, error = None, f"The {wanted.complexity} pose model could not be started ({problem})."
        with self._engine_lock:
            if self._loading != wanted:  # superseded by a newer choice while loading
                if engine is not None:
                    engine.close()
                return
            self._loading, self._error = None, error
            if engine is not None:
                if self._ready is not None:
                    self._ready.close()
                self._ready = engine

    def _current_engine(self) -> PoseEngine | None:
        """The engine for this frame: a freshly loaded one takes over here, on the streaming thread."""
        with self._engine_lock:
            ready, self._ready = self._ready, None
            if ready is None and self._engine is None and self._loading is None and self._error is None:
                needs_load = True
            else:
                needs_load = False
        if ready is not None:
            if self._engine is not None:
                self._engine.close()
            self._engine = ready
        if needs_load:
            self.prepare()
        return self._engine

    def wait_until_ready(self, timeout_s: float = 30.0) -> bool:
        """Block until the wanted model is loaded (for tests and the benchmark); False on error or timeout."""
        deadline = time.monotonic() + timeout_s
        self.prepare()
        while time.monotonic() < deadline:
            with self._engine_lock:
                if self._error is not None:
                    return False
                current = self._ready or self._engine
                if current is not None and current.settings == self._settings.pose and self._loading is None:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        with self._engine_lock:
            engines = [e for e in (self._engine, self._ready) if e is not None]
            self._engine = self._ready = None
            self._loading = None
        for engine in engines:
            engine.close()

    # --- frames ---------------------------------------------------------------------------------------------------

    def process_newest(self, frames: Sequence[av.VideoFrame]) -> av.VideoFrame:
        """streamlit-webrtc's queued-frames callback body: the newest frame is analysed, older ones dropped."""
        started = time.perf_counter()
        self._timings.arrived(len(frames), time.monotonic())
        newest = frames[-1]
        time_s, self._timings.lag_ms = self._clock(newest.time, time.monotonic())
        try:
            shown = self._process(newest.to_ndarray(format="rgb24"), time_s)
        except Exception as error:  # one bad frame must not end the stream: pass it through, say so on the page
            LOGGER.exception("A camera frame could not be processed")
            self._failure = f"A camera frame could not be processed ({type(error).__name__}: {error})."
            return newest
        self._failure = None
        out = av.VideoFrame.from_ndarray(shown, format="rgb24")
        self._timings.done(time.perf_counter() - started, time.monotonic())
        return out

    def process(self, rgb: np.ndarray, time_s: float) -> np.ndarray:
        """One RGB uint8 frame at `time_s` (seconds, increasing) → the annotated RGB frame to show."""
        started = time.perf_counter()
        self._timings.arrived(1, time.monotonic())
        shown = self._process(rgb, time_s)
        self._timings.done(time.perf_counter() - started, time.monotonic())
        return shown

    def stream_ended(self) -> None:
        """The camera stopped: the next stream's lag is measured afresh."""
        self._clock = _StreamClock()

    def _process(self, rgb: np.ndarray, time_s: float) -> np.ndarray:
        settings = self._settings
        height, width = rgb.shape[:2]
        engine = self._current_engine()
        if engine is not None:
            stamp = max(round(time_s * 1000), self._last_ms + 1)  # VIDEO mode: strictly increasing ms
            self._last_ms = stamp
            pose = engine.detect_frame(rgb, stamp)
        else:
            pose = FramePose.empty(width, height)
        angles = compute_angles(pose.pixels, pose.visibility, settings.threshold)
        primary = self._primary(pose)
        if primary is None:
            raw = np.full(len(ANGLES), np.nan, np.float32)
            landmarks = np.full((LANDMARK_COUNT, len(FIELDS)), np.nan, np.float32)
            world = np.full((LANDMARK_COUNT, 3), np.nan, np.float32)
        else:
            raw, landmarks, world = angles[primary], pose.landmarks[primary], pose.world[primary]
        smoothed = self._smoother(raw, time_s)
        self.buffer.push(time_s, raw, smoothed, landmarks, world)
        self._latest = LiveFrame(time_s, pose, angles)
        with self._recorder_lock:
            recorder = self._recorder
        if recorder is not None:
            recorder.add(time_s, pose, rgb, self._timings.received)

        labels = angles.copy()
        if primary is not None:
            labels[primary] = smoothed
        shown_pose = mirrored(pose) if settings.mirror else pose
        if settings.privacy:
            shown = draw_skeleton_only(shown_pose, settings.threshold)
        else:
            shown = draw_pose(rgb[:, ::-1] if settings.mirror else rgb, shown_pose, settings.threshold)
        draw_angle_labels(shown, shown_pose, labels, list(settings.angles))
        draw_hud(shown, self._hud_lines(pose, engine), recorder.seconds if recorder is not None else None)
        return shown

    def _primary(self, pose: FramePose) -> int | None:
        """The person the chart follows: the one whose hips are nearest where they were last frame."""
        if pose.people == 0:
            return None
        centres = pose.landmarks[:, _HIPS, :2].mean(axis=1)
        person = 0
        if not np.isnan(self._primary_centre).any():
            person = int(np.argmin(np.linalg.norm(centres - self._primary_centre, axis=-1)))
        self._primary_centre = centres[person]
        return person

    def _hud_lines(self, pose: FramePose, engine: PoseEngine | None) -> list[str]:
        processed, fps, _, p50, _, _ = self._timings.figures(time.monotonic())
        model = engine.settings.complexity if engine is not None else "no model"
        lines = [f"{model}  {fps:4.1f} fps  {p50:4.1f} ms" if processed else f"{model}  starting"]
        lag = self._timings.lag_ms
        lines.append(f"lag {lag:3.0f} ms  dropped {self._timings.dropped}" if not math.isnan(lag)
                     else f"dropped {self._timings.dropped}")
        with self._engine_lock:
            loading, error = self._loading, self._error
        if loading is not None:
            lines.append(f"loading {loading.complexity} model")
        elif error is not None:
            lines.append("model error: see the page")
        elif pose.people == 0:
            lines.append("no person in view")
        return lines

    # --- what the page reads ----------------------------------------------------------------------------------

    def latest(self) -> LiveFrame | None:
        return self._latest

    def window(self, seconds: float | None = None) -> LiveWindow:
        return self.buffer.window(seconds)

    def stats(self) -> LiveStats:
        processed, fps, camera_fps, p50, p95, idle = self._timings.figures(time.monotonic())
        latest = self._latest
        with self._engine_lock:
            loading, error = self._loading, self._error
        engine = self._engine
        return LiveStats(
            received=self._timings.received, processed=processed, dropped=self._timings.dropped, fps=fps,
            camera_fps=camera_fps,
            processing_ms_p50=p50, processing_ms_p95=p95, lag_ms=self._timings.lag_ms, since_last_frame_s=idle,
            people=latest.pose.people if latest else 0, width=latest.pose.width if latest else 0,
            height=latest.pose.height if latest else 0,
            model=engine.settings.complexity if engine is not None else None,
            loading=loading.complexity if loading is not None else None, error=error or self._failure)

    # --- recording --------------------------------------------------------------------------------------------

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    def start_recording(self, with_video: bool = False) -> Recorder:
        """Start a new recording (a running one is finished and discarded)."""
        recorder = Recorder(self._settings, with_video=with_video and not self._settings.privacy)
        with self._recorder_lock:
            old, self._recorder = self._recorder, recorder
        if old is not None:
            old.finish()
        return recorder

    def stop_recording(self) -> Recording | None:
        with self._recorder_lock:
            recorder, self._recorder = self._recorder, None
        return recorder.finish() if recorder is not None else None


def mirrored(pose: FramePose) -> FramePose:
    """The pose as it appears in a mirrored picture: x flipped in the image and in the world."""
    landmarks = pose.landmarks.copy()
    landmarks[..., X] = 1.0 - landmarks[..., X]
    world = pose.world.copy()
    world[..., 0] = -world[..., 0]
    return replace(pose, landmarks=landmarks, world=world)


def draw_hud(frame: np.ndarray, lines: Sequence[str], recording_s: float | None = None) -> np.ndarray:
    """Small figures in the top-left corner on a darkened box, and a red REC mark while recording; in place."""
    height, width = frame.shape[:2]
    scale = max(0.35, min(width, height) / 900)
    thickness = max(1, round(scale * 2))
    line_height = round(32 * scale)
    pad = round(10 * scale)
    if recording_s is not None:
        lines = [f"REC {int(recording_s) // 60}:{int(recording_s) % 60:02d}", *lines]
    text_width = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for line in lines)
    x1 = min(width, 3 * pad + text_width + round(12 * scale))
    y1 = min(height, pad + line_height * len(lines) + pad)
    box = frame[pad // 2:y1, pad // 2:x1]
    box[:] = (box * 0.35).astype(np.uint8)
    for i, line in enumerate(lines):
        origin = (pad * 2, pad + line_height * (i + 1) - round(8 * scale))
        colour = _REC_COLOUR if recording_s is not None and i == 0 else _HUD_COLOUR
        if recording_s is not None and i == 0:
            cv2.circle(frame, (pad + round(3 * scale), origin[1] - round(8 * scale)), max(2, round(6 * scale)),
                       _REC_COLOUR, -1, cv2.LINE_AA)
            origin = (origin[0] + round(10 * scale), origin[1])
        cv2.putText(frame, line, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return frame


def live_figure(window: LiveWindow, names: Sequence[str], seconds: float, max_points: int = LIVE_CHART_POINTS
                ) -> go.Figure:
    """The last `seconds` of smoothed angles, time counted back from the newest frame (0 s = now).

    At most `max_points` samples a line (every nth, always the newest): the browser redraws the chart a few
    times a second on the same machine as the pose model, and the smoothed curve needs no more.
    """
    columns = [ANGLE_NAMES.index(name) for name in names]
    rows = np.arange(len(window.times_s))[::-1][::max(1, math.ceil(len(window.times_s) / max_points))][::-1]
    now = window.times_s[-1] if len(window.times_s) else 0.0
    figure = time_series(window.times_s[rows] - now, window.smoothed[rows][:, columns], names, ANGLE_TITLE,
                         height=300)
    # uirevision: legend clicks and zoom survive the refreshes
    return figure.update_layout(uirevision="live", xaxis={"title": "Seconds ago (0 = now)", "range": [-seconds, 0]})


def recording_figure(recording: Recording, names: Sequence[str], person: int = 0) -> go.Figure:
    """A recording's angles as the Video page charts them: smoothed, over the raw ones."""
    columns = [ANGLE_NAMES.index(name) for name in names]
    angles = recording.kinematics
    return time_series(recording.series.times_s, angles.angles_2d[:, person][:, columns], names, ANGLE_TITLE,
                       raw=angles.angles_2d_raw[:, person][:, columns])


# --- networking -------------------------------------------------------------------------------------------------

ICE_ENVIRONMENT_VARIABLE = "POSESCOPE_ICE_SERVERS"


class IceConfigError(ValueError):
    """The configured ICE servers are not usable; the message says what to fix."""


def ice_servers_from(secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
                     ) -> list[dict[str, Any]]:
    """The STUN/TURN servers WebRTC may use: [] (none, nothing contacted) unless configured.

    secrets: the `[webrtc]` table of .streamlit/secrets.toml, whose `ice_servers` is a list of
    {urls = "stun:…" or ["turn:…", …], username = "…", credential = "…"}. environ: the process
    environment; POSESCOPE_ICE_SERVERS, a JSON list of the same shape, wins over the secrets.
    TURN servers need a username and a credential. Raises IceConfigError on anything malformed.
    """
    raw: Any = None
    source = ""
    text = (environ or {}).get(ICE_ENVIRONMENT_VARIABLE, "").strip()
    if text:
        source = f"the environment variable {ICE_ENVIRONMENT_VARIABLE}"
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise IceConfigError(f"{source} is not valid JSON ({error.msg} at character {error.pos}).") from None
    elif secrets and secrets.get("ice_servers") is not None:
        source, raw = "ice_servers in the [webrtc] section of .streamlit/secrets.toml", secrets["ice_servers"]
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise IceConfigError(f"{source} must be a list of servers, each with `urls`.")
    return [_ice_server(entry, i, source) for i, entry in enumerate(raw)]


def _ice_server(entry: Any, i: int, source: str) -> dict[str, Any]:
    where = f"Server {i + 1} in {source}"
    if not isinstance(entry, Mapping) or "urls" not in entry:
        raise IceConfigError(f"{where} must be a table with `urls`, e.g. {{urls = \"stun:stun.example.org:3478\"}}.")
    extra = set(entry) - {"urls", "username", "credential"}
    if extra:
        raise IceConfigError(f"{where} has unknown keys {sorted(extra)}; use urls, username and credential.")
    urls = [entry["urls"]] if isinstance(entry["urls"], str) else entry["urls"]
    if not isinstance(urls, Sequence) or not urls or not all(isinstance(url, str) for url in urls):
        raise IceConfigError(f"{where}: `urls` must be a URL or a list of URLs.")
    for url in urls:
        try:
            parse_stun_turn_uri(url)
        except ValueError:
            raise IceConfigError(f"{where}: {url!r} is not a STUN or TURN URL "
                                 "(stun:host:port, turn:host:port?transport=udp, turns:host:port).") from None
    server: dict[str, Any] = {"urls": list(urls)}
    for key in ("username", "credential"):
        if entry.get(key) is not None:
            if not isinstance(entry[key], str):
                raise IceConfigError(f"{where}: `{key}` must be text.")
            server[key] = entry[key]
    if any(url.startswith("turn") for url in urls) and not ("username" in server and "credential" in server):
        raise IceConfigError(f"{where} is a TURN server: it needs a `username` and a `credential`.")
    return server


def rtc_configuration(ice_servers: list[dict[str, Any]]) -> dict[str, Any]:
    """The RTCConfiguration for both ends; with [] neither the browser nor the server contacts any server."""
    return {"iceServers": [dict(server) for server in ice_servers]}

