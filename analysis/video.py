"""Video analysis as a stream: decode → pose → (draw → encode), each stage on its own thread.

Pose estimation is the critical path; decoding runs ahead of it and drawing and encoding the
annotated preview run behind it, through small bounded queues, so memory stays flat however long
the video is and the annotated video is ready as soon as the last pose is. MediaPipe's inference runs on one
core, so without an annotated video a long video is shared by landmarkers side by side (analysis.sharing).

Every stage can be stopped at any moment. No wait on another stage is unbounded: each one looks up
every POLL_S to see whether it should give up (the caller's stop event, an on_progress exception, a
failed stage), so a cancel returns within STOP_WAIT_S (1.5 s; a few hundred ms in practice) whichever
stage is the slow one, and leaves no thread of the pipeline running (they are named posescope-decode,
posescope-render, posescope-encode and posescope-span).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from analysis.drawing import PrivacyAnnotator, SkeletonAnnotator
from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.people import PeopleFinder, video_engine
from analysis.result import ClipOptions, ClipResult, Source
from analysis.series import SeriesBuilder
from analysis.sharing import analyse_shared, chunks_for
from analysis.stream import (
    STOP_WAIT_S,
    Decoder,
    Progress,
    Span,
    Watch,
    analyse_span,
    raise_for_nothing_analysed,
    span_warnings,
)
from analysis.video_io import (
    POLL_S,
    PathLike,
    VideoError,
    VideoInfo,
    VideoWriter,
    decoder_threads_beside_inference,
    probe,
    read_frames,
)

def expected_frames(info: VideoInfo, options: ClipOptions) -> int:
    """How many frames analyse_video will analyse: the trimmed duration × fps ÷ stride, at least 1.

    Why one function: the progress bar's total and the page's "this will take a while" warning must
    agree. An estimate: a variable-frame-rate clip can hold more or fewer frames (progress then
    counts past it), and a video without a frame rate in its header gives 1.
    """
    end_s = min(options.end_s, info.duration_s) if options.end_s is not None else info.duration_s
    return max(1, round((end_s - options.start_s) * info.fps / options.stride))


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
    they go, each on a thread of its own (the other one named posescope-span; see Chunks). Where one reaches a
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
    chunks = chunks_for(path, info, options, expected) if engine is None and annotated_path is None else None
    if chunks is None:
        spans, builder = _in_one_pass(path, info, settings, options, annotated_path, watch, engine)
    else:
        spans, builder = analyse_shared(chunks, path, settings, options, watch)
    return ClipResult(builder.build(), Source(name, info), settings, options, time.perf_counter() - watch.started,
                      tuple(span_warnings(spans)))


def _in_one_pass(path: PathLike, info: VideoInfo, settings: PoseSettings, options: ClipOptions,
                 annotated_path: Path | None, watch: Watch, engine: PoseEngine | PeopleFinder | None
                 ) -> tuple[list[Span], SeriesBuilder]:
    """The video analysed by one landmarker, frame after frame, with the annotated video drawn behind it if asked
    for: the span analysed and the poses."""
    whole = Span(options.start_s)
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
            whole.decoder = Decoder(read_frames(path, options.start_s, options.end_s, options.stride,
                                                options.analysis_max_side, decoder_threads_beside_inference(1)))
            analyse_span(whole, whole.decoder.frames(watch), engine, watch, watch.frame_done, take)
            whole.decoder.join(time.perf_counter() + STOP_WAIT_S)
        raise_for_nothing_analysed(whole, builder)
        if renderer:
            renderer.close(watch)
    except BaseException:
        _halt(whole.decoder, renderer, writer)
        raise
    return [whole], builder


def _halt(decoder: Decoder | None, renderer: _Renderer | None, writer: VideoWriter | None) -> None:
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
