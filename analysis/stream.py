"""A video's frames as a stream: decoded on a thread of their own ahead of pose estimation, watched for a cancel,
and posed span by span. What analysis.video (one pass, with the annotated video) and analysis.sharing (a long video
shared by landmarkers side by side) both stand on, and the videos made for playback (analysis.playback) too.

No wait on another stage is unbounded: each one looks up every POLL_S to see whether it should give up (the
caller's stop event, an on_progress exception, a failed stage).
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from analysis.engine import FramePose, PoseEngine
from analysis.people import PeopleFinder
from analysis.series import SeriesBuilder
from analysis.video_io import ABORT_WAIT_S, POLL_S, VideoError

# on_progress is called at least this often while the analysis waits on another stage (or after a slow frame),
# so that a cancel raised from it is seen promptly whichever stage is the slow one.
PROGRESS_EVERY_S = 0.25
# After a cancel or a failure, how long the analysis waits for its threads to finish what they are on
# (more than the encoder's ABORT_WAIT_S, which is part of it).
STOP_WAIT_S = ABORT_WAIT_S + 0.5
# Frames closer in time than this to the one before count as repeating its time and are skipped, by the
# analysis and by every video made to go with it (the encoder's clock ticks every 11 µs; no camera takes
# frames 0.1 ms apart).
SAME_TIME_S = 1e-4


class Cancelled(Exception):
    """The caller's stop event was set: the analysis (or the making of a video, analysis.playback) stopped,
    returned nothing and removed the partial video."""


class PoseEstimationError(VideoError):
    """MediaPipe failed before any frame was analysed; the message is one sentence for the user."""


@dataclass(frozen=True)
class Progress:
    frames_done: int
    frames_expected: int
    elapsed_s: float

    @property
    def fps(self) -> float:
        return self.frames_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def remaining_s(self) -> float:
        return max(0, self.frames_expected - self.frames_done) / self.fps if self.fps else float("nan")

    @property
    def fraction(self) -> float:
        return min(1.0, self.frames_done / self.frames_expected) if self.frames_expected else 0.0


class Watch:
    """What a long job over a video's frames does while it waits on another stage, and between frames: raises
    Cancelled once the caller's stop event is set, and calls on_progress every 5 frames and at least every
    PROGRESS_EVERY_S (an exception it raises is the caller's cancel, and goes up as it is).

    Why shared: the analysis and the videos made for playback (analysis.playback) stop and report alike.
    """

    def __init__(self, stop: threading.Event | None, on_progress: Callable[[Progress], None] | None,
                 expected: int, task: str = "analysis") -> None:
        self._stop, self._on_progress, self._expected, self._task = stop, on_progress, expected, task
        self.started = time.perf_counter()
        self.done = 0
        self._reported = self.started
        self._counting = threading.Lock()

    def __call__(self) -> None:
        if self._stop is not None and self._stop.is_set():
            raise Cancelled(f"The {self._task} was cancelled.")
        if self._on_progress is not None and time.perf_counter() - self._reported >= PROGRESS_EVERY_S:
            self.report()

    def frame_done(self) -> None:
        self.count()
        if self.done % 5 == 0 or self.done == self._expected:
            self.report()
        else:
            self()

    def count(self) -> None:
        """One more frame done, by a thread that does not report (another span of the video): from any thread."""
        with self._counting:
            self.done += 1

    def report(self) -> None:
        if self._on_progress is not None:
            self._reported = now = time.perf_counter()
            self._on_progress(Progress(self.done, max(self._expected, self.done), now - self.started))


_END = object()
# The decoding thread gives way to pose inference when the cores are busy (in the app, with its own threads and
# the browser's): it needs a third of a core for a 1080p phone clip and works up to 8 frames ahead, so it can.
DECODER_NICENESS = 5


class Decoder:
    """Decodes on a thread of its own, up to `size` frames ahead of the analysing thread."""

    def __init__(self, frames: Iterator[tuple[int, float, np.ndarray]], size: int = 8) -> None:
        self._frames = frames
        self._ready: queue.Queue[object] = queue.Queue(size)
        self._stop = threading.Event()
        self.error: BaseException | None = None  # what decoding raised, once frames() has raised it
        self._thread = threading.Thread(target=self._run, name="posescope-decode", daemon=True)
        self._thread.start()

    def frames(self, watch: Callable[[], None]) -> Iterator[tuple[int, float, np.ndarray]]:
        """The decoded frames; calls watch() every POLL_S while it waits for one. Raises what decoding raised."""
        while True:
            try:
                item = self._ready.get(timeout=POLL_S)
            except queue.Empty:
                watch()
                if not self._thread.is_alive() and self._ready.empty():
                    raise RuntimeError("the decoding thread ended without a word")  # a bug: it always says why
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                self.error = item
                raise item
            yield item  # type: ignore[misc]

    def signal(self) -> None:
        """Ask the decoding thread to stop (it finishes at most the frame it is decoding)."""
        self._stop.set()

    def join(self, deadline: float) -> None:
        self._stop.set()
        self._thread.join(max(0.0, deadline - time.perf_counter()))

    def _offer(self, item: object) -> bool:
        """Queue item, waiting while the queue is full; False (not queued) once asked to stop."""
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux: a thread's own nice value
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODER_NICENESS)
        try:
            for item in self._frames:
                if not self._offer(item):
                    return
            self._offer(_END)
        except BaseException as error:  # handed to the analysing thread, which raises it in its own thread
            self._offer(error)
        finally:
            self._frames.close()  # type: ignore[attr-defined]  # the generator: closes the file, here


def _repeated_warning(count: int) -> str:
    frames = "1 frame" if count == 1 else f"{count:,} frames"
    return (f"{frames} repeated an earlier time and {'was' if count == 1 else 'were'} skipped "
            "(the video's timestamps are faulty there).")


def _engine_failure(error: Exception) -> str:
    """MediaPipe's message, on one line and not too long for a sentence."""
    text = " ".join((str(error) or type(error).__name__).split()).rstrip(".")
    return text if len(text) <= 200 else text[:199] + "…"


def _frames_before(count: int) -> str:
    return "frame before it" if count == 1 else f"{count:,} frames before it"


@dataclass(eq=False)  # each span is itself: analysis.sharing tells them apart by identity
class Span:
    """A stretch of the video analysed by one landmarker from a cold start at start_s, and what came of it: frames
    skipped for a repeated time, and why it stopped early if it did. Where landmarkers share the video
    (analysis.sharing), also where it is (the last chunk it has), its poses, and those the landmarker before it
    carried over its first frames."""

    start_s: float
    chunk: int = 0
    frames: list[tuple[int, float, FramePose]] = field(default_factory=list)
    carried: list[tuple[int, float, FramePose]] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)  # no more frames will be added
    crossing: tuple[int, float, np.ndarray] | None = None  # its first frame not analysed: the next span's first
    size: tuple[int, int] | None = None  # (width, height) of its frames
    analysed: int = 0
    last_ms: int = -1  # the timestamp its landmarker was last given
    repeated: int = 0
    failure: tuple[str, str] | None = None  # MediaPipe failed: on which frame, and what it said
    broke: VideoError | None = None  # the video broke off in it
    error: BaseException | None = None  # anything else, raised again on the calling thread
    decoder: Decoder | None = None


