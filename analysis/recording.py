"""Webcam recordings: the live poses (and optionally the raw camera video) gathered into the one clip result.

A Recorder is fed analysed frames by the live processor while recording; `finish` returns a Recording whose
`result` is a ClipResult like a video's, so it exports, charts and saves the same way, with the reps of the
exercise chosen at its end and the events in it (analysis.coaching).

A camera may change resolution while recording (browsers step it down when the machine is busy). The
recording keeps its first frame's size: later frames of another size are scaled to fit inside it, centred
(letterboxed), in the MP4 and in the poses alike, so that the skeleton still sits on the person in the
video and angles in pixels stay true; the result says so in a warning.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import threading
import weakref
from dataclasses import dataclass, replace
from datetime import datetime

import cv2
import numpy as np

from analysis import exports
from analysis.coaching import Coaching, coach
from analysis.engine import FramePose, PoseSettings
from analysis.exercises import Catalogue, ExerciseError, current_catalogue
from analysis.landmarks import X, Y, Z
from analysis.result import CAMERA, ClipOptions, ClipResult, Source
from analysis.series import Kinematics, SeriesBuilder, Smoothing, kinematics
from analysis.video_io import VideoError, VideoWriter

MAX_RECORDING_S = 20 * 60.0  # a recording stops growing after 20 minutes
SMOOTHING = Smoothing()  # a recording's kinematics: the Video page's defaults


@dataclass(frozen=True)
class Recording:
    """A finished webcam recording. result: the clip (Source(CAMERA); exported with analysis.exports).
    video: the raw camera frames as an H.264 MP4, if asked for. started: when recording began. exercise: the
    exercise's name to count its reps for, or None."""

    result: ClipResult
    video: bytes | None
    started: datetime
    exercise: str | None = None

    @property
    def stem(self) -> str:
        """The start of its download names."""
        return f"webcam_{self.started:%Y%m%d_%H%M%S}"

    @functools.cached_property
    def kinematics(self) -> Kinematics:
        """With the Video page's default smoothing; computed on first use and kept (the page reruns often)."""
        return kinematics(self.result.series, SMOOTHING)

    @functools.cached_property
    def coaching(self) -> Coaching:
        """The exercise's reps (reps.csv) and the jumps and falls (events.csv), as a video's."""
        try:
            return coach(self.result, self.kinematics, current_catalogue(), self.exercise)
        except ExerciseError:  # the user's exercise file broke or dropped it meanwhile: the events still count
            return coach(self.result, self.kinematics, Catalogue({}), None)

    @functools.cached_property
    def files(self) -> tuple[tuple[str, bytes, str, str], ...]:
        """Every download as (label, content, file name, mime): the clip's files and the video, made once.

        Why made ahead rather than on click: the Webcam page refreshes its live panel twice a second, and
        Streamlit drops a file made on click at the second refresh after it, before a busy browser may have
        fetched it; a file made ahead stays while its button is shown.
        """
        made = tuple((file.label, _as_bytes(file.make()), file.name, file.mime)
                     for file in exports.clip_files(self.result, self.kinematics, self.coaching))
        video = (("Video (MP4)", self.video, "video.mp4", "video/mp4"),) if self.video is not None else ()
        return video + made


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


class _Letterbox:
    """Fits frames of one camera size inside the recording's size, scaled and centred, and moves poses alike."""

    def __init__(self, camera: tuple[int, int], recording: tuple[int, int]) -> None:
        (width, height), (self.width, self.height) = camera, recording
        scale = min(self.width / width, self.height / height)
        self.scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
        self.offset = ((self.width - self.scaled[0]) // 2, (self.height - self.scaled[1]) // 2)

    def frame(self, rgb: np.ndarray) -> np.ndarray:
        canvas = np.zeros((self.height, self.width, 3), np.uint8)
        (w, h), (x, y) = self.scaled, self.offset
        shrinking = w < rgb.shape[1]
        canvas[y:y + h, x:x + w] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrinking else
                                              cv2.INTER_LINEAR)
        return canvas

    def pose(self, pose: FramePose) -> FramePose:
        """Normalised landmarks re-expressed in the recording's frame; z follows x's scale, as MediaPipe's does."""
        landmarks = pose.landmarks.copy()
        (w, h), (x, y) = self.scaled, self.offset
        landmarks[..., X] = (landmarks[..., X] * w + x) / self.width
        landmarks[..., Y] = (landmarks[..., Y] * h + y) / self.height
        landmarks[..., Z] *= w / self.width
        return replace(pose, landmarks=landmarks, width=self.width, height=self.height)


