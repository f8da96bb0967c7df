"""What the Video page asks of the library: stage an upload once, plan its analysis, run it as a background
job that outlives the page's reruns, and keep finished analyses in a bounded cache.

A ClipSession belongs to one browser session: its current video and its jobs. The analysis is pose
estimation only: the browser plays the video and draws the poses over it. Two follow-up jobs make what the
browser cannot have straight away: the review copy (analysis.playback.make_proxy: H.264 with short groups
of frames, so that any browser plays it and steps through it in milliseconds), started once the poses are
done so that it never delays them, and the annotated video, made when the user asks.
A new file or new pose settings replace the analysis; smoothing, charts and leaving the page do not touch
it. Jobs of all sessions share one JobRunner, so two never fight over the cores: the later one waits.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from analysis.cache import BoundedCache
from analysis.coaching import Coaching, coach
from analysis.compare import Comparison, Performance, compare
from analysis.exercises import current_catalogue
from analysis.engine import PoseSettings
from analysis.identities import PeopleEdits
from analysis.jobs import Job, JobRunner, JobState
from analysis.playback import browser_playable, make_proxy, render_annotated
from analysis.result import ClipOptions, ClipResult
from analysis.series import Kinematics, Smoothing, kinematics
from analysis.uploads import StagedFile
from analysis.stream import Progress
from analysis.video import analyse_video, expected_frames
from analysis.video_io import VideoInfo, probe

VIDEO_TYPES = ("mp4", "mov", "m4v", "avi", "webm", "mkv")
# What the browser is told a playable upload is (a QuickTime file is an MP4 as far as browsers go).
MIMETYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/mp4", ".webm": "video/webm"}
RECORDING_TYPE = "npz"
HEAVY_PIXELS = 2560 * 1440  # above this, or above HEAVY_FPS or HEAVY_FRAMES, analysing will take a while
HEAVY_FPS = 50
HEAVY_FRAMES = 9000  # five minutes at 30 frames/s
CONCURRENT_JOBS = 1  # pose estimation already keeps two cores busy: more at once only slows each one down

# Process-wide bounds: a 10-minute clip's analysis is about 60 MB, its kinematics 30 MB; a review copy or an
# annotated video of it 50 to 250 MB.
ANALYSES: BoundedCache[ClipResult] = BoundedCache(max_entries=8, max_bytes=512 << 20)
VIDEOS: BoundedCache[bytes] = BoundedCache(max_entries=6, max_bytes=1024 << 20)
MOTIONS: BoundedCache[Kinematics] = BoundedCache(max_entries=16, max_bytes=384 << 20)
RECORDINGS: BoundedCache[ClipResult] = BoundedCache(max_entries=8, max_bytes=256 << 20)
COACHINGS: BoundedCache[Coaching] = BoundedCache(max_entries=16, max_bytes=64 << 20)
COMPARISONS: BoundedCache[Comparison] = BoundedCache(max_entries=8, max_bytes=128 << 20)
EDITED: BoundedCache[ClipResult] = BoundedCache(max_entries=8, max_bytes=512 << 20)
RUNNER = JobRunner(CONCURRENT_JOBS)


@dataclass(frozen=True)
class VideoUpload:
    """An uploaded video staged once (StagedFile) and described (its header), with the user's name for it.

    data: the upload's bytes as Streamlit holds them (no copy), which the browser plays back when it can."""

    name: str
    staged: StagedFile
    info: VideoInfo
    data: bytes

    @classmethod
    def stage(cls, data: bytes, name: str, suffix: str) -> VideoUpload:
        """Raises UploadError (staging) or VideoError (not a readable video), and then leaves no file behind."""
        staged = StagedFile(data, suffix)
        try:
            return cls(name, staged, probe(staged.path), data)
        except BaseException:
            staged.close()
            raise

    @property
    def playable(self) -> bool:
        """Whether the browser plays the file itself (until its review copy is ready)."""
        return browser_playable(self.info.codec, self.staged.path.suffix) and self.mimetype is not None

    @property
    def mimetype(self) -> str | None:
        return MIMETYPES.get(self.staged.path.suffix.lower())


def analysis_key(digest: str, settings: PoseSettings, options: ClipOptions) -> str:
    """What names an analysis: the content, the pose settings and the clip options (not smoothing)."""
    return f"{digest}|{settings}|{options}"


def trim_options(info: VideoInfo, start_s: float, end_s: float, stride: int, privacy: bool) -> ClipOptions:
    """The trim controls' values as ClipOptions: an end at the video's end means "to the end" (None)."""
    full = end_s >= round(info.duration_s, 2)
    return ClipOptions(start_s=start_s, end_s=None if full else end_s, stride=int(stride), privacy=privacy)


def can_trim(info: VideoInfo) -> bool:
    """A clip of a frame or two has nothing to trim."""
    return info.duration_s > 2 / max(info.fps, 1.0)


