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
import itertools
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
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
    keyframes_before,
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

    Speed: without an annotated video, a long video is cut at keyframes into chunks that two landmarkers share as
    they go, each on a thread of its own (the other one named posescope-span; see _Chunks). Where one reaches a
    chunk the other has, it carries on over the other's first frames until both find the same people (_hand_over),
    so the result follows whom one pass would.

    engine: a fresh VIDEO-mode engine made for `settings` (a PoseEngine, or a PeopleFinder for several people:
    analysis.people.video_engine), to use instead of loading one (the caller keeps and closes it); by default it
    is made here and closed at the end. With an engine given, the video is analysed in one pass, by it.
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
    chunks = _chunks(path, info, options, expected) if engine is None and annotated_path is None else None
    if chunks is None:
        spans, builder = _in_one_pass(path, info, settings, options, annotated_path, watch, engine)
    else:
        spans, builder = _shared(chunks, path, settings, options, watch)
    return ClipResult(builder.build(), Source(name, info), settings, options, time.perf_counter() - watch.started,
                      tuple(_span_warnings(spans)))


def _in_one_pass(path: PathLike, info: VideoInfo, settings: PoseSettings, options: ClipOptions,
                 annotated_path: Path | None, watch: Watch, engine: PoseEngine | PeopleFinder | None
                 ) -> tuple[list[_Span], SeriesBuilder]:
    """The video analysed by one landmarker, frame after frame, with the annotated video drawn behind it if asked
    for: the span analysed and the poses."""
    whole = _Span(options.start_s)
    builder: SeriesBuilder | None = None
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
        owned = video_engine(settings) if engine is None else contextlib.nullcontext(engine)
        with owned as engine:
            watch()  # loading the model takes up to a second
            whole.decoder = _Decoder(read_frames(path, options.start_s, options.end_s, options.stride,
                                                 options.analysis_max_side, decoder_threads_beside_inference(1)))
            _analyse_span(whole, whole.decoder.frames(watch), engine, watch, watch.frame_done, take)
            whole.decoder.join(time.perf_counter() + STOP_WAIT_S)
        _raise_for_nothing_analysed(whole, builder)
        if renderer:
            renderer.close(watch)
    except BaseException:
        _halt(whole.decoder, renderer, writer)
        raise
    return [whole], builder


def _shared(chunks: _Chunks, path: PathLike, settings: PoseSettings, options: ClipOptions, watch: Watch
            ) -> tuple[list[_Span], SeriesBuilder]:
    """The video's chunks analysed by WORKERS landmarkers that share them, the first on this thread from the start:
    the spans kept, in order, and their poses."""
    threads = decoder_threads_beside_inference(WORKERS)
    halt = threading.Event()  # tells the other workers to stop

    def halted() -> None:
        if halt.is_set():
            raise Cancelled("The analysis was cancelled.")

    first = chunks.take(0)
    helpers = [threading.Thread(target=_work_elsewhere, args=(chunks, path, options, settings, threads, halted, watch),
                                name="posescope-span", daemon=True) for _ in range(WORKERS - 1)]
    try:
        for helper in helpers:
            helper.start()
        _work(chunks, first, path, options, settings, threads, watch, watch.frame_done)
        for helper in helpers:
            while helper.is_alive():
                helper.join(POLL_S)
                watch()
    except BaseException:
        halt.set()
        deadline = time.perf_counter() + STOP_WAIT_S
        for helper in helpers:
            if helper.ident is not None:  # started
                helper.join(max(0.0, deadline - time.perf_counter()))
        raise
    spans = _kept(chunks.spans())
    for span in spans:
        if span.error is not None:
            raise span.error
    builder = None
    for span in spans:
        builder = _add_span(builder, span, settings)
    _raise_for_nothing_analysed(spans[0], builder)
    return spans, builder


def _raise_for_nothing_analysed(first: _Span, builder: SeriesBuilder | None) -> None:
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