def analyse_span(span: Span, frames: Iterator[tuple[int, float, np.ndarray]], engine: PoseEngine | PeopleFinder,
                 watch: Callable[[], None], counted: Callable[[], None],
                 take: Callable[[int, float, np.ndarray, FramePose], None],
                 boundary: Callable[[Span, float], Span | None] | None = None) -> Span | None:
    """Pose each frame with engine and hand it to take(index, time_s, rgb, pose); counted() after each. Where spans
    share the video (analysis.sharing), boundary(span, time_s) says at each frame whether the span may go on to it:
    None if it may, else the span that has that frame; then the span ends there, the frame is kept as span.crossing
    and that other span is returned (to hand over to; None where it is the span itself: no one analyses the frame).
    MediaPipe failing on a frame, or the video breaking off, ends the span early and is noted on it."""
    last_s = -math.inf
    try:
        for index, time_s, rgb in frames:
            watch()
            if boundary is not None and (following := boundary(span, time_s)) is not None:
                span.crossing = index, time_s, rgb
                return None if following is span else following
            if time_s < last_s + SAME_TIME_S:  # a series' times must increase, and so must a video's
                span.repeated += 1
                continue
            span.last_ms = max(span.last_ms + 1, round(time_s * 1000))
            try:
                pose = engine.detect_frame(rgb, span.last_ms)
            except Exception as error:  # noqa: BLE001 - MediaPipe's, whatever its type: said in a sentence
                span.failure = f"frame {index} ({time_s:.2f} s)", _engine_failure(error)
                return None
            last_s = time_s
            span.size = span.size or (rgb.shape[1], rgb.shape[0])
            take(index, time_s, rgb, pose)
            span.analysed += 1
            counted()
    except VideoError as error:
        if span.decoder is None or error is not span.decoder.error:
            raise
        span.broke = error
    return None


def raise_for_nothing_analysed(first: Span, builder: SeriesBuilder | None) -> None:
    """Why no frame has poses, as a VideoError, where none has: MediaPipe failed on the first frame, the video broke
    off before it, or the chosen part of the video holds no frame."""
    if builder is not None:
        return
    if first.failure:
        where, reason = first.failure
        raise PoseEstimationError(f"Pose estimation failed on the first frame analysed, {where}: MediaPipe "
                                  f"reported “{reason}”. Try another part of the video, or another model.")
    if first.broke:  # only a video that breaks off part-way keeps what came before
        raise first.broke
    raise VideoError("No frames were found in the chosen part of the video. Check the start and end times.")


def span_warnings(spans: list[Span]) -> list[str]:
    """What the result's warnings say of the spans kept: frames skipped, and where the analysis stopped early."""
    warnings = []
    repeated = sum(span.repeated for span in spans)
    if repeated:
        warnings.append(_repeated_warning(repeated))
    last = spans[-1]
    if last.failure:
        where, reason = last.failure
        warnings.append(f"The analysis stopped at {where}: MediaPipe failed on it (“{reason}”). The results below "
                        f"cover the {_frames_before(sum(span.analysed for span in spans))}.")
    elif last.broke:
        warnings.append(f"{last.broke} The results below cover the part before the break.")
    return warnings
