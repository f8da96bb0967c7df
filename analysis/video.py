"""Video analysis as a stream: decode → pose → (draw → encode), each stage on its own thread.

Pose estimation is the critical path; decoding runs ahead of it and drawing and encoding the
annotated preview run behind it, through small bounded queues, so memory stays flat however long
the video is and the annotated video is ready as soon as the last pose is. MediaPipe's inference runs on one
core, so without an annotated video a long video is analysed in two spans side by side (analyse_video).

Every stage can be stopped at any moment. No wait on another stage is unbounded: each one looks up
every POLL_S to see whether it should give up (the caller's stop event, an on_progress exception, a
failed stage), so a cancel returns within STOP_WAIT_S (1.5 s; a few hundred ms in practice) whichever
stage is the slow one, and leaves no thread of the pipeline running (they are named posescope-decode,
posescope-render, posescope-encode and posescope-span).
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
from pathlib import Path

import cv2
import numpy as np

from analysis.drawing import PrivacyAnnotator, SkeletonAnnotator
from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.people import PeopleFinder, same_people, video_engine
from analysis.result import ClipOptions, ClipResult, Source
from analysis.series import SeriesBuilder
from analysis.video_io import (
    ABORT_WAIT_S,
    POLL_S,
    PathLike,
    VideoError,
    VideoInfo,
    VideoWriter,
    cores_for_one_video,
    decoder_threads_beside_inference,
    keyframe_before,
    probe,
    read_frames,
)

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


def expected_frames(info: VideoInfo, options: ClipOptions) -> int:
    """How many frames analyse_video will analyse: the trimmed duration × fps ÷ stride, at least 1.

    Why one function: the progress bar's total and the page's "this will take a while" warning must
    agree. An estimate: a variable-frame-rate clip can hold more or fewer frames (progress then
    counts past it), and a video without a frame rate in its header gives 1.
    """
    end_s = min(options.end_s, info.duration_s) if options.end_s is not None else info.duration_s
    return max(1, round((end_s - options.start_s) * info.fps / options.stride))


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


class _Decoder:
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


class PreviewPainter:
    """The frames of a video made to go with an analysis, at one size: the first frame's, shrunk so that its
    longer side is at most max_side, in even pixels (a video whose picture size changes part-way is scaled to
    it), as the encoder needs.

    paint() draws the annotated preview's frame: the skeleton on the frame, or on the privacy background.
    Why one class: analyse_video's preview and the annotated video made later on demand
    (analysis.playback.render_annotated) must look the same.
    """

    def __init__(self, max_side: int, privacy: bool = False) -> None:
        self._max_side, self._privacy = max_side, privacy
        self._size: tuple[int, int] | None = None
        self._skeleton, self._blank = SkeletonAnnotator(), PrivacyAnnotator()

    def fit(self, rgb: np.ndarray) -> np.ndarray:
        """The (h, w, 3) uint8 frame at the video's size: rgb itself when it has that size already (and is
        writable and C-contiguous), else a new array."""
        size = self._size_for(rgb)
        if size != (rgb.shape[1], rgb.shape[0]):
            return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return rgb if rgb.flags.writeable and rgb.flags.c_contiguous else np.ascontiguousarray(rgb).copy()

    def paint(self, rgb: np.ndarray, pose: FramePose) -> np.ndarray:
        """The pose drawn at the video's size (on rgb itself where fit() gives it: the caller must not need
        it any more)."""
        if self._privacy:
            width, height = self._size_for(rgb)
            scene = self._blank.annotate(np.empty((height, width, 3), np.uint8))
        else:
            scene = self.fit(rgb)
        return self._skeleton.annotate(scene, pose)

    def _size_for(self, rgb: np.ndarray) -> tuple[int, int]:
        """(width, height): fixed by the first frame."""
        if self._size is None:
            height, width = rgb.shape[:2]
            scale = min(1.0, self._max_side / max(width, height))
            self._size = (max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2))
        return self._size


class _Renderer:
    """Draws each pose onto a preview-sized frame (PreviewPainter) and hands it to the encoder, on its own
    thread; at the end it finishes the video (VideoWriter.close), so the analysing thread only waits for
    this thread.
    """

    def __init__(self, writer: VideoWriter, max_side: int, privacy: bool, size: int = 8) -> None:
        self._writer, self._painter = writer, PreviewPainter(max_side, privacy)
        self._queue: queue.Queue[tuple[np.ndarray, FramePose, float] | None] = queue.Queue(size)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="posescope-render", daemon=True)
        self._thread.start()

    def put(self, rgb: np.ndarray, pose: FramePose, time_s: float, watch: Callable[[], None]) -> None:
        """Queue a frame to draw on (it is drawn on in place: the caller must not need it any more)."""
        self._offer((rgb, pose, time_s), watch)

    def close(self, watch: Callable[[], None]) -> None:
        """Draw what is queued and finish the video; calls watch() while it waits. Raises an error from
        drawing or encoding."""
        self._offer(None, watch)
        while self._thread.is_alive():
            self._thread.join(POLL_S)
            watch()
        if self._error is not None:
            raise self._error

    def signal(self) -> None:
        """Ask the drawing thread to stop (skipping what is queued); a write of its that waits on the encoder
        is released by the writer's abort()."""
        self._stop.set()

    def join(self, deadline: float) -> None:
        self._stop.set()
        self._thread.join(max(0.0, deadline - time.perf_counter()))

    def _offer(self, item: tuple[np.ndarray, FramePose, float] | None, watch: Callable[[], None]) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                if not self._thread.is_alive() and self._error is None:
                    raise RuntimeError("the drawing thread ended without a word")  # a bug: it always says why
                watch()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if item is None:
                    self._writer.close()
                    return
                self._writer.write(self._painter.paint(*item[:2]), item[2])
        except BaseException as error:  # raised again in the analysing thread by put() or close()
            self._error = error


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