# A video is cut into chunks that landmarkers share because MediaPipe's inference runs on one core (1.01 cores, on a
# 1080x1920 phone clip at 540x960): on 2 cores, two landmarkers on threads of their own did 137 frames/s of its
# frames against 78 for one. Each chunk has at least MIN_CHUNK_FRAMES (a new landmarker costs 0.1 s, and its first
# frames are found by the detector, not tracked), and there are at most MAX_CHUNKS (each landmarker started afresh
# costs a hand-over); one worker per core, at most WORKERS. With a stride, the frames kept would depend on where a
# chunk starts, so a strided analysis is one pass.
MIN_CHUNK_FRAMES = 100
MAX_CHUNKS = 16
WORKERS = 2
# Frames in a row in which a span's landmarker, carried on past its end, and the next span's find the same people
# before the next span's poses are taken (_hand_over).
HAND_OVER_FRAMES = 3
# A worker looking for a chunk to start afresh on looks at most this many free chunks' first frames for one that
# shows no more people than asked for (each look: a frame decoded and a landmarker's run, about 0.1 s).
LOOKS = 2
# A hand-over that catches up with the span it hands over to looks for its next frame this often.
FOLLOW_POLL_S = 0.005


@dataclass(eq=False)  # each span is itself: _Chunks.spans() tells them apart by identity
class _Span:
    """A stretch of the video analysed by one landmarker from a cold start at start_s (in chunk `chunk`, and on
    through the chunks it carried on into, the last of which is `chunk` at the end), and what came of it: its poses,
    the poses of the landmarker before it carried over its first frames (_hand_over), frames skipped for a repeated
    time, and why it stopped early if it did."""

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
    decoder: _Decoder | None = None


