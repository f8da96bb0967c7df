"""Live pose on camera frames: what the Webcam page runs on each frame, without any Streamlit in it.

A LiveProcessor takes the newest camera frame, finds the pose, draws the skeleton, the chosen joint
angles and a small HUD (analysis.drawing), smooths the angles of the person the chart follows causally
(One-Euro) into a bounded ring buffer for the live chart, and, while recording, feeds a Recorder
(analysis.recording). Who the chart follows is PersonTracker's business (analysis.tracking), the rule a
video's series uses: the person in the lowest slot in view.

Threads: `process_newest` runs on one streaming thread (streamlit-webrtc's worker); `update`, `window`,
`latest`, `stats` and the recording controls are called from Streamlit's script threads. Settings are one
frozen object swapped whole, so a frame sees either the old settings or the new, never a mix; a new model
is loaded beside the running one and takes over when ready, so the stream never stops.

No backlog: streamlit-webrtc (with async_processing) hands the callback every frame that arrived while
the previous one was being processed; `process_newest` works on the newest and counts the rest as
dropped. The engine runs in MediaPipe's VIDEO mode (synchronous, tracking between frames). Measured on
2 cores at 640x480 with frames at 30 a second (`benchmarks/webcam_bench.py --compare-modes`), VIDEO mode
took 9.5 ms (lite) and 11.7 ms (full) per frame at the median, LIVE_STREAM mode answered in 9.8 and
11.9 ms: no faster, and its answer arrives after the frame has been sent on, so its skeleton would be
drawn on a later frame; and the stale frames LIVE_STREAM would drop are dropped before the engine here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import av
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.angles import ANGLE_NAMES, ANGLES, DEFAULT_VISIBILITY_THRESHOLD, compute_angles
from analysis.drawing import AngleLabelAnnotator, HudAnnotator, SkeletonAnnotator, draw_skeleton_only
from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.figures import time_series
from analysis.filters import OneEuroFilter
from analysis.landmarks import FIELDS, LANDMARK_COUNT, X
from analysis.live_timing import FrameTimings, LiveStats, StreamClock
from analysis.models import ModelError
from analysis.recording import Recorder, Recording
from analysis.result import ClipOptions
from analysis.tables import landmark_table
from analysis.tracking import PersonTracker

LOGGER = logging.getLogger(__name__)
DEFAULT_LIVE_ANGLES: tuple[str, ...] = ("left elbow", "right elbow", "left knee", "right knee")
BUFFER_FRAMES = 2048  # the ring: about 68 s at 30 frames/s, 34 s at 60
LIVE_CHART_POINTS = 150  # samples a line in the live chart: 10 a second over 15 s
_SEGMENT_COLUMNS = np.array([a.kind == "segment" for a in ANGLES])  # these wrap at ±180°


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


class _Engines:
    """The pose engine a processor draws with, and the one loading beside it to take over.

    Apart from LiveProcessor so that a finalizer can close the engines of a processor nobody holds any more
    (a closed browser session) without keeping the processor alive. `frame_lock` is held for each frame, so
    that closing waits for the frame in progress: a closed MediaPipe landmarker must not be used.
    """

    def __init__(self) -> None:
        self.frame_lock = threading.Lock()
        self._lock = threading.Lock()  # guards _ready, loading and error, which the loading thread sets
        self.in_use: PoseEngine | None = None  # changed only under frame_lock
        self._ready: PoseEngine | None = None
        self.loading: PoseSettings | None = None
        self.error: str | None = None

    @property
    def active(self) -> bool:
        """A model is in use, loaded or loading."""
        return self.in_use is not None or self._ready is not None or self.loading is not None

    def state(self) -> tuple[PoseSettings | None, str | None]:
        """(the settings being loaded, why the last load failed)."""
        with self._lock:
            return self.loading, self.error

    def prepare(self, wanted: PoseSettings) -> None:
        """Start loading `wanted`, unless it is in use or loading already."""
        with self._lock:
            current = self._ready or self.in_use
            if (current is not None and current.settings == wanted) or self.loading == wanted:
                return
            self.loading, self.error = wanted, None
        threading.Thread(target=self._load, args=(wanted,), name="LiveProcessor-load", daemon=True).start()

    def _load(self, wanted: PoseSettings) -> None:
        try:
            engine: PoseEngine | None = PoseEngine(wanted, Mode.VIDEO)
            error = None
        except ModelError as problem:
            engine, error = None, str(problem)
        except Exception as problem:  # noqa: BLE001 - MediaPipe's own failures: shown on the page, not a dead stream
            engine, error = None, f"The {wanted.complexity} pose model could not be started ({problem})."
        with self._lock:
            if self.loading != wanted:  # superseded by a newer choice, or closed, while loading
                if engine is not None:
                    engine.close()
                return
            self.loading, self.error = None, error
            if engine is not None:
                if self._ready is not None:
                    self._ready.close()
                self._ready = engine

    def for_frame(self, wanted: PoseSettings) -> PoseEngine | None:
        """The engine for this frame (under frame_lock): a freshly loaded one takes over here. With none in use
        or coming (the first frame after `close`), `wanted` starts loading."""
        with self._lock:
            ready, self._ready = self._ready, None
            idle = ready is None and self.in_use is None and self.loading is None and self.error is None
        if ready is not None:
            if self.in_use is not None:
                self.in_use.close()
            self.in_use = ready
        if idle:
            self.prepare(wanted)
        return self.in_use

    def wait_until_ready(self, wanted: PoseSettings, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        self.prepare(wanted)
        while time.monotonic() < deadline:
            with self._lock:
                if self.error is not None:
                    return False
                current = self._ready or self.in_use
                if current is not None and current.settings == wanted and self.loading is None:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Close every engine, after the frame in progress; a load under way is discarded when it ends."""
        with self.frame_lock, self._lock:
            engines = [e for e in (self.in_use, self._ready) if e is not None]
            self.in_use = self._ready = None
            self.loading = self.error = None
        for engine in engines:
            engine.close()


