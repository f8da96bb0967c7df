"""The one place video frames are decoded and encoded, through PyAV (FFmpeg).

The rest of the app sees RGB uint8 arrays with timestamps in seconds, never PyAV objects, and
VideoError, whose message can be shown to the user as it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType

import av
import cv2
import numpy as np
from av.container import InputContainer
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc, VideoReformatter
from av.video.stream import VideoStream

PathLike = str | os.PathLike[str]

_CHOOSE_VIDEO = "Choose a video file such as MP4, MOV, AVI, WebM or MKV."
# A read that ends this far short of the duration the file records is reported as truncated.
# Generous, because the last frame of a variable-frame-rate clip may be shown for a long time.
_TRUNCATION_SLACK_S = 0.5
# Counter-clockwise quarter turns → the cv2 rotation that undoes them for display.
_ROTATIONS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}
# The MPEG clock: exact for 24, 25, 30, 50, 60 and 29.97 fps, and for milliseconds.
_TIME_BASE = Fraction(1, 90_000)
# How often a wait on another thread looks up to see whether it should stop.
POLL_S = 0.05
# abort() waits at most this long for the encoding thread to finish the frame it is on.
ABORT_WAIT_S = 1.0
# Write errors that mean the disk, or the user's quota on it, is full.
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# Decoding threads per video: None lets FFmpeg use every core (a copy made while nothing else runs); a batch's
# workers, one per core already, set 1 (single_threaded_decoding): threads beyond that only cost CPU time.
_decoder_threads: int | None = None


def cores_for_one_video() -> int:
    """The cores one video's analysis may fill: all of this process's, or one in a batch's worker (one per core)."""
    if _decoder_threads is not None:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decoder_threads_beside_inference(inferences: int = 1) -> int:
    """Decoding threads per decoder that leave each of `inferences` pose inferences (one thread each) a core of its
    own. FFmpeg's choice, a thread per core and one more, slowed inference on 2 cores from 74.9 to 51.2 frames/s of a
    1080x1920 clip; one decoding thread (155 frames/s of it) left it at 73.9."""
    if _decoder_threads is not None:
        return _decoder_threads
    return max(1, (cores_for_one_video() - inferences) // inferences)


def single_threaded_decoding() -> None:
    """Decode with one thread from now on in this process: for a worker of a pool that fills every core."""
    global _decoder_threads
    _decoder_threads = 1


class VideoError(ValueError):
    """A video that cannot be read or written; the message is one sentence for the user."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, from its header and its first frame.

    width, height: the display size in pixels, after rotation: the size read_frames yields.
    rotation_deg: 0, 90, 180 or 270, how far the stored picture is turned counter-clockwise for
        display (phones store portrait video as landscape plus this metadata).
    fps: the average frame rate; frames may still come at irregular times (variable frame rate).
    frame_count_estimate: from the header where it records one, else duration × fps.
    codec: FFmpeg's name for it, e.g. "h264", "hevc", "vp9".
    """

    width: int
    height: int
    rotation_deg: int
    fps: float
    duration_s: float
    frame_count_estimate: int
    codec: str
    has_audio: bool


def probe(path: PathLike) -> VideoInfo:
    """Describe a video, decoding only its first frame (the only place rotation can be read)."""
    with _open(path) as container:
        stream = _video_stream(container)
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as err:
            raise _truncated(0) from err
        if first is None:
            raise VideoError("This file has a video track but no frames in it: it may be damaged or incomplete.")
        turns = _quarter_turns(first)
        width, height = (stream.height, stream.width) if turns % 2 else (stream.width, stream.height)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = _duration_s(stream)
        if duration is None:
            duration = container.duration / av.time_base if container.duration else 0.0
        return VideoInfo(width, height, turns * 90, fps, duration, stream.frames or round(duration * fps),
                         stream.codec_context.name, bool(container.streams.audio))


def frame_estimate(path: PathLike) -> tuple[int, float]:
    """(frames, fps) from the container's header alone, decoding nothing: a batch's progress total, quickly."""
    with _open(path) as container:
        stream = _video_stream(container)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = _duration_s(stream) or (container.duration / av.time_base if container.duration else 0.0)
        return stream.frames or round(duration * fps), fps


def keyframes_before(path: PathLike, times_s: Sequence[float]) -> list[float | None]:
    """For each time (from 0 at the start of the video), the time of the last keyframe at or before it, reading no
    frame: where decoding from that time really starts. None where the file cannot say (no timestamps, or it fails
    to seek)."""
    found: list[float | None] = []
    with _open(path) as container:
        stream = _video_stream(container)
        origin = stream.start_time or 0
        for time_s in times_s:
            found.append(None)
            try:
                container.seek(origin + round(time_s / stream.time_base), stream=stream)
                for packet in container.demux(stream):
                    if packet.pts is not None and packet.is_keyframe:
                        found[-1] = float((packet.pts - origin) * stream.time_base)
                        break
            except av.FFmpegError:
                continue
    return found


def read_frames(path: PathLike, start_s: float = 0.0, end_s: float | None = None, stride: int = 1,
                max_side: int | None = None, threads: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """Stream (frame_index, time_s, rgb) for the frames shown from start_s up to, not including, end_s.

    time_s comes from each frame's own timestamp, from 0 at the start of the video, so variable
    frame rates stay true; in a faulty file it can repeat or go back, and is passed on as the file
    has it (analyse_video skips such frames and says how many). rgb is (h, w, 3) uint8,
    C-contiguous, upright (rotation metadata applied) and, with max_side, shrunk so that its
    longer side is at most max_side.
    stride=n keeps every nth frame from the first one at or after start_s.
    frame_index counts frames from the start of the video; after a seek (start_s > 0) it is
    worked out as time × average fps: exact at a constant frame rate, an estimate otherwise.
    threads: decoding threads; by default FFmpeg's choice (or one, after single_threaded_decoding).

    A file that ends early (truncated) or breaks part-way yields every frame that decodes, then
    raises VideoError, so that a caller can keep the partial results.
    """
    if stride < 1:
        raise ValueError(f"stride must be 1 or more, got {stride}")
    with _open(path) as container:
        stream = _video_stream(container)
        threads = threads or _decoder_threads
        if threads is None:
            stream.thread_type = "AUTO"
        else:
            stream.thread_count = threads
        origin = stream.start_time or 0
        # Only files without timestamps (raw streams, some AVI) need a frame rate guessed.
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        index, time_s, in_range, read = -1, -1.0, 0, 0
        scalers = _Scalers()
        try:
            if start_s > 0:
                container.seek(origin + round(start_s / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                if frame.pts is None:
                    time_s = time_s + 1 / fps if index >= 0 else 0.0
                else:
                    time_s = float((frame.pts - origin) * stream.time_base)
                index = index + 1 if index >= 0 else (round(time_s * fps) if start_s > 0 else 0)
                if time_s < start_s:
                    continue
                if end_s is not None and time_s >= end_s:
                    return
                if in_range % stride == 0:
                    yield index, time_s, _to_rgb(frame, max_side, scalers)
                    read += 1
                in_range += 1
        except av.FFmpegError as err:
            raise _truncated(read) from err
        duration = _duration_s(stream)
        if duration is not None and time_s < duration - _TRUNCATION_SLACK_S:
            raise _truncated(read)


class VideoWriter:
    """Encodes RGB frames to an H.264 MP4 that browsers play as it downloads, on its own thread.

    write() only queues the frame (up to queue_size are waiting; then it blocks), so encoding
    runs beside the caller's work. It keeps a reference, not a copy: don't change the array
    afterwards. Frames carry their own times, so variable frame rates stay true; the video
    starts at the first frame's time. fps is the nominal rate, for the encoder's bit budget
    and the last frame's duration. scale_to_max_side shrinks frames (never enlarges) so that
    the longer side is at most that, for light previews. Odd sizes lose a row or column, as
    H.264 in yuv420p needs even ones. keyframe_every: a keyframe every that many frames (and a
    stream that decodes fast), for a video that is stepped through frame by frame.

    An error on the encoding thread is raised again by the next write() or by close(); a full disk
    says so in a sentence. If anything fails, or the `with` block raises, or abort() is called, the
    partial file is removed. abort() may be called from any thread at any moment: a write() or
    close() waiting on the encoder in another thread then gives up at once (raising ValueError),
    and abort() itself returns within about ABORT_WAIT_S.
    """

    def __init__(self, path: PathLike, fps: float = 30.0, scale_to_max_side: int | None = None,
                 crf: int = 23, preset: str = "veryfast", queue_size: int = 8,
                 keyframe_every: int | None = None) -> None:
        self.path = os.fspath(path)
        self._fps = Fraction(fps).limit_denominator(1001)
        self._codec_options = {"crf": str(crf), "preset": preset,
                               # B-frames would make the mp4 muxer cut the last frames of variable-rate video.
                               "bf": "0"}
        if keyframe_every:  # a browser seeks by decoding from the keyframe before: short groups seek fast
            self._codec_options |= {"g": str(keyframe_every), "tune": "fastdecode"}
        self._max_side = scale_to_max_side
        self._queue: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(queue_size)
        self._error: BaseException | None = None
        self._closed = False
        self._aborted = threading.Event()
        self._stream: VideoStream | None = None
        self._source_shape: tuple[int, ...] = ()
        self._size = (0, 0)
        self._first_time = 0.0
        self._last_pts = -1
        try:
            self._container = av.open(self.path, "w", format="mp4", options={"movflags": "+faststart"})
        except (av.FFmpegError, OSError) as err:
            raise _cannot(f"created at {self.path}", err) from err
        self._thread = threading.Thread(target=self._run, name="posescope-encode", daemon=True)
        self._thread.start()

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        """Queue one (h, w, 3) uint8 RGB frame shown from time_s seconds; times must increase.

        Waits while the queue is full, until the encoder takes a frame, fails, or is aborted.
        """
        item = (rgb, time_s)
        while True:
            if self._error is not None:
                raise self._error
            if self._aborted.is_set():
                raise ValueError("this VideoWriter was aborted")
            if self._closed:
                raise ValueError("this VideoWriter is closed")
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Encode what is queued and finish the file; raises any error from the encoding thread.

        Raises ValueError if abort() is called (from another thread) meanwhile.
        """
        if not self._closed:
            self._closed = True
            while not self._aborted.is_set():
                try:
                    self._queue.put(None, timeout=POLL_S)
                    break
                except queue.Full:
                    if not self._thread.is_alive():
                        break
            while self._thread.is_alive() and not self._aborted.is_set():
                self._thread.join(POLL_S)
        if self._aborted.is_set():
            self._join_and_remove()
            raise ValueError("this VideoWriter was aborted")
        self._thread.join()  # it has ended: this only makes its end visible
        if self._error is not None:
            self._remove()
            raise self._error

    def abort(self) -> None:
        """Stop without finishing, for a failed or cancelled job: skip what is queued, remove the file.

        Never raises, so it is safe in cleanup code; safe from any thread, and bounded: the encoding
        thread finishes at most the frame it is on (it removes the file itself if that takes longer
        than ABORT_WAIT_S).
        """
        self._closed = True
        self._aborted.set()
        self._join_and_remove()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _join_and_remove(self) -> None:
        self._thread.join(ABORT_WAIT_S)
        self._remove()

    def _remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)

    def _next(self) -> tuple[np.ndarray, float] | None:
        """The next queued frame, None at the end; None at once when aborted."""
        while not self._aborted.is_set():
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return None

    def _run(self) -> None:
        try:
            while (item := self._next()) is not None:
                self._encode(*item)
            if not self._aborted.is_set():
                if self._stream is None:
                    raise VideoError("No frames were given, so no video was written.")
                for packet in self._stream.encode_lazy(None):  # the encoder's delayed frames, one by one
                    if self._aborted.is_set():
                        break
                    self._container.mux(packet)
            if self._aborted.is_set():
                self._discard()
            else:
                self._container.close()
        except BaseException as err:
            self._error = _cannot("written", err) if isinstance(err, (av.FFmpegError, OSError)) else err
            self._discard()

    def _discard(self) -> None:
        """Close the container of a failed or aborted video and remove the file (first, so that the
        trailer's faststart pass, which reopens the file, gives up at once instead of rewriting it)."""
        self._remove()
        with contextlib.suppress(av.FFmpegError, OSError):
            self._container.close()
        self._remove()

    def _encode(self, rgb: np.ndarray, time_s: float) -> None:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 image of shape (h, w, 3), got {rgb.dtype} {rgb.shape}")
        if self._stream is None:
            self._start(rgb.shape, time_s)
        elif rgb.shape != self._source_shape:
            raise ValueError(f"every frame must have the first frame's shape {self._source_shape}, got {rgb.shape}")
        pts = round((time_s - self._first_time) / _TIME_BASE)
        if pts <= self._last_pts:
            raise ValueError(f"frame times must increase: {time_s} s came after "
                             f"{self._first_time + float(self._last_pts * _TIME_BASE)} s")
        self._last_pts = pts
        if self._max_side is not None and max(rgb.shape[:2]) > self._max_side:
            rgb = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA)
        else:
            rgb = rgb[:self._size[1], :self._size[0]]
        # OpenCV's I420 conversion (BT.601, limited range) takes a tenth of swscale's time (0.3 ms against 2.7 ms
        # a 960-px frame); the file says BT.601, which browsers and read_frames follow.
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        frame.pts = pts
        self._container.mux(self._stream.encode(frame))

    def _start(self, shape: tuple[int, ...], time_s: float) -> None:
        height, width = shape[:2]
        if self._max_side is not None and max(width, height) > self._max_side:
            scale = self._max_side / max(width, height)
            width, height = round(width * scale), round(height * scale)
        self._size = (max(2, width - width % 2), max(2, height - height % 2))
        self._source_shape = shape
        self._first_time = time_s
        stream = self._container.add_stream("libx264", rate=self._fps, options=self._codec_options)
        stream.width, stream.height = self._size
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = _TIME_BASE
        # Label the file: BT.601 matrix (what the frames were converted with), BT.709 primaries and transfer
        # (sRGB's). The context takes FFmpeg's AVCOL_* numbers: BT.601 (BT470BG) is 5, as is swscale's
        # ITU601; BT.709 is 1; limited ("MPEG") range is 1.
        context = stream.codec_context
        context.colorspace, context.color_range = Colorspace.ITU601.value, ColorRange.MPEG.value
        context.color_primaries, context.color_trc = ColorPrimaries.BT709.value, ColorTrc.BT709.value
        self._stream = stream


def _open(path: PathLike) -> InputContainer:
    try:
        size = os.path.getsize(path)
    except OSError as err:
        raise VideoError(f"This file could not be opened ({_reason(err)}).") from err
    if size == 0:
        raise VideoError(f"This file is empty (0 bytes). {_CHOOSE_VIDEO}")
    try:
        return av.open(os.fspath(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as err:
        raise VideoError(f"This is not a video file we can read, or it is damaged ({_reason(err)}). "
                         f"{_CHOOSE_VIDEO}") from err


def _video_stream(container: InputContainer) -> VideoStream:
    """The first real video track: cover art in music files is a one-picture 'video' track."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise VideoError("This file has no video track (it may be audio only).")


def _quarter_turns(frame: av.VideoFrame) -> int:
    return round(frame.rotation / 90) % 4


class _Scalers:
    """The two swscale contexts of one read_frames pass: shrinking in the decoder's YUV, then converting to RGB.

    Why kept for the whole pass, each on the calling thread (threads=1): VideoFrame.reformat makes a new
    context for every frame, with a pool of scaling threads of its own, which costs a 1080x1920 phone frame
    2.8 ms of CPU instead of 1.7 ms for the same pixels, and starts new threads for every frame beside pose
    estimation.
    """

    def __init__(self) -> None:
        self.shrink, self.rgb = VideoReformatter(), VideoReformatter()


def _to_rgb(frame: av.VideoFrame, max_side: int | None, scalers: _Scalers) -> np.ndarray:
    turns = _quarter_turns(frame)
    width, height = frame.width, frame.height
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        # Shrink in the decoder's YUV (1.5 bytes a pixel) before converting to RGB: for 1080x1920 phone video
        # that costs 3 ms a frame less than converting at full size (benchmarks/batch_bench.py's clips).
        frame = scalers.shrink.reformat(frame, width=width, height=height, interpolation="AREA", threads=1)
    rgb = scalers.rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()
    return cv2.rotate(rgb, _ROTATIONS[turns]) if turns else np.ascontiguousarray(rgb)


def _duration_s(stream: VideoStream) -> float | None:
    return float(stream.duration * stream.time_base) if stream.duration else None


def _truncated(frames_read: int) -> VideoError:
    return VideoError("The video could not be read to the end: it may be truncated or damaged "
                      f"({frames_read} frames were read).")


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err)


def _cannot(what: str, err: BaseException) -> VideoError:
    """The sentence for a video that could not be `what` ("written", "created at …"): a full disk says so."""
    code = getattr(err, "errno", None)
    if code in _DISK_FULL:
        return VideoError(f"The video could not be {what}: there is not enough disk space ({_reason(err)}). "
                          "Free some space and try again.")
    if code == errno.EFBIG:
        return VideoError(f"The video could not be {what}: there is not enough disk space for a file this large "
                          f"({_reason(err)}). Free some space, or make the video shorter.")
    return VideoError(f"The video could not be {what} ({_reason(err)}).")