def heads_up(info: VideoInfo, options: ClipOptions) -> str | None:
    """A sentence when analysing this video will take a while, with what helps."""
    frames = expected_frames(info, options)
    large, fast, long = info.width * info.height > HEAVY_PIXELS, info.fps > HEAVY_FPS, frames > HEAVY_FRAMES
    if not (large or fast or long):
        return None
    what = f"This is a {info.width} × {info.height} video at {info.fps:.0f} frames/s"
    return (f"{what}: {frames:,} frames to analyse. Frames are scaled to {options.analysis_max_side} px for pose "
            f"estimation and memory stays low, but decoding {'large frames ' if large else ''}takes time. "
            "A frame stride of 2 halves the work; trimming to the part you need helps most.")


def duration_words(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def job_sentence(job: Job, doing: str = "Analysing") -> str:
    """Where a job is: its place in the queue, or frames done, rate and time left. doing: what it does to the
    frames ("Analysing", or a follow-up's "Copying", "Drawing")."""
    if job.state is JobState.QUEUED:
        position = job.queue_position
        ahead = "another analysis" if position in (None, 1) else f"{position} other analyses"
        return f"Waiting for {ahead} to finish: analyses run one at a time on this machine."
    progress = job.progress
    if progress is None or progress.frames_done == 0:
        return "Loading the pose model and opening the video…" if doing == "Analysing" else "Opening the video…"
    if progress.frames_done >= progress.frames_expected and job.state is JobState.RUNNING:
        return "Finishing…"
    left = progress.remaining_s
    eta = "" if left != left else f" · about {duration_words(left)} left"  # NaN: no rate yet
    return (f"{doing}: {progress.frames_done:,} / {progress.frames_expected:,} frames · "
            f"{progress.fps:.0f} frames/s{eta}")


def video_caption(name: str, info: VideoInfo, result: ClipResult | None) -> str:
    """The video's name (as the page shows it), size, rate, length and codec, and how its analysis went."""
    parts = [name, f"{info.width} × {info.height}", f"{info.fps:.3g} frames/s", f"{info.duration_s:.1f} s",
             info.codec.upper()]
    if info.rotation_deg:
        parts.append(f"turned {info.rotation_deg}°")
    text = " · ".join(parts)
    if result:
        frames = f"{result.series.frames} frame{'s' if result.series.frames != 1 else ''}"
        text += f" — analysed {frames} in {result.elapsed_s:.1f} s ({result.frames_per_s or 0:.0f} frames/s)"
    return text


_OUTPUTS = count(1)


def _made_video(upload: VideoUpload, make: Callable[[Path], None]) -> bytes:
    """The bytes of a video `make` writes beside the staged upload; the file is removed afterwards."""
    path = upload.staged.path.with_name(f"made-{next(_OUTPUTS)}.mp4")
    try:
        make(path)
        return path.read_bytes()
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class ClipSession:
    """One browser session's video: the staged upload, the job analysing it and its follow-up jobs (the playable
    copy, the annotated video). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.upload: VideoUpload | None = None
        self._file_id: str | None = None
        self.job: Job[ClipResult] | None = None
        self._videos: dict[str, Job[bytes]] = {}  # follow-up jobs by key, until they have been seen to finish

    def use_upload(self, file_id: str, data: bytes, name: str, suffix: str) -> VideoUpload:
        """The staged upload for this file; a different file than the current one replaces it (and its jobs)."""
        with self._lock:
            if self.upload is not None and file_id == self._file_id:
                return self.upload
        upload = VideoUpload.stage(data, name, suffix)
        with self._lock:
            self._drop()
            self.upload, self._file_id = upload, file_id
        return upload

    def analysis(self, settings: PoseSettings, options: ClipOptions) -> ClipResult | Job[ClipResult]:
        """The finished analysis of the current upload with these settings, else the job working on it.

        The current job goes on if it is for the same analysis; otherwise it is cancelled and a new one
        submitted. A finished job leaves its analysis in ANALYSES, so coming back to settings used before
        answers at once.
        """
        with self._lock:
            upload = self._current()
            key = analysis_key(upload.staged.digest, settings, options)
            if (done := ANALYSES.get(key)) is not None:
                return done
            if self.job is not None and self.job.key == key:
                return self.job  # running, or finished: a failure or a cancel is shown until forget_job
            if self.job is not None:
                self.job.cancel()

            def work(on_progress: Callable[[Progress], None], stop: threading.Event) -> ClipResult:
                # Another session may have analysed the same content with the same settings while this one waited.
                return ANALYSES.get(key) or ANALYSES.put(key, analyse_video(
                    upload.staged.path, settings, options, None, on_progress, name=upload.name, stop=stop))

            self.job = RUNNER.submit(key, work)
            return self.job

    def review_copy(self) -> bytes | Job[bytes]:
        """The review copy of the current upload, made once per content. Ask after the analysis: jobs run in
        turn, so the copy never delays the poses."""
        with self._lock:
            upload = self._current()
            return self._video(f"{upload.staged.digest}|review",
                               lambda progress, stop: _made_video(upload, lambda path: make_proxy(
                                   upload.staged.path, path, progress, stop)))

    def annotated_video(self, key: str, result: ClipResult, start: bool = False) -> bytes | Job[bytes] | None:
        """The annotated video (skeleton drawn into the picture, as the CLI writes it) of a result of the current
        upload, the one `key` names (analysis_key, with edited()'s edits to its people: they are drawn as
        edited): made, being made, or None when nobody asked for it yet (start=True asks)."""
        with self._lock:
            upload = self._current()
            key = f"{key}|annotated"
            if not start and VIDEOS.get(key) is None and key not in self._videos:
                return None
            return self._video(key, lambda progress, stop: _made_video(upload, lambda path: render_annotated(
                upload.staged.path, result, path, progress, stop)))

    def _video(self, key: str, make: Callable[[Callable[[Progress], None], threading.Event], bytes]) -> bytes | Job[bytes]:
        """A follow-up video: from VIDEOS, else its job (submitted now unless one is running or has failed)."""
        if (done := VIDEOS.get(key)) is not None:
            self._videos.pop(key, None)
            return done
        job = self._videos.get(key)
        if job is None or job.state is JobState.CANCELLED:
            job = self._videos[key] = RUNNER.submit(key, lambda progress, stop: VIDEOS.get(key) or VIDEOS.put(
                key, make(progress, stop)))
        return job

    def forget_video(self, job: Job[bytes]) -> None:
        """After a failed follow-up job was shown: the next request tries again."""
        with self._lock:
            if self._videos.get(job.key) is job:
                del self._videos[job.key]

    def cancel(self) -> None:
        with self._lock:
            if self.job is not None:
                self.job.cancel()

    def forget_job(self) -> None:
        """After a failure or a cancel was shown: the next request starts afresh."""
        with self._lock:
            self.job = None

    def close(self) -> None:
        """The session ended or the user closed the video: stop its jobs and remove its staged file."""
        with self._lock:
            self._drop()

    def _current(self) -> VideoUpload:
        if self.upload is None:
            raise LookupError("no video uploaded in this session")
        return self.upload

    def _drop(self) -> None:
        jobs = [job for job in (self.job, *self._videos.values()) if job is not None]
        upload = self.upload
        self.job = self.upload = self._file_id = None
        self._videos = {}
        for job in jobs:
            job.cancel()
        if upload is not None:
            if all(job.state.finished for job in jobs):
                upload.staged.close()
            else:  # a job may still be decoding the file: remove it once they have stopped
                threading.Thread(target=_close_after, args=(jobs, upload.staged), daemon=True).start()


def _close_after(jobs: list[Job], staged: StagedFile, timeout_s: float = 60.0) -> None:
    for job in jobs:
        job.wait(timeout_s)
    staged.close()


def recording(digest: str, data: memoryview | bytes, name: str) -> ClipResult:
    """A saved .npz clip, opened once per content `digest` (ClipResult.from_npz raises RecordingError)."""
    return RECORDINGS.get_or_make(digest, lambda: ClipResult.from_npz(bytes(data), name))


def edited(key: str, result: ClipResult, edits: PeopleEdits) -> tuple[str, ClipResult]:
    """The result with the user's edits to its people, cached (a merge copies the poses), and the key naming it."""
    if edits == PeopleEdits():
        return key, result
    named = f"{key}|{edits}"
    return named, EDITED.get_or_make(named, lambda: edits.apply(result))


def motion(key: str, result: ClipResult, smoothing: Smoothing, height_m: float | None) -> Kinematics:
    """Angles and speeds of a result, cached: the smoothing controls rerun only this, never the analysis."""
    return MOTIONS.get_or_make((key, smoothing, height_m), lambda: kinematics(result.series, smoothing, height_m))


def coaching(key: str, result: ClipResult, motion: Kinematics, exercise: str | None) -> Coaching:
    """The exercise's reps, the suggestion and the events of a result, cached with its motion's settings: choosing
    another exercise reruns only this. ExerciseError for an unknown exercise or a bad user file."""
    catalogue = current_catalogue()
    return COACHINGS.get_or_make((key, motion.smoothing, motion.height_m, exercise, id(catalogue)),
                                 lambda: coach(result, motion, catalogue, exercise))


def comparison(reference: tuple[str, Performance], athlete: tuple[str, Performance], joints: tuple[str, ...],
               signal: str, offset_s: float | None) -> Comparison:
    """compare() of two (analysis key, performance) pairs, cached: the Compare page's reruns redo none of it.
    ComparisonError says why two cannot be compared."""
    (reference_key, reference_performance), (athlete_key, athlete_performance) = reference, athlete
    return COMPARISONS.get_or_make(
        (reference_key, reference_performance.person, athlete_key, athlete_performance.person, joints, signal,
         offset_s),
        lambda: compare(reference_performance, athlete_performance, joints, signal, offset_s))
