"""A long video analysed by landmarkers side by side, one per core, sharing its chunks as they go (analyse_shared).

MediaPipe's inference runs on one core, so without an annotated video analysis.video hands a long video to this
module. The result follows whom one pass would follow: where a landmarker reaches a chunk another has started
afresh, it carries on over that chunk's first frames until both find the same people (_hand_over). The workers
other than the calling thread's are threads named posescope-span.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from analysis.engine import FramePose, PoseEngine, PoseSettings
from analysis.people import PeopleFinder, people_in_view, same_people, video_engine
from analysis.result import ClipOptions
from analysis.series import SeriesBuilder
from analysis.stream import (
    POLL_S,
    STOP_WAIT_S,
    Cancelled,
    Decoder,
    Span,
    Watch,
    analyse_span,
    raise_for_nothing_analysed,
)
from analysis.video_io import (
    PathLike,
    VideoError,
    VideoInfo,
    cores_for_one_video,
    decoder_threads_beside_inference,
    keyframes_before,
    read_frames,
)

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
# shows no more people than asked for (each look: a frame decoded and a landmarker's run per person found, about
# 0.2 s with two).
LOOKS = 4
# A hand-over that catches up with the span it hands over to looks for its next frame this often.
FOLLOW_POLL_S = 0.005


class Chunks:
    """The chunks a video is cut into, at keyframes, and which span has each. Workers share them as they go: each
    starts a landmarker afresh on a free chunk, in the middle of the free ones, and carries it on into the next
    chunks while they are free; on reaching one another span has, it hands over to that span (_hand_over) and starts
    afresh on another free chunk. Of the chunks near the middle it starts only on one whose first frame shows no more
    people than asked for: there a landmarker started afresh picks up the people a carried-on one follows, so the
    hand-over is short. Where someone walks past, one started afresh may pick them up instead, and the hand-over
    lasts until they leave; that chunk is left to a landmarker that carries on into it.

    Why not two fixed halves: the second landmarker can then start only at the middle, even where someone walks
    past there, and a worker whose part is done waits for the other instead of taking over chunks still free.
    """

    def __init__(self, starts: list[float]) -> None:
        self.starts = starts
        self._spans: list[Span | None] = [None] * len(starts)
        self._crowded: list[bool | None] = [None] * len(starts)
        self._last = len(starts) - 1  # no chunk after this one is analysed (the video broke off, or MediaPipe failed)
        self._lock = threading.Lock()

    def take(self, chunk: int) -> Span | None:
        """A new span starting afresh at the chunk, if it is free."""
        with self._lock:
            if chunk > self._last or self._spans[chunk] is not None:
                return None
            span = self._spans[chunk] = Span(self.starts[chunk], chunk)
            return span

    def take_free(self, crowded: Callable[[float], bool]) -> Span | None:
        """A new span on a free chunk: of the LOOKS chunks nearest the middle of the longest stretch of free chunks
        (the span before the stretch carries on into it from the left meanwhile, so each gets half), the first that
        is not crowded(its start). None when none is: the free chunks are left to the spans that carry on into
        them, as one pass would (a landmarker started afresh where someone else is in view may follow them
        instead, and its frames are then done again in the hand-over)."""
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
        return None

    def next_start(self, span: Span) -> float | None:
        """When the chunk after the span's last one starts; None after the last chunk."""
        return self.starts[span.chunk + 1] if span.chunk + 1 < len(self.starts) else None

    def carry_on(self, span: Span) -> Span | None:
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

    def boundary(self, span: Span, time_s: float) -> Span | None:
        """Whether the span may go on to a frame at time_s (analysis.stream.analyse_span), carrying on into the chunks
        it reaches while they are free: None if it may, else the span that has the frame's chunk (the span itself
        where that chunk is not analysed)."""
        while (next_s := self.next_start(span)) is not None and time_s >= next_s:
            if (following := self.carry_on(span)) is not None:
                return following
        return None

    def end_at(self, span: Span) -> None:
        """The span stopped early: nothing after its last chunk is analysed any more."""
        with self._lock:
            self._last = min(self._last, span.chunk)

    def spans(self) -> list[Span]:
        """Every span started, in the video's order."""
        return list(dict.fromkeys(span for span in self._spans if span is not None))


def chunks_for(path: PathLike, info: VideoInfo, options: ClipOptions, expected: int) -> Chunks | None:
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
    return Chunks(starts) if len(starts) > 1 else None


class _Crowd:
    """Whether the video's frame at a time shows more people than asked for (analysis.people.people_in_view, with a
    landmarker made when first needed; close() releases it). A frame that cannot be read or analysed counts as not
    crowded: the span that starts there finds out for itself."""

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
                self._engine = PoseEngine(replace(self._settings, max_people=1))
            most = self._settings.max_people
            return people_in_view(self._engine, frame[2], most + 1) > most
        except Exception:  # noqa: BLE001 - a look to choose where to start, not an analysis
            return False

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


def _work(chunks: Chunks, span: Span | None, path: PathLike, options: ClipOptions, settings: PoseSettings,
          threads: int, watch: Callable[[], None], counted: Callable[[], None], keep_errors: bool = False) -> None:
    """Analyse chunks until none is free: `span` first, then free ones (Chunks), each span with a landmarker of its
    own carried on until it reaches a chunk another span has, then over that span's first frames (_hand_over).
    keep_errors: an exception other than Cancelled is kept on the span it happened in, to be raised on the calling
    thread, instead of going up."""
    crowd = _Crowd(path, options, settings)
    try:
        span = span or chunks.take_free(crowd)
        while span is not None:
            try:
                with video_engine(settings) as engine:
                    span.decoder = decoder = Decoder(read_frames(path, span.start_s, options.end_s, 1,
                                                                 options.analysis_max_side, threads))
                    try:
                        frames = decoder.frames(watch)
                        following = analyse_span(span, frames, engine, watch, counted, _keep_on(span), chunks.boundary)
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


def _keep_on(span: Span) -> Callable[[int, float, np.ndarray, FramePose], None]:
    """What takes a shared span's poses: the span keeps them (the result is put together once all are done)."""
    return lambda index, time_s, _, pose: span.frames.append((index, time_s, pose))


def _work_elsewhere(chunks: Chunks, path: PathLike, options: ClipOptions, settings: PoseSettings, threads: int,
                    halted: Callable[[], None], watch: Watch) -> None:
    """A worker on a thread of its own: its spans keep their poses, and what went wrong, for the calling thread."""
    with contextlib.suppress(Cancelled):
        _work(chunks, None, path, options, settings, threads, halted, watch.count, keep_errors=True)


def analyse_shared(chunks: Chunks, path: PathLike, settings: PoseSettings, options: ClipOptions, watch: Watch
                   ) -> tuple[list[Span], SeriesBuilder]:
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
    raise_for_nothing_analysed(spans[0], builder)
    return spans, builder


def _hand_over(done: Span, following: Span, frames: Iterator[tuple[int, float, np.ndarray]],
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


def _kept(spans: list[Span]) -> list[Span]:
    """The spans whose frames make the result: up to the first that stopped early (what follows is after a gap)."""
    for count, span in enumerate(spans, start=1):
        if span.failure or span.broke or span.error:
            return spans[:count]
    return spans


def _add_span(builder: SeriesBuilder | None, span: Span, settings: PoseSettings) -> SeriesBuilder | None:
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