def analyse_video(path: PathLike, settings: PoseSettings, options: ClipOptions = ClipOptions(),
                  annotated_path: Path | None = None,
                  on_progress: Callable[[Progress], None] | None = None, name: str = "video",
                  stop: threading.Event | None = None, *, engine: PoseEngine | PeopleFinder | None = None
                  ) -> ClipResult:
    """Poses for every kept frame of a video, and optionally the annotated preview video.

    name: the source's name as the user knows it (their file name), for the result's Source.

    Raises VideoError (its message one sentence for the user) for a file that is not a readable video or
    holds no frame in the chosen range, for an annotated video that cannot be written (a full disk says
    so), and PoseEstimationError (a VideoError) when MediaPipe fails on the first frame. Nothing already
    done is lost otherwise: the result's `warnings` (sentences) say what is partial:
    - the video breaks off part-way: the frames before the break are kept;
    - frames whose timestamp repeats or goes back before an earlier frame's are skipped (and counted);
    - MediaPipe fails on a frame part-way: the frames before it are kept, and the annotated video too.

    Stopping: on_progress is called every 5 frames and at least every PROGRESS_EVERY_S (also while waiting
    on decoding or on finishing the annotated video); an exception it raises (a user's cancel) stops the
    work and goes up as it is. `stop`, an event another thread sets, makes analyse_video raise Cancelled.
    Either way it returns within about STOP_WAIT_S whichever stage is the slow one, no thread of the
    pipeline is left running, and the partial annotated video is removed. A stop set after the work is
    done (while the result is put together) is too late: the result is returned.

    Speed: without an annotated video, a long video is cut at a keyframe into two spans (see _spans) analysed side
    by side, each by a landmarker of its own, the later one on a thread named posescope-span; the first span's
    landmarker then carries on into the second until both find the same people (_hand_over), so the result follows
    whom one pass would.

    engine: a fresh VIDEO-mode engine made for `settings` (a PoseEngine, or a PeopleFinder for several people:
    analysis.people.video_engine), to use instead of loading one (the caller keeps and closes it); by default it
    is made here and closed at the end. With an engine given, the video is analysed in one span, by it.
    """
    if engine is not None and (engine.mode is not Mode.VIDEO or engine.settings != settings):
        raise ValueError("engine must be a VIDEO-mode PoseEngine made for these settings")
    watch = Watch(stop, on_progress, 1)
    watch()
    info = probe(path)
    if options.start_s >= info.duration_s > 0:
        raise VideoError(f"The start time {options.start_s:g} s is past the end of this "
                         f"{info.duration_s:.1f} s video. Choose an earlier start.")
    expected = expected_frames(info, options)
    watch = Watch(stop, on_progress, expected)
    spans = _spans(path, info, options, expected) if engine is None and annotated_path is None \
        else [_Span(options.start_s, options.end_s)]
    threads = decoder_threads_beside_inference(len(spans))
    builder: SeriesBuilder | None = None
    halt = threading.Event()  # tells the other spans' threads to stop
    others = [threading.Thread(target=_analyse_elsewhere, args=(span, path, options, settings, threads, halt, watch),
                               name="posescope-span", daemon=True) for span in spans[1:]]
    writer = renderer = None

    def take(index: int, time_s: float, rgb: np.ndarray, pose: FramePose) -> None:
        nonlocal builder
        if builder is None:
            builder = SeriesBuilder(settings.max_people, rgb.shape[1], rgb.shape[0], settings.keep_id_s)
        builder.add(index, time_s, pose)
        if renderer:
            renderer.put(rgb, pose, time_s, watch)

    try:
        writer = VideoWriter(annotated_path, fps=info.fps / options.stride or 30.0) if annotated_path else None
        renderer = _Renderer(writer, options.preview_max_side, options.privacy) if writer else None
        for thread in others:
            thread.start()
        owned = video_engine(settings) if engine is None else contextlib.nullcontext(engine)
        with owned as engine:
            watch()  # loading the model takes up to a second
            first = spans[0]
            _analyse_span(first, path, options, threads, engine, watch, watch.frame_done, take)
            if first.decoder:
                first.decoder.join(time.perf_counter() + STOP_WAIT_S)
            if others and not (first.failure or first.broke) and builder is not None:
                _hand_over(first, spans[1], others[0], path, options, threads, engine, watch)
        if first.failure and builder is None:
            where, reason = first.failure
            raise PoseEstimationError(f"Pose estimation failed on the first frame analysed, {where}: MediaPipe "
                                      f"reported “{reason}”. Try another part of the video, or another model.")
        if first.broke and builder is None:  # only a video that breaks off part-way keeps what came before
            raise first.broke
        if first.failure or first.broke:
            halt.set()  # what the later spans find comes after the gap: not kept
        for thread in others:
            while thread.is_alive():
                thread.join(POLL_S)
                watch()
        kept = _kept(spans)
        for span in kept[1:]:
            if span.error is not None:
                raise span.error
            builder = _add_span(builder, span, settings)
        if builder is None:
            raise VideoError("No frames were found in the chosen part of the video. Check the start and end times.")
        if renderer:
            renderer.close(watch)
    except BaseException:
        halt.set()
        _halt(spans[0].decoder, others, renderer, writer)
        raise
    return ClipResult(builder.build(), Source(name, info), settings, options, time.perf_counter() - watch.started,
                      tuple(_span_warnings(kept)))


