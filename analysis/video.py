"""Video analysis as a stream: decode → pose → (draw → encode), each stage on its own thread.

Pose estimation is the critical path; decoding runs ahead of it and drawing and encoding the
annotated preview run behind it, through small bounded queues, so memory stays flat however long
the video is and the annotated video is ready as soon as the last pose is.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from analysis.drawing import PRIVACY_BACKGROUND, draw_pose
from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.result import ClipOptions, ClipResult, Source
from analysis.series import SeriesBuilder
from analysis.video_io import PathLike, VideoError, VideoInfo, VideoWriter, probe, read_frames


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


_END = object()


def expected_frames(info: VideoInfo, options: ClipOptions) -> int:
    """How many frames analyse_video will analyse: the trimmed duration × fps ÷ stride, at least 1.

    Why one function: the progress bar's total and the page's "this will take a while" warning must
    agree. An estimate: a variable-frame-rate clip can hold more or fewer frames (progress then
    counts past it), and a video without a frame rate in its header gives 1.
    """
    end_s = min(options.end_s, info.duration_s) if options.end_s is not None else info.duration_s
    return max(1, round((end_s - options.start_s) * info.fps / options.stride))


def _run_ahead(frames: Iterator[tuple[int, float, np.ndarray]], stop: threading.Event,
               size: int = 8) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode on a thread of its own, up to `size` frames ahead of the consumer."""
    ready: queue.Queue[object] = queue.Queue(size)

    def decode() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_END)
        except BaseException as error:  # handed to the consumer, which raises it in its own thread
            ready.put(error)

    thread = threading.Thread(target=decode, name="decode", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class _Renderer:
    """Draws each pose onto a preview-sized frame and hands it to the encoder, on its own thread."""

    def __init__(self, writer: VideoWriter, max_side: int, privacy: bool) -> None:
        self._writer, self._max_side, self._privacy = writer, max_side, privacy
        self._queue: queue.Queue[tuple[np.ndarray, FramePose, float] | None] = queue.Queue(8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="render", daemon=True)
        self._thread.start()

    def put(self, rgb: np.ndarray, pose: FramePose, time_s: float) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((rgb, pose, time_s))

    def close(self) -> None:
        """Render what is queued; raises an error from the rendering thread."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Skip what is queued and stop."""
        self._error = self._error or RuntimeError("aborted")
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain, so that put() never blocks on a dead renderer
            try:
                self._writer.write(self._render(*item[:2]), item[2])
            except BaseException as error:
                self._error = error

    def _render(self, rgb: np.ndarray, pose: FramePose) -> np.ndarray:
        height, width = rgb.shape[:2]
        scale = min(1.0, self._max_side / max(width, height))
        size = (round(width * scale) // 2 * 2, round(height * scale) // 2 * 2)
        if self._privacy:
            blank = np.empty((size[1], size[0], 3), np.uint8)
            blank[:] = PRIVACY_BACKGROUND
            return draw_pose(blank, pose)
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if size != (width, height) else rgb
        return draw_pose(small, pose)


def analyse_video(path: PathLike, settings: PoseSettings, options: ClipOptions = ClipOptions(),
                  annotated_path: Path | None = None,
                  on_progress: Callable[[Progress], None] | None = None, name: str = "video") -> ClipResult:
    """Poses for every kept frame of a video, and optionally the annotated preview video.

    Raises VideoError for a file that is not a readable video or holds no frame in the chosen range.
    If the video breaks off part-way, the frames before the break are kept and a warning says so.
    name: the source's name as the user knows it (their file name), for the result's Source.
    on_progress is called every few frames; an exception it raises (a user's cancel) stops the work
    and removes the partial annotated video.
    """
    info = probe(path)
    if options.start_s >= info.duration_s > 0:
        raise VideoError(f"The start time {options.start_s:g} s is past the end of this "
                         f"{info.duration_s:.1f} s video. Choose an earlier start.")
    expected = expected_frames(info, options)
    builder: SeriesBuilder | None = None
    warning = None
    started = time.perf_counter()
    stop = threading.Event()
    writer = VideoWriter(annotated_path, fps=info.fps / options.stride or 30.0) if annotated_path else None
    renderer = _Renderer(writer, options.preview_max_side, options.privacy) if writer else None
    try:
        with PoseEngine(settings, Mode.VIDEO) as engine:
            last_ms = -1
            frames = read_frames(path, options.start_s, options.end_s, options.stride, options.analysis_max_side)
            try:
                for done, (index, time_s, rgb) in enumerate(_run_ahead(frames, stop), start=1):
                    last_ms = max(last_ms + 1, round(time_s * 1000))
                    pose = engine.detect_frame(rgb, last_ms)
                    if builder is None:
                        builder = SeriesBuilder(settings.max_people, rgb.shape[1], rgb.shape[0])
                    builder.add(index, time_s, pose)
                    if renderer:
                        renderer.put(rgb, pose, time_s)
                    if on_progress and (done % 5 == 0 or done == expected):
                        on_progress(Progress(done, max(expected, done), time.perf_counter() - started))
            except VideoError as error:
                if builder is None:
                    raise
                warning = f"{error} The results below cover the part before the break."
        if builder is None:
            raise VideoError("No frames were found in the chosen part of the video. Check the start and end times.")
        if renderer and writer:
            renderer.close()
            writer.close()
    except BaseException:
        stop.set()
        if renderer and writer:
            renderer.abort()
            writer.abort()
        raise
    return ClipResult(builder.build(), Source(name, info), settings, options, time.perf_counter() - started,
                      (warning,) if warning else ())
