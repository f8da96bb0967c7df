"""Live pose on camera frames: what the Webcam page runs on each frame, without any Streamlit in it.

A LiveProcessor takes the newest camera frame, finds the pose, draws the skeleton, the chosen joint
angles and a small HUD (analysis.drawing), smooths the angles of the person the chart follows causally
(One-Euro) into a bounded ring buffer for the live chart, and, while recording, feeds a Recorder
(analysis.recording). Who the chart follows is PersonTracker's business (analysis.tracking), the rule a
video's series uses: the person in the lowest slot in view. That person is also the one a PersonWatch
follows: the exercise's live count and cues (analysis.reps.LiveCoach), the match to a pose template
(analysis.templates) and, in monitoring mode, falls (analysis.events.FallMonitor).

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
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import av
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.angles import ANGLE_NAMES, ANGLES, DEFAULT_VISIBILITY_THRESHOLD, compute_angles
from analysis.drawing import (
    SEVERITY_COLOURS,
    AngleLabelAnnotator,
    BannerAnnotator,
    Colour,
    HudAnnotator,
    SkeletonAnnotator,
    draw_skeleton_only,
)
from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.events import Event, FallMonitor
from analysis.exercises import Catalogue, Exercise, current_catalogue
from analysis.figures import time_series
from analysis.filters import OneEuroFilter
from analysis.landmarks import FIELDS, INDEX, LANDMARK_COUNT, X
from analysis.live_timing import FrameTimings, LiveStats, StreamClock
from analysis.models import ModelError
from analysis.recording import Recorder, Recording
from analysis.reps import MIN_VISIBLE_SHARE, Cue, LiveCoach, LiveExercise, Rep
from analysis.result import ClipOptions
from analysis.tables import landmark_table
from analysis.templates import OffJointAnnotator, PoseTemplate, furthest_joints, score
from analysis.tracking import PersonTracker

LOGGER = logging.getLogger(__name__)
DEFAULT_LIVE_ANGLES: tuple[str, ...] = ("left elbow", "right elbow", "left knee", "right knee")
BUFFER_FRAMES = 2048  # the ring: about 68 s at 30 frames/s, 34 s at 60
LIVE_CHART_POINTS = 150  # samples a line in the live chart: 10 a second over 15 s
LIVE_TABLE_REPS = 30  # the live rep table's newest rows (a recording keeps every rep)
JOINT_FRAMES = 60  # whether an exercise's joints are in view is judged over the last 2 s at 30 frames/s
MAX_FALL_ALERTS = 20
_SEGMENT_COLUMNS = np.array([a.kind == "segment" for a in ANGLES])  # these wrap at ±180°


@dataclass(frozen=True)
class LiveSettings:
    """What the user chose for the live view. Changing any of it takes effect on the next frame.

    angles: names from ANGLES, labelled on the picture and charted. mirror: show the picture as a
    mirror (the data stays in camera coordinates, as recorded video would be). privacy: the skeleton
    on a blank background. min_cutoff (Hz) and beta (per deg/s): the One-Euro filter for the chart.
    exercise: the name of an exercise (analysis.exercises) to count for the person followed, or None.
    template: a pose to score them against; template_mirror: its mirror image counts too.
    monitoring: elderly care: falls raise an alert, and privacy is on whatever `privacy` says (nothing but
    the skeleton is shown or recorded).
    """

    pose: PoseSettings = field(default_factory=lambda: PoseSettings(complexity="lite"))
    angles: tuple[str, ...] = DEFAULT_LIVE_ANGLES
    mirror: bool = True
    privacy: bool = False
    threshold: float = DEFAULT_VISIBILITY_THRESHOLD
    min_cutoff: float = 1.5
    beta: float = 0.02
    exercise: str | None = None
    template: PoseTemplate | None = field(default=None, compare=False)  # arrays: no == of their own
    template_mirror: bool = False
    monitoring: bool = False

    def __post_init__(self) -> None:
        unknown = [name for name in self.angles if name not in ANGLE_NAMES]
        if unknown:
            raise ValueError(f"unknown angles {unknown}; choose from analysis.angles.ANGLE_NAMES")
        if self.monitoring:
            object.__setattr__(self, "privacy", True)


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


@dataclass(frozen=True)
class LiveInsight:
    """The followed person's exercise and template match as of the newest frame, for the page and the HUD.

    time_s: that frame's session time. exercise, state: the exercise followed and its count, stage, cue and reps
    (None without one). last_cue: the latest cue, still there after the HUD has dropped it. warnings: sentences
    on what makes the count unreliable now (the camera view, joints out of sight). template: the name of the
    template scored against; match: 0–100, NaN when there is none or too few joints are seen; mirrored: its
    mirror image matched; off: the joints furthest from it, furthest first.
    """

    time_s: float = math.nan
    exercise: Exercise | None = None
    state: LiveExercise | None = None
    last_cue: Cue | None = None
    warnings: tuple[str, ...] = ()
    template: str | None = None
    match: float = math.nan
    mirrored: bool = False
    off: tuple[str, ...] = ()

    @property
    def cue_age_s(self) -> float:
        return self.time_s - self.last_cue.time_s if self.last_cue is not None else math.nan

    def hud_lines(self) -> list[str | tuple[str, Colour]]:
        """The HUD's lines for it: the count and stage (or the hold), the cue on show, the template match."""
        lines: list[str | tuple[str, Colour]] = []
        state = self.state
        if self.exercise is not None and state is not None:
            if self.exercise.kind == "reps":
                lines.append(f"{self.exercise.title}  {state.count} reps  {state.stage}".rstrip())
            elif state.held_s > 0:
                lines.append(f"{self.exercise.title}  held {state.held_s:.0f} s, {state.good_s:.0f} s good")
            else:
                lines.append(f"{self.exercise.title}  get into position")
            if state.cue is not None:
                lines.append((state.cue.text, SEVERITY_COLOURS[state.cue.severity]))
        if self.template is not None:
            lines.append(f"hold it: {self.match:.0f} %" if math.isfinite(self.match) else "hold it: --")
        return lines