# A video is cut into spans analysed side by side because MediaPipe's inference runs on one core (1.01 cores, on a
# 1080x1920 phone clip at 540x960): on 2 cores, two landmarkers on threads of their own did 137 frames/s of its
# frames against 78 for one. Each span has at least MIN_SPAN_FRAMES (a new landmarker costs 0.1 s, and its first
# frames are found by the detector, not tracked); at most one per core and MAX_SPANS. With a stride, the frames kept
# would depend on where a span starts, so a strided analysis is one span.
MIN_SPAN_FRAMES = 100
MAX_SPANS = 2
# Frames in a row in which a span's landmarker, carried on past its end, and the next span's find the same people
# before the next span's poses are taken (_hand_over).
HAND_OVER_FRAMES = 3


@dataclass
class _Span:
    """A stretch [start_s, end_s) of the video, analysed on its own, and what came of it: its poses (when analysed
    on another thread), frames skipped for a repeated time, and why it stopped early if it did."""

    start_s: float
    end_s: float | None
    frames: list[tuple[int, float, FramePose]] = field(default_factory=list)
    size: tuple[int, int] | None = None  # (width, height) of its frames
    analysed: int = 0
    last_ms: int = -1  # the timestamp its landmarker was last given
    repeated: int = 0
    failure: tuple[str, str] | None = None  # MediaPipe failed: on which frame, and what it said
    broke: VideoError | None = None  # the video broke off in it
    error: BaseException | None = None  # anything else, raised again on the calling thread
    decoder: _Decoder | None = None