class _Chunks:
    """The chunks a video is cut into, at keyframes, and which span has each. Workers share them as they go: each
    starts a landmarker afresh on a free chunk, in the middle of the free ones, and carries it on into the next
    chunks while they are free; on reaching one another span has, it hands over to that span (_hand_over) and starts
    afresh on another free chunk. Of the chunks near the middle it prefers one whose first frame shows no more people
    than asked for: there a landmarker started afresh picks up the people a carried-on one follows, so the hand-over
    is short. Where someone walks past, one started afresh may pick them up instead, and the hand-over lasts until
    they leave; that chunk is best left to a landmarker that carries on into it.

    Why not two fixed halves: a long hand-over then runs alone on one core at the end, while the other core idles.
    """

    def __init__(self, starts: list[float]) -> None:
        self.starts = starts
        self._spans: list[_Span | None] = [None] * len(starts)
        self._crowded: list[bool | None] = [None] * len(starts)
        self._last = len(starts) - 1  # no chunk after this one is analysed (the video broke off, or MediaPipe failed)
        self._lock = threading.Lock()

    def take(self, chunk: int) -> _Span | None:
        """A new span starting afresh at the chunk, if it is free."""
        with self._lock:
            if chunk > self._last or self._spans[chunk] is not None:
                return None
            span = self._spans[chunk] = _Span(self.starts[chunk], chunk)
            return span

    def take_free(self, crowded: Callable[[float], bool]) -> _Span | None:
        """A new span on a free chunk, None when none is free. The chunk is the middle one of the longest stretch of
        free chunks (the span before the stretch carries on into it from the left meanwhile, so each gets half), or
        of the LOOKS nearest it the first that is not crowded(its start)."""
        with self._lock:
            free = [chunk for chunk in range(self._last + 1) if self._spans[chunk] is None]
        if not free:
            return None
        stretches = np.split(np.array(free), np.flatnonzero(np.diff(free) > 1) + 1)
        longest = max(stretches, key=len).tolist()
        middle = longest[len(longest) // 2]
        nearest = sorted(longest, key=lambda chunk: (abs(chunk - middle), chunk))
        for chunk in nearest[:LOOKS]:
            if self._crowded[chunk] is None:
                self._crowded[chunk] = crowded(self.starts[chunk])
            if not self._crowded[chunk] and (span := self.take(chunk)):
                return span
        return next(filter(None, map(self.take, nearest)), None) or self.take_free(crowded)

    def next_start(self, span: _Span) -> float | None:
        """When the chunk after the span's last one starts; None after the last chunk."""
        return self.starts[span.chunk + 1] if span.chunk + 1 < len(self.starts) else None

    def carry_on(self, span: _Span) -> _Span | None:
        """The span's landmarker goes on into the next chunk: None if it may (the chunk is the span's now), else the
        span that has it (the span itself where the chunk is not analysed at all)."""
        with self._lock:
            chunk = span.chunk + 1
            if chunk > self._last:
                return span
            if self._spans[chunk] is None:
                self._spans[chunk], span.chunk = span, chunk
                return None
            return self._spans[chunk]

    def end_at(self, span: _Span) -> None:
        """The span stopped early: nothing after its last chunk is analysed any more."""
        with self._lock:
            self._last = min(self._last, span.chunk)

    def spans(self) -> list[_Span]:
        """Every span started, in the video's order."""
        return list(dict.fromkeys(span for span in self._spans if span is not None))


def _chunks(path: PathLike, info: VideoInfo, options: ClipOptions, expected: int) -> _Chunks | None:
    """The chunks the video's workers share, cut at keyframes (so that no chunk decodes frames another analyses); None
    where one pass analyses it (a stride, a single core, a short video)."""
    count = min(MAX_CHUNKS, expected // MIN_CHUNK_FRAMES)
    if options.stride != 1 or count < 2 or cores_for_one_video() < WORKERS or not info.fps:
        return None
    end_s = min(options.end_s, info.duration_s) if options.end_s is not None else info.duration_s
    shortest_s = MIN_CHUNK_FRAMES / 2 / info.fps  # a keyframe far from the even cut still leaves a useful chunk
    try:
        cuts = keyframes_before(path, [options.start_s + (end_s - options.start_s) * k / count
                                       for k in range(1, count)])
    except VideoError:
        return None
    starts = [options.start_s]
    for cut in cuts:
        if cut is not None and cut - starts[-1] >= shortest_s and end_s - cut >= shortest_s:
            starts.append(cut)
    return _Chunks(starts) if len(starts) > 1 else None


class _Crowd:
    """Whether the video's frame at a time shows more people than asked for: a landmarker in IMAGE mode asked for one
    more, made when first needed (close() releases it). A frame that cannot be read or analysed counts as not crowded:
    the span that starts there finds out for itself."""

    def __init__(self, path: PathLike, options: ClipOptions, settings: PoseSettings) -> None:
        self._path, self._max_side, self._settings = path, options.analysis_max_side, settings
        self._engine: PoseEngine | None = None

    def __call__(self, time_s: float) -> bool:
        try:
            with contextlib.closing(read_frames(self._path, time_s, None, 1, self._max_side, 1)) as frames:
                frame = next(frames, None)
            if frame is None:
                return False
            if self._engine is None:
                self._engine = PoseEngine(replace(self._settings, max_people=self._settings.max_people + 1))
            return self._engine.detect(frame[2]).people > self._settings.max_people
        except Exception:  # noqa: BLE001 - a look to choose where to start, not an analysis
            return False

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


def _work(chunks: _Chunks, span: _Span | None, path: PathLike, options: ClipOptions, settings: PoseSettings,
          threads: int, watch: Callable[[], None], counted: Callable[[], None], keep_errors: bool = False) -> None:
    """Analyse chunks until none is free: `span` first, then free ones (_Chunks), each span with a landmarker of its
    own carried on until it reaches a chunk another span has, then over that span's first frames (_hand_over).
    keep_errors: an exception other than Cancelled is kept on the span it happened in, to be raised on the calling
    thread, instead of going up."""
    crowd = _Crowd(path, options, settings)
    try:
        span = span or chunks.take_free(crowd)
        while span is not None:
            try:
                with video_engine(settings) as engine:
                    span.decoder = decoder = _Decoder(read_frames(path, span.start_s, options.end_s, 1,
                                                                  options.analysis_max_side, threads))
                    try:
                        frames = decoder.frames(watch)
                        following = _analyse_span(span, frames, engine, watch, counted, _keep_on(span), chunks)
                        span.ended.set()  # before its own hand-over: one into it need not wait for that
                        if span.failure or span.broke:
                            chunks.end_at(span)
                        elif following is not None:
                            _hand_over(span, following, frames, engine, watch)
                    finally:
                        span.ended.set()
                        decoder.join(time.perf_counter() + STOP_WAIT_S)
            except Cancelled:
                raise
            except BaseException as error:
                if not keep_errors:
                    raise
                span.error = error
                chunks.end_at(span)
                return
            span = chunks.take_free(crowd)
    finally:
        crowd.close()


def _keep_on(span: _Span) -> Callable[[int, float, np.ndarray, FramePose], None]:
    """What takes a shared span's poses: the span keeps them (the result is put together once all are done)."""
    return lambda index, time_s, _, pose: span.frames.append((index, time_s, pose))


def _work_elsewhere(chunks: _Chunks, path: PathLike, options: ClipOptions, settings: PoseSettings, threads: int,
                    halted: Callable[[], None], watch: Watch) -> None:
    """A worker on a thread of its own: its spans keep their poses, and what went wrong, for the calling thread."""
    with contextlib.suppress(Cancelled):
        _work(chunks, None, path, options, settings, threads, halted, watch.count, keep_errors=True)


def _analyse_span(span: _Span, frames: Iterator[tuple[int, float, np.ndarray]], engine: PoseEngine | PeopleFinder,
                  watch: Callable[[], None], counted: Callable[[], None],
                  take: Callable[[int, float, np.ndarray, FramePose], None], chunks: _Chunks | None = None
                  ) -> _Span | None:
    """Pose each frame with engine and hand it to take(index, time_s, rgb, pose); counted() after each. With chunks,
    the span ends at the first frame of a chunk it may not carry on into: where another span has that chunk, that
    span is returned (to hand over to), and the frame kept as span.crossing. MediaPipe failing on a frame, or the
    video breaking off, ends the span early and is noted on it."""
    last_s = -math.inf
    next_s = chunks.next_start(span) if chunks else None
    try:
        for index, time_s, rgb in frames:
            watch()
            while next_s is not None and time_s >= next_s:
                if (following := chunks.carry_on(span)) is not None:
                    span.crossing = index, time_s, rgb
                    return None if following is span else following
                next_s = chunks.next_start(span)
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


def _hand_over(done: _Span, following: _Span, frames: Iterator[tuple[int, float, np.ndarray]],
               engine: PoseEngine | PeopleFinder, watch: Callable[[], None]) -> None:
    """Carry on past the end of `done` with its landmarker, over the frames `following` analyses from a cold start
    (waiting for them where it is behind), until the two have found the same people in HAND_OVER_FRAMES frames in a
    row; those frames are kept as following.carried, to stand for its first ones. Why: a landmarker that starts
    afresh may pick up someone else (max_people=1 with several people in view) or lose a person for a few frames,
    where a single pass would have followed them through; so the result is that of one pass, but for landmarks
    within SAME_TORSO of it after the hand-over."""
    carried: list[tuple[int, float, FramePose]] = []
    agreeing = 0
    try:
        for index, time_s, rgb in itertools.chain([done.crossing], frames):
            at = len(carried)
            while len(following.frames) <= at and not following.ended.is_set():
                following.ended.wait(FOLLOW_POLL_S)
                watch()
            if len(following.frames) <= at or following.frames[at][1] != time_s:
                break  # the other span stopped here, or skipped a frame this one did not: it stays as it is
            done.last_ms = max(done.last_ms + 1, round(time_s * 1000))
            try:
                pose = engine.detect_frame(rgb, done.last_ms)
            except Exception:  # noqa: BLE001 - the other span's poses for this frame stand
                break
            agreeing = agreeing + 1 if same_people(pose, following.frames[at][2]) else 0
            carried.append((index, time_s, pose))
            if agreeing == HAND_OVER_FRAMES:
                break
            watch()
    except VideoError as error:
        if done.decoder is None or error is not done.decoder.error:
            raise
        # The video broke off: the other span says so, and holds the poses up to the break.
    following.carried = carried


def _kept(spans: list[_Span]) -> list[_Span]:
    """The spans whose frames make the result: up to the first that stopped early (what follows is after a gap)."""
    for count, span in enumerate(spans, start=1):
        if span.failure or span.broke or span.error:
            return spans[:count]
    return spans


def _add_span(builder: SeriesBuilder | None, span: _Span, settings: PoseSettings) -> SeriesBuilder | None:
    """A span's poses added after the earlier ones', the carried-over ones in place of its first. Frame numbers after
    a seek are estimates (time × mean frame rate), so where one would not follow the earlier span's last, the span's
    are moved up to follow it."""
    frames = span.carried + span.frames[len(span.carried):]
    if not frames:
        return builder
    if builder is None:
        builder = SeriesBuilder(settings.max_people, *span.size, settings.keep_id_s)
    shift = max(0, builder.last_index + 1 - frames[0][0]) if builder.last_index is not None else 0
    for index, time_s, pose in frames:
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


def _halt(decoder: _Decoder | None, renderer: _Renderer | None, writer: VideoWriter | None) -> None:
    """Stop every stage of one pass at once, then wait (bounded) for each: they stop side by side, not one after
    another."""
    deadline = time.perf_counter() + STOP_WAIT_S
    for stage in (decoder, renderer):
        if stage is not None:
            stage.signal()
    if writer is not None:
        writer.abort()  # releases a drawing thread waiting on it; waits at most ABORT_WAIT_S < STOP_WAIT_S
    for stage in (renderer, decoder):
        if stage is not None:
            stage.join(deadline)