@dataclass(frozen=True)
class FallAlert:
    """A fall the monitor confirmed, kept until dismissed: the event (in session seconds) and the clock time."""

    event: Event
    at: datetime


class PersonWatch:
    """The exercise coach, the template score and the fall monitor of the person the chart follows.

    `configure` (script threads) swaps in a new coach when the exercise changes and a monitor when monitoring
    starts; `update` (the streaming thread) feeds them a frame and keeps its LiveInsight for the page, so the
    page never reads a coach half-way through a frame. A new exercise or template shows in the insight at once,
    before any frame. Fall alerts stay until `dismiss_falls`, even once the stream or the monitoring has
    stopped: the carer may have been away.
    """

    def __init__(self) -> None:
        self._settings = LiveSettings()
        self._catalogue: Catalogue | None = None
        self._coach: LiveCoach | None = None
        self._joints: list[np.ndarray] = []  # the exercise's joints on each side
        self._joints_seen: deque[bool] = deque(maxlen=JOINT_FRAMES)
        self._last_cue: Cue | None = None
        self._monitor: FallMonitor | None = None
        self._insight = LiveInsight()
        self._alerts: tuple[FallAlert, ...] = ()
        self._alerts_lock = threading.Lock()

    def configure(self, settings: LiveSettings) -> None:
        """Follow these settings from the next frame. ExerciseError for an exercise the catalogue does not know."""
        catalogue = current_catalogue() if settings.exercise else None
        exercise = catalogue.get(settings.exercise) if catalogue is not None else None
        if exercise is None and self._coach is not None:
            self._coach = None
            self._insight = replace(self._insight, exercise=None, state=None, last_cue=None, warnings=())
        elif exercise is not None and (self._coach is None or self._coach.exercise != exercise):
            self._start(exercise, catalogue)
        if settings.template is not self._settings.template:
            name = settings.template.name if settings.template is not None else None
            self._insight = replace(self._insight, template=name, match=math.nan, mirrored=False, off=())
        if not settings.monitoring:
            self._monitor = None
        elif self._monitor is None:
            self._monitor = FallMonitor()
        self._settings = settings

    def restart(self) -> None:
        """A new set: the exercise's count starts again from 0."""
        coach = self._coach
        if coach is not None:
            self._start(coach.exercise, self._catalogue)

    def _start(self, exercise: Exercise, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._joints = [np.array([INDEX[joint.replace("{side}", side)] for joint in exercise.joints], np.int64)
                        for side in ("left", "right")]
        self._joints_seen = deque(maxlen=JOINT_FRAMES)
        self._last_cue = None
        self._coach = coach = LiveCoach(exercise, catalogue)
        self._insight = replace(self._insight, exercise=exercise, state=coach.state(), last_cue=None, warnings=())

    def update(self, time_s: float, angles: np.ndarray, pixels: np.ndarray, visibility: np.ndarray) -> LiveInsight:
        """One frame of the followed person: smoothed angles (len(ANGLES),), pixels (33, 2) and visibility (33,);
        NaN angles and pixels, visibility 0, when nobody is followed. Times must increase."""
        settings, coach, monitor = self._settings, self._coach, self._monitor
        seen = np.where((visibility >= settings.threshold)[:, None], pixels, np.nan)
        state, warnings = None, ()
        if coach is not None:
            coach.update(time_s, angles, seen)
            state = coach.state()
            self._last_cue = state.cue or self._last_cue
            warnings = self._limits(coach.exercise, coach, seen)
        if monitor is not None and (fall := monitor.update(time_s, seen)) is not None:
            with self._alerts_lock:
                self._alerts = (*self._alerts, FallAlert(fall, datetime.now().astimezone()))[-MAX_FALL_ALERTS:]
        template, match, mirrored, off = settings.template, math.nan, False, ()
        if template is not None:
            similarity = score(template, pixels, visibility, settings.template_mirror, settings.threshold)
            match = float(similarity.score)
            if math.isfinite(match):
                mirrored, off = bool(similarity.mirrored), tuple(furthest_joints(similarity.joint_error))
        self._insight = LiveInsight(time_s, coach.exercise if coach else None, state, self._last_cue, warnings,
                                    template.name if template else None, match, mirrored, off)
        return self._insight

    def _limits(self, exercise: Exercise, coach: LiveCoach, seen: np.ndarray) -> tuple[str, ...]:
        """Why the count may be wrong now: the camera sees the person from the wrong side, or the joints the
        exercise needs were out of sight in most of the recent frames the person was in."""
        if np.isfinite(seen).any():
            self._joints_seen.append(any(bool(np.isfinite(seen[side]).all()) for side in self._joints))
        notes = []
        view = (coach.counter or coach.timer).view
        if exercise.view != "any" and view and view != exercise.view:
            seen_as = {"front": "from the front", "side": "from the side"}.get(view, "at an angle")
            turn = "turn side-on to the camera" if exercise.view == "side" else "face the camera"
            notes.append(f"{exercise.title} is counted from the {exercise.view}, but the camera sees you {seen_as}: "
                         f"{turn}, or the count and depth may be wrong.")
        recent = self._joints_seen
        if len(recent) >= JOINT_FRAMES // 2 and sum(recent) < MIN_VISIBLE_SHARE * len(recent):
            names = sorted({joint.replace("{side}_", "").replace("_", " ") for joint in exercise.joints})
            notes.append(f"The {', '.join(names)} that {exercise.title.lower()} needs are mostly out of view: step "
                         "back so that your whole body is in the picture.")
        return tuple(notes)

    @property
    def insight(self) -> LiveInsight:
        return self._insight

    def fall_alerts(self) -> tuple[FallAlert, ...]:
        return self._alerts

    def dismiss_falls(self) -> None:
        with self._alerts_lock:
            self._alerts = ()


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
        self._tracker = PersonTracker(self._settings.pose.max_people, self._settings.pose.keep_id_s)
        self._engines = _Engines()
        weakref.finalize(self, self._engines.close)
        self._watch = PersonWatch()
        self._watch.configure(self._settings)
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
        the background meanwhile; between streams nothing loads until frames come. A new exercise starts its
        count from 0. ExerciseError (and nothing changes) for an exercise the catalogue does not know."""
        self._watch.configure(settings)
        old, self._settings = self._settings, settings
        if (old.min_cutoff, old.beta) != (settings.min_cutoff, settings.beta):
            self._smoother = AngleSmoother(settings.min_cutoff, settings.beta)
        if old.pose.max_people != settings.pose.max_people:
            self._tracker = PersonTracker(settings.pose.max_people, settings.pose.keep_id_s)
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
        settings, recorder = self._settings, self._recorder
        try:
            rgb = newest.to_ndarray(format="rgb24")
            with self._engines.frame_lock:
                pose, shown = self._process(rgb, time_s, settings, recorder)
            out = av.VideoFrame.from_ndarray(shown, format="rgb24")
        except Exception as error:  # one bad frame must not end the stream: pass it through, say so on the page
            LOGGER.exception("A camera frame could not be processed")
            self._failure = f"A camera frame could not be processed ({type(error).__name__}: {error})."
            return newest
        self._failure = None
        processing_s = time.perf_counter() - started
        self._timings.done(processing_s, time.monotonic())
        if recorder is not None:
            if settings.privacy:
                recorder.keep_private()  # privacy (or monitoring) came on while recording
            recorder.add(time_s, pose, frame_number=self._timings.received, processing_s=processing_s, rgb=rgb)
        return out

    def _process(self, rgb: np.ndarray, time_s: float, settings: LiveSettings, recorder: Recorder | None
                 ) -> tuple[FramePose, np.ndarray]:
        """(the pose found, the picture to show) for one RGB frame; `rgb` itself is left as it came."""
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
            pixels, visibility = np.full((LANDMARK_COUNT, 2), np.nan, np.float32), np.zeros(LANDMARK_COUNT, np.float32)
        else:
            raw, landmarks, world = angles[followed], pose.landmarks[followed], pose.world[followed]
            pixels, visibility = pose.pixels[followed], pose.visibility[followed]
        smoothed = self._smoother(raw, time_s)
        self.buffer.push(time_s, raw, smoothed, landmarks, world)
        self._latest = LiveFrame(time_s, pose, angles)
        insight = self._watch.update(time_s, smoothed, pixels, visibility)

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
        if insight.off:
            OffJointAnnotator().annotate(scene, shown_pose, followed, insight.off)
        self._hud.annotate(scene, [*self._hud_lines(pose, engine), *insight.hud_lines()],
                           recorder.seconds if recorder is not None else None)
        if self._watch.fall_alerts():
            BannerAnnotator().annotate(scene, "FALL")
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

    def insight(self) -> LiveInsight:
        """The followed person's exercise and template match, as of the newest frame."""
        return self._watch.insight

    def fall_alerts(self) -> tuple[FallAlert, ...]:
        """Falls confirmed and not yet dismissed, oldest first."""
        return self._watch.fall_alerts()

    def dismiss_falls(self) -> None:
        self._watch.dismiss_falls()

    def restart_exercise(self) -> None:
        """A new set: the count starts again from 0."""
        self._watch.restart()

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
        """Start a new recording (a running one is finished and discarded). No video in privacy mode, nor once
        privacy comes on: then the video recorded so far is deleted too."""
        settings = self._settings
        recorder = Recorder(settings.pose, ClipOptions(privacy=settings.privacy), with_video=with_video)
        with self._recorder_lock:
            old, self._recorder = self._recorder, recorder
        if old is not None:
            old.finish()
        return recorder

    def stop_recording(self) -> Recording | None:
        """The recording so far, or None if none was running or it got no frame. Its reps are counted for the
        exercise chosen now, at its end."""
        with self._recorder_lock:
            recorder, self._recorder = self._recorder, None
        return recorder.finish(self._settings.exercise) if recorder is not None else None


def mirrored(pose: FramePose) -> FramePose:
    """The pose as it appears in a mirrored picture: x flipped in the image and in the world."""
    landmarks = pose.landmarks.copy()
    landmarks[..., X] = 1.0 - landmarks[..., X]
    world = pose.world.copy()
    world[..., 0] = -world[..., 0]
    return replace(pose, landmarks=landmarks, world=world)


def rep_table(reps: Sequence[Rep], newest: int = LIVE_TABLE_REPS) -> pd.DataFrame:
    """The live rep table, newest rep first: rep, duration (s), depth (the working extreme, ✓ when it reached the
    exercise's target), ROM (°), tempo (eccentric / concentric seconds) and the cues."""
    def depth(rep: Rep) -> str:
        mark = {True: " ✓", False: " ✗", None: ""}[rep.depth_ok]
        return f"{rep.extreme_deg:.0f}°{mark}"

    shown = list(reps)[::-1][:newest]
    return pd.DataFrame({
        "rep": [r.number for r in shown],
        "duration (s)": [round(r.duration_s, 2) for r in shown],
        "depth": [depth(r) for r in shown],
        "ROM (°)": [round(r.rom_deg) for r in shown],
        "tempo (s)": [f"{r.eccentric_s:.1f} / {r.concentric_s:.1f}" for r in shown],
        "cues": ["; ".join(c.text for c in r.cues) for r in shown],
    })


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