def _spans(path: PathLike, info: VideoInfo, options: ClipOptions, expected: int) -> list[_Span]:
    """The stretches to analyse side by side, cut at keyframes (so that no span decodes frames another analyses)."""
    count = min(MAX_SPANS, cores_for_one_video(), expected // MIN_SPAN_FRAMES)
    whole = [_Span(options.start_s, options.end_s)]
    if options.stride != 1 or count < 2 or not info.fps:
        return whole
    end_s = min(options.end_s, info.duration_s) if options.end_s is not None else info.duration_s
    shortest_s = MIN_SPAN_FRAMES / 2 / info.fps  # a keyframe far from the even cut still leaves a useful span
    cuts = [options.start_s]
    try:
        for k in range(1, count):
            cut = keyframe_before(path, options.start_s + (end_s - options.start_s) * k / count)
            if cut is not None and cut - cuts[-1] >= shortest_s and end_s - cut >= shortest_s:
                cuts.append(cut)
    except VideoError:
        return whole
    ends = [*cuts[1:], options.end_s]
    return [_Span(start, end) for start, end in zip(cuts, ends)]


def _analyse_span(span: _Span, path: PathLike, options: ClipOptions, threads: int, engine: PoseEngine | PeopleFinder,
                  watch: Callable[[], None], counted: Callable[[], None],
                  take: Callable[[int, float, np.ndarray, FramePose], None]) -> None:
    """Pose each frame of the span with engine and hand it to take(index, time_s, rgb, pose); counted() after each.
    MediaPipe failing on a frame, or the video breaking off, ends the span early and is noted on it."""
    span.decoder = decoder = _Decoder(read_frames(path, span.start_s, span.end_s, options.stride,
                                                  options.analysis_max_side, threads))
    last_s = -math.inf
    try:
        for index, time_s, rgb in decoder.frames(watch):
            watch()
            if time_s < last_s + SAME_TIME_S:  # a series' times must increase, and so must a video's
                span.repeated += 1
                continue
            span.last_ms = max(span.last_ms + 1, round(time_s * 1000))
            try:
                pose = engine.detect_frame(rgb, span.last_ms)
            except Exception as error:  # noqa: BLE001 - MediaPipe's, whatever its type: said in a sentence
                span.failure = f"frame {index} ({time_s:.2f} s)", _engine_failure(error)
                return
            last_s = time_s
            span.size = span.size or (rgb.shape[1], rgb.shape[0])
            take(index, time_s, rgb, pose)
            span.analysed += 1
            counted()
    except VideoError as error:
        if error is not decoder.error:
            raise
        span.broke = error


def _hand_over(done: _Span, following: _Span, thread: threading.Thread, path: PathLike, options: ClipOptions,
               threads: int, engine: PoseEngine | PeopleFinder, watch: Watch) -> None:
    """Carry on past the end of `done` with its landmarker, over the frames `following` analysed from a cold start,
    until the two have found the same people in HAND_OVER_FRAMES frames in a row; the frames before that are
    replaced by the carried-on ones. Why: a landmarker that starts afresh may pick up someone else (max_people=1
    with several people in view) or lose a person for a few frames, where a single pass would have followed them
    through; so the result is that of one pass, but for landmarks within SAME_TORSO of it after the hand-over."""
    decoder = _Decoder(read_frames(path, following.start_s, following.end_s, options.stride,
                                   options.analysis_max_side, threads))
    carried: list[tuple[int, float, FramePose]] = []
    agreeing = 0
    try:
        for index, time_s, rgb in decoder.frames(watch):
            while len(following.frames) <= len(carried) and thread.is_alive():
                thread.join(POLL_S)
                watch()
            if len(following.frames) <= len(carried) or following.frames[len(carried)][1] != time_s:
                break  # the other span stopped here, or skipped a frame this one did not: it stays as it is
            done.last_ms = max(done.last_ms + 1, round(time_s * 1000))
            try:
                pose = engine.detect_frame(rgb, done.last_ms)
            except Exception:  # noqa: BLE001 - the other span's poses for this frame stand
                break
            agreeing = agreeing + 1 if same_people(pose, following.frames[len(carried)][2]) else 0
            carried.append((index, time_s, pose))
            if agreeing == HAND_OVER_FRAMES:
                break
            watch()
    except VideoError as error:
        if error is not decoder.error:
            raise
        # The video broke off: the other span says so, and holds the poses up to the break.
    finally:
        decoder.join(time.perf_counter() + STOP_WAIT_S)
    following.frames[: len(carried)] = carried


def _analyse_elsewhere(span: _Span, path: PathLike, options: ClipOptions, settings: PoseSettings, threads: int,
                       halt: threading.Event, watch: Watch) -> None:
    """A later span, on a thread of its own with a landmarker of its own: its poses are kept on the span."""
    def check() -> None:
        if halt.is_set():
            raise Cancelled("The analysis was cancelled.")

    try:
        with video_engine(settings) as engine:
            _analyse_span(span, path, options, threads, engine, check, watch.count,
                          lambda index, time_s, _, pose: span.frames.append((index, time_s, pose)))
    except Cancelled:
        pass
    except BaseException as error:  # noqa: BLE001 - raised again on the calling thread
        span.error = error
    finally:
        if span.decoder:
            span.decoder.join(time.perf_counter() + STOP_WAIT_S)


def _kept(spans: list[_Span]) -> list[_Span]:
    """The spans whose frames make the result: up to the first that stopped early (what follows is after a gap)."""
    for count, span in enumerate(spans, start=1):
        if span.failure or span.broke or span.error:
            return spans[:count]
    return spans


def _add_span(builder: SeriesBuilder | None, span: _Span, settings: PoseSettings) -> SeriesBuilder | None:
    """A later span's poses added after the earlier ones'. Frame numbers after a seek are estimates (time × mean
    frame rate), so where one would not follow the earlier span's last, the span's are moved up to follow it."""
    if not span.frames:
        return builder
    if builder is None:
        builder = SeriesBuilder(settings.max_people, *span.size, settings.keep_id_s)
    shift = max(0, builder.last_index + 1 - span.frames[0][0]) if builder.last_index is not None else 0
    for index, time_s, pose in span.frames:
        builder.add(index + shift, time_s, pose)
    return builder


def _span_warnings(spans: list[_Span]) -> list[str]:
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


def _halt(decoder: _Decoder | None, others: list[threading.Thread], renderer: _Renderer | None,
          writer: VideoWriter | None) -> None:
    """Stop every stage at once, then wait (bounded) for each: they stop side by side, not one after another. The
    other spans' threads have been told already (their halt event) and stop their own decoders."""
    deadline = time.perf_counter() + STOP_WAIT_S
    for stage in (decoder, renderer):
        if stage is not None:
            stage.signal()
    if writer is not None:
        writer.abort()  # releases a drawing thread waiting on it; waits at most ABORT_WAIT_S < STOP_WAIT_S
    for stage in (renderer, decoder):
        if stage is not None:
            stage.join(deadline)
    for thread in others:
        if thread.ident is not None:  # started
            thread.join(max(0.0, deadline - time.perf_counter()))