class LiveProcessor:
    """The per-session live pipeline: newest frame in, annotated frame out; figures, chart data and recordings aside.

    A model is held only while it is needed: the first frame of a stream loads it (unless `prepare` started it
    earlier, as the page does when it opens), `stream_ended` closes it, and a processor that is garbage-collected
    (its browser session closed) closes its engines too.
    """

    def __init__(self, settings: LiveSettings | None = None, buffer_frames: int = BUFFER_FRAMES) -> None:
        self._settings = settings or LiveSettings()
        self.buffer = LiveBuffer(buffer_frames)
        self._timings = FrameTimings()
        self._clock = StreamClock()
        self._smoother = AngleSmoother(self._settings.min_cutoff, self._settings.beta)
        self._tracker = PersonTracker(self._settings.pose.max_people)
        self._engines = _Engines()
        weakref.finalize(self, self._engines.close)
        self._hud = HudAnnotator()
        self._last_ms = -1
        self._latest: LiveFrame | None = None
        self._recorder: Recorder | None = None
        self._recorder_lock = threading.Lock()
        self._failure: str | None = None  # the last frame that could not be processed, for the page

    # --- settings and model -------------------------------------------------------------------------------------

    @property
    def settings(self) -> LiveSettings:
        return self._settings

    def update(self, settings: LiveSettings) -> None:
        """Use these settings from the next frame on. If a model is in use or loading, a different one loads in
        the background meanwhile; between streams nothing loads until frames come."""
        old, self._settings = self._settings, settings
        if (old.min_cutoff, old.beta) != (settings.min_cutoff, settings.beta):
            self._smoother = AngleSmoother(settings.min_cutoff, settings.beta)
        if old.pose.max_people != settings.pose.max_people:
            self._tracker = PersonTracker(settings.pose.max_people)
        if self._engines.active:
            self._engines.prepare(settings.pose)

    def prepare(self) -> None:
        """Start loading the model the settings ask for, unless it is in use or loading already."""
        self._engines.prepare(self._settings.pose)

    def wait_until_ready(self, timeout_s: float = 30.0) -> bool:
        """Block until the wanted model is loaded (for tests and the benchmark); False on error or timeout."""
        return self._engines.wait_until_ready(self._settings.pose, timeout_s)

    @property
    def engine(self) -> PoseEngine | None:
        """The engine analysing frames now; None until a stream's first frame after loading, and between streams."""
        return self._engines.in_use

    def close(self) -> None:
        """Close the model (after the frame in progress); the next frame loads it again."""
        self._engines.close()

    def stream_ended(self) -> None:
        """The camera stopped: its model is closed, and the next stream loads it again and measures its lag afresh."""
        self.close()
        self._clock = StreamClock()

    # --- frames ---------------------------------------------------------------------------------------------------

    def process_newest(self, frames: Sequence[av.VideoFrame]) -> av.VideoFrame:
        """streamlit-webrtc's queued-frames callback body: the newest frame is analysed, older ones dropped."""
        started = time.perf_counter()
        self._timings.arrived(len(frames), time.monotonic())
        newest = frames[-1]
        time_s, self._timings.lag_ms = self._clock(newest.time, time.monotonic())
        recorder = self._recorder
        try:
            rgb = newest.to_ndarray(format="rgb24")
            with self._engines.frame_lock:
                pose, shown = self._process(rgb, time_s, recorder)
            out = av.VideoFrame.from_ndarray(shown, format="rgb24")
        except Exception as error:  # one bad frame must not end the stream: pass it through, say so on the page
            LOGGER.exception("A camera frame could not be processed")
            self._failure = f"A camera frame could not be processed ({type(error).__name__}: {error})."
            return newest
        self._failure = None
        processing_s = time.perf_counter() - started
        self._timings.done(processing_s, time.monotonic())
        if recorder is not None:
            recorder.add(time_s, pose, frame_number=self._timings.received, processing_s=processing_s, rgb=rgb)
        return out

    def _process(self, rgb: np.ndarray, time_s: float, recorder: Recorder | None) -> tuple[FramePose, np.ndarray]:
        """(the pose found, the picture to show) for one RGB frame; `rgb` itself is left as it came."""
        settings = self._settings
        height, width = rgb.shape[:2]
        engine = self._engines.for_frame(settings.pose)
        if engine is not None:
            stamp = max(round(time_s * 1000), self._last_ms + 1)  # VIDEO mode: strictly increasing ms
            self._last_ms = stamp
            pose = engine.detect_frame(rgb, stamp)
        else:
            pose = FramePose.empty(width, height)
        angles = compute_angles(pose.pixels, pose.visibility, settings.threshold)
        slots = self._tracker.assign(pose, time_s)
        followed = int(np.argmin(slots)) if len(slots) else None  # the person in the lowest slot
        if followed is None:
            raw = np.full(len(ANGLES), np.nan, np.float32)
            landmarks = np.full((LANDMARK_COUNT, len(FIELDS)), np.nan, np.float32)
            world = np.full((LANDMARK_COUNT, 3), np.nan, np.float32)
        else:
            raw, landmarks, world = angles[followed], pose.landmarks[followed], pose.world[followed]
        smoothed = self._smoother(raw, time_s)
        self.buffer.push(time_s, raw, smoothed, landmarks, world)
        self._latest = LiveFrame(time_s, pose, angles)

        labels = angles.copy()
        if followed is not None:
            labels[followed] = smoothed
        shown_pose = mirrored(pose) if settings.mirror else pose
        if settings.privacy:
            scene = draw_skeleton_only(shown_pose, settings.threshold)
        else:  # drawn on a copy: the recording's video is made of the camera frame as it came
            picture = np.ascontiguousarray(rgb[:, ::-1]) if settings.mirror else rgb.copy()
            scene = SkeletonAnnotator(settings.threshold).annotate(picture, shown_pose)
        AngleLabelAnnotator(settings.angles).annotate(scene, shown_pose, labels)
        self._hud.annotate(scene, self._hud_lines(pose, engine), recorder.seconds if recorder is not None else None)
        return pose, scene

    def _hud_lines(self, pose: FramePose, engine: PoseEngine | None) -> list[str]:
        processed, fps, _, p50, _, _ = self._timings.figures(time.monotonic())
        model = engine.settings.complexity if engine is not None else "no model"
        lines = [f"{model}  {fps:4.1f} fps  {p50:4.1f} ms" if processed else f"{model}  starting"]
        lag = self._timings.lag_ms
        lines.append(f"lag {lag:3.0f} ms  dropped {self._timings.dropped}" if not math.isnan(lag)
                     else f"dropped {self._timings.dropped}")
        loading, error = self._engines.state()
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
        loading, error = self._engines.state()
        engine = self.engine
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
        """Start a new recording (a running one is finished and discarded). No video in privacy mode."""
        settings = self._settings
        recorder = Recorder(settings.pose, ClipOptions(privacy=settings.privacy), with_video=with_video)
        with self._recorder_lock:
            old, self._recorder = self._recorder, recorder
        if old is not None:
            old.finish()
        return recorder

    def stop_recording(self) -> Recording | None:
        """The recording so far, or None if none was running or it got no frame."""
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


def live_figure(window: LiveWindow, names: Sequence[str], seconds: float, max_points: int = LIVE_CHART_POINTS
                ) -> go.Figure:
    """The last `seconds` of smoothed angles, time counted back from the newest frame (0 s = now).

    At most `max_points` samples a line (every nth, always the newest): the browser redraws the chart a few
    times a second on the same machine as the pose model, and the smoothed curve needs no more.
    """
    columns = [ANGLE_NAMES.index(name) for name in names]
    rows = np.arange(len(window.times_s))[::-1][::max(1, math.ceil(len(window.times_s) / max_points))][::-1]
    now = window.times_s[-1] if len(window.times_s) else 0.0
    figure = time_series(window.times_s[rows] - now, window.smoothed[rows][:, columns], names, "Angle (°)",
                         height=300)
    # uirevision: legend clicks and zoom survive the refreshes
    return figure.update_layout(uirevision="live", xaxis={"title": "Seconds ago (0 = now)", "range": [-seconds, 0]})