class Recorder:
    """Gathers a recording's poses into a SeriesBuilder and, optionally, its raw frames into an MP4.

    Thread-safe: `add` runs on the streaming thread, `finish` on a script thread. Times are from the first
    recorded frame. After max_s the recording stops growing and says so. No video in privacy mode, nor once
    `keep_private` was called.
    """

    def __init__(self, settings: PoseSettings, options: ClipOptions = ClipOptions(), with_video: bool = False,
                 max_s: float = MAX_RECORDING_S) -> None:
        self.settings, self.options = settings, options
        self.started = datetime.now().astimezone()
        self._with_video = with_video and not options.privacy
        self._max_s = max_s
        self._lock = threading.Lock()
        self._builder: SeriesBuilder | None = None
        self._writer: VideoWriter | None = None
        self._video_path: str | None = None
        self._discard: weakref.finalize | None = None  # set once a video file exists
        self._first_s = 0.0
        self._first_number = 0
        self._last_s = 0.0
        self._processing_s = 0.0
        self._camera_size = (0, 0)
        self._letterbox: _Letterbox | None = None  # while the camera's size is not the recording's
        self._resized: list[str] = []
        self._closed = self._truncated = False
        self._video_warning: str | None = None

    @property
    def seconds(self) -> float:
        return self._last_s

    def add(self, time_s: float, pose: FramePose, *, frame_number: int, processing_s: float,
            rgb: np.ndarray | None = None) -> None:
        """One analysed frame. frame_number: its number in the camera stream, so that dropped frames leave gaps
        in the series' frame_index as a stride does in a video. processing_s: how long the frame took to
        analyse, summed into the result's elapsed_s. rgb: the camera frame, for the video."""
        with self._lock:
            if self._closed:
                return
            if self._builder is None:
                self._builder = SeriesBuilder(self.settings.max_people, pose.width, pose.height,
                                              self.settings.keep_id_s)
                self._first_s, self._first_number = time_s, frame_number
                self._camera_size = (pose.width, pose.height)
                if self._with_video and rgb is not None:
                    self._open_video()
            elapsed = time_s - self._first_s
            if elapsed > self._max_s:
                self._truncated = True
                return
            if (pose.width, pose.height) != self._camera_size:
                self._camera_changed((pose.width, pose.height), elapsed)
            if self._letterbox is not None:
                pose = self._letterbox.pose(pose)
            self._builder.add(frame_number - self._first_number, elapsed, pose)
            self._processing_s += processing_s
            if self._writer is not None and rgb is not None:
                try:
                    self._writer.write(self._letterbox.frame(rgb) if self._letterbox else rgb, elapsed)
                except (VideoError, ValueError) as error:
                    self._drop_video(_no_video(error))
            self._last_s = elapsed

    def keep_private(self) -> None:
        """Privacy came on while recording: any camera video recorded so far is deleted (a warning says so) and
        no more is taken, so that the recording holds nothing but the skeleton; its result counts as private."""
        with self._lock:
            if self.options.privacy:
                return
            self.options = replace(self.options, privacy=True)
            if self._with_video:
                self._with_video = False
                if self._writer is not None:
                    self._drop_video("Privacy mode came on while recording, so the camera video was deleted: "
                                     "the recording holds the skeleton only.")

    def _camera_changed(self, size: tuple[int, int], elapsed: float) -> None:
        recording = (self._builder.width, self._builder.height)
        (w, h), (w2, h2) = self._camera_size, size
        self._resized.append(f"The camera changed resolution from {w}x{h} to {w2}x{h2} at {elapsed:.1f} s"
                             + ("; later frames were scaled to fit." if size != recording else "."))
        self._camera_size = size
        self._letterbox = _Letterbox(size, recording) if size != recording else None

    def _open_video(self) -> None:
        handle, self._video_path = tempfile.mkstemp(prefix="posescope-webcam-", suffix=".mp4")
        os.close(handle)
        try:
            self._writer = VideoWriter(self._video_path, fps=30.0)
        except VideoError as error:
            self._drop_video(_no_video(error))
            return
        # A recording abandoned unfinished (its browser session closed) leaves no encoder and no file behind.
        self._discard = weakref.finalize(self, _discard_video, self._writer, self._video_path)

    def _drop_video(self, warning: str) -> None:
        self._video_warning = warning
        if self._discard is not None:
            self._discard.detach()
        _discard_video(self._writer, self._video_path)
        self._writer = self._video_path = None

    def finish(self, exercise: str | None = None) -> Recording | None:
        """Stop taking frames; the recording (its reps counted for `exercise`, a name), or None if no frame was
        recorded. The temporary video is removed."""
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
                self._video_warning = _no_video(error)
            finally:
                with contextlib.suppress(OSError):
                    os.remove(path)
        if builder is None:
            return None
        return Recording(ClipResult(builder.build(), Source(CAMERA), self.settings, self.options, self._processing_s,
                                    self._warnings()), video, self.started, exercise)

    def _warnings(self) -> tuple[str, ...]:
        warnings = list(self._resized)
        if self._truncated:
            limit = f"{self._max_s / 60:g} minutes" if self._max_s >= 120 else f"{self._max_s:g} s"
            warnings.append(f"The recording reached its limit of {limit} and stopped there.")
        if self._video_warning is not None:
            warnings.append(self._video_warning)
        return tuple(warnings)


def _no_video(error: Exception) -> str:
    return f"The video could not be recorded ({error}); the pose data is complete."


def _discard_video(writer: VideoWriter | None, path: str | None) -> None:
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.close()
    if path is not None:
        with contextlib.suppress(OSError):
            os.remove(path)
