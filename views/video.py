"""Video page: a training video (or a saved recording) in; the annotated video, a frame scrubber with its
landmark table, joint-angle and speed curves, a summary, data quality and exports out.

The pose analysis runs in the page's own script run, so that its progress bar updates live and any click
(Cancel, or any other widget) stops it: Streamlit raises inside the progress callback, analyse_video removes
its partial output and the temporary folder goes with the `with` block. Finished analyses are kept in
st.cache_data (see `kept`); kinematics, which the smoothing controls change, are cached on their own.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePath

import numpy as np
import streamlit as st
from streamlit.typing import UploadedFile

from analysis import exports
from analysis.angles import ANGLE_NAMES, ANGLES, DEFAULT_VISIBILITY_THRESHOLD
from analysis.drawing import draw_skeleton_only
from analysis.engine import PoseSettings
from analysis.figures import Quality, quality_strip, time_series
from analysis.landmarks import LANDMARK_NAMES
from analysis.models import ModelError
from analysis.series import Kinematics, PoseSeries, Smoothing, kinematics, nyquist_hz
from analysis.video import ClipAnalysis, ClipOptions, Progress, analyse_video, expected_frames
from analysis.video_io import VideoError, VideoInfo, jpeg_stills, probe, still_step
from views.shared import download_stem, pose_settings_sidebar, show_model_error

VIDEO_TYPES = ("mp4", "mov", "m4v", "avi", "webm", "mkv")
RECORDING_TYPE = "npz"
PROGRESS_EVERY_S = 0.2
HEAVY_PIXELS = 2560 * 1440  # above this, or above HEAVY_FPS, the page says analysing will take a while
HEAVY_FPS = 50
HEAVY_FRAMES = 9000  # five minutes at 30 frames/s
DEFAULT_JOINTS = ["left knee", "right knee", "left hip", "right hip", "left shoulder", "right shoulder"]
DEFAULT_SPEED_LANDMARKS = ["left_wrist", "right_wrist", "left_ankle", "right_ankle"]
CANCELLED = "video_cancelled"  # session state: the analysis request the user cancelled

NO_PERSON_IN_VIDEO = (
    "No person was found in any analysed frame. Pose detection works best when the whole body is in frame, "
    "well lit and not too small; if the person appears only later, check the trim; a lower minimum detection "
    "confidence in the sidebar may also help."
)


# --- uploads ---------------------------------------------------------------------------------------------------------


def fingerprint(upload: UploadedFile) -> str:
    """A cheap identity for an upload: its size and 17 samples of 64 KiB, not a hash of up to 1 GB on every rerun.

    Unlike the uploader's file id it survives uploading the same file again, so the cache still answers.
    """
    with upload.getbuffer() as data:
        digest = hashlib.blake2b(str(len(data)).encode(), digest_size=16)
        step = max(1, len(data) // 16)
        for start in range(0, len(data), step):
            digest.update(data[start:start + 65536])
        digest.update(data[-65536:])
        return digest.hexdigest()


def suffix_of(name: str) -> str:
    suffix = PurePath(name).suffix.lower().lstrip(".")
    return suffix if suffix in VIDEO_TYPES else "video"


@contextmanager
def staged(upload: UploadedFile, suffix: str) -> Iterator[Path]:
    """The upload as a file in a fresh temporary folder, removed afterwards, whatever happens: PyAV reads paths.

    The file is named by us (upload.<known extension>), never by the user's file name.
    """
    with tempfile.TemporaryDirectory(prefix="posescope-") as folder:
        path = Path(folder) / f"upload.{suffix}"
        with upload.getbuffer() as data:
            path.write_bytes(data)
        yield path


@st.cache_data(max_entries=16, show_spinner="Reading the video…")
def describe(key: str, suffix: str, _upload: UploadedFile) -> VideoInfo:
    """What the video holds (size, rate, duration), for the trim controls; `key` is the upload's fingerprint."""
    with staged(_upload, suffix) as path:
        return probe(path)


class RecordingError(ValueError):
    """An .npz file that is not a PoseScope recording; the message is one sentence for the user."""


@st.cache_data(max_entries=16, show_spinner="Opening the recording…")
def open_recording(key: str, _upload: UploadedFile) -> PoseSeries:
    """A PoseSeries saved as .npz (the Webcam page's recorder, or this page's export)."""
    try:
        return PoseSeries.from_npz(_upload.getvalue())
    except ValueError as error:
        raise RecordingError(str(error)) from None


# --- the analysis ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoResult:
    """A finished analysis: the poses, the annotated video (H.264 MP4) and, for the scrubber, JPEG stills of
    every `still_step`-th annotated frame (still k shows frame k × still_step)."""

    clip: ClipAnalysis
    preview: bytes
    stills: tuple[bytes, ...]
    still_step: int


class _NotAnalysed(LookupError):
    """`kept` has no analysis for these arguments yet."""


Kept = tuple[ClipAnalysis, bytes, tuple[bytes, ...], int]  # VideoResult's fields: pickle can't find a page's classes


@st.cache_data(max_entries=6, show_spinner=False)
def kept(key: str, settings: PoseSettings, options: ClipOptions, _fresh: Kept | None = None) -> Kept:
    """The analysis of the upload `key` with these settings, from Streamlit's data cache.

    It is computed outside (`analyse`) and handed in once as `_fresh`, which is not part of the cache key.
    A cached function must not run the analysis itself: Streamlit replays the elements a cached function drew,
    and it cannot replay updates to a progress bar made outside the function (CacheReplayClosureError on the
    next hit). A miss raises _NotAnalysed, which is not cached.
    """
    if _fresh is None:
        raise _NotAnalysed
    return _fresh


def analyse(upload: UploadedFile, suffix: str, settings: PoseSettings, options: ClipOptions,
            on_progress: Callable[[Progress], None], on_stills: Callable[[], None]) -> VideoResult:
    """Pose, the annotated preview and the scrubber's stills, in a temporary folder removed afterwards."""
    with staged(upload, suffix) as source:
        preview = source.with_name("annotated.mp4")
        clip = analyse_video(source, settings, options, preview, on_progress)
        on_stills()
        step = still_step(clip.series.frames)
        return VideoResult(clip, preview.read_bytes(), tuple(jpeg_stills(preview, step, on_frame=on_stills)), step)


class ProgressPanel:
    """The progress bar, its sentence and the Cancel button while a video is analysed."""

    def __init__(self, request: str) -> None:
        self._slot = st.empty()
        with self._slot.container():
            bar, button = st.columns([7, 1], vertical_alignment="center")
            self._bar = bar.progress(0.0, text="Loading the pose model and opening the video…")
            button.button("Cancel", key="cancel_analysis", on_click=_cancel, args=(request,), icon=":material/stop:",
                          help="Stop the analysis. Nothing is kept, and temporary files are removed.")
        self._last = 0.0

    def update(self, progress: Progress) -> None:
        """Called by analyse_video every few frames; each update is also where a click stops the run."""
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_S and progress.frames_done < progress.frames_expected:
            return
        self._last = now
        self._bar.progress(progress.fraction, text=progress_sentence(progress))

    def stills(self) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self._bar.progress(1.0, text="Preparing the frame scrubber…")

    def close(self) -> None:
        self._slot.empty()


def _cancel(request: str) -> None:
    st.session_state[CANCELLED] = request


def _forget_cancel() -> None:
    st.session_state.pop(CANCELLED, None)


def progress_sentence(progress: Progress) -> str:
    left = progress.remaining_s
    eta = "" if math.isnan(left) else f" · about {duration_words(left)} left"
    return (f"Analysing: {progress.frames_done} / {progress.frames_expected} frames · "
            f"{progress.fps:.0f} frames/s{eta}")


def duration_words(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


@st.cache_data(max_entries=32, show_spinner=False)
def cached_kinematics(key: str, smoothing: Smoothing, height_m: float | None, _series: PoseSeries) -> Kinematics:
    """Angles and speeds of a series; `key` names the series (upload, pose settings, clip options).

    The smoothing controls only rerun this, never the pose analysis.
    """
    return kinematics(_series, smoothing, height_m)


# --- the sidebar and the clip options --------------------------------------------------------------------------------


def motion_sidebar() -> tuple[Smoothing, float | None]:
    with st.sidebar:
        st.header("Smoothing")
        smooth = st.toggle("Low-pass filter", value=True,
                           help="A zero-phase Butterworth filter (4th order): removes jitter without delaying peaks.")
        cutoff = st.slider("Cutoff (Hz)", 1.0, 15.0, 6.0, 0.5, disabled=not smooth,
                           help="Movements faster than this are treated as noise. 4–8 Hz suits most human movement.")
        max_gap = st.slider("Longest gap to fill (s)", 0.0, 1.0, 0.25, 0.05,
                            help="Landmarks hidden for at most this long are interpolated; longer gaps stay empty.")
        st.header("Calibration")
        height = st.number_input("Person's height (m)", min_value=0.5, max_value=2.5, value=None, step=0.01,
                                 placeholder="for speeds in m/s",
                                 help="Scales pixels to metres from the person's nose-to-heel length while "
                                      "standing upright, roughly parallel to the image.")
    return Smoothing(cutoff if smooth else None, max_gap), height


def clip_options(info: VideoInfo, privacy: bool) -> ClipOptions:
    """Trim and stride, applied together with the form's button so that moving them does not restart work."""
    if info.duration_s <= 2 / max(info.fps, 1.0):  # a frame or two: nothing to trim
        return ClipOptions(privacy=privacy)
    with st.expander("Trim and frame stride"), st.form("clip_options", border=False):
        step = round(max(0.01, 1 / info.fps if info.fps else 0.1), 2)
        start, end = st.slider("Part to analyse (s)", 0.0, round(info.duration_s, 2), (0.0, round(info.duration_s, 2)),
                               step=step, format="%.2f s")
        stride = st.number_input("Frame stride", 1, 30, 1, help="Analyse every nth frame: 2 halves the work, "
                                 "at half the time resolution.")
        st.form_submit_button("Analyse this part", on_click=_forget_cancel)
    full = end >= round(info.duration_s, 2)
    return ClipOptions(start_s=start, end_s=None if full else end, stride=int(stride), privacy=privacy)


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


# --- results ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """What the results section shows, from a video or a recording."""

    name: str
    series: PoseSeries
    motion: Kinematics
    smoothing: Smoothing
    height_m: float | None
    result: VideoResult | None = None  # None for a recording: no video, the skeleton is drawn instead


@st.fragment
def show_results(shown: Shown) -> None:
    """Everything below the upload; a fragment, so that scrubbing and choosing joints rerun only this."""
    series, motion = shown.series, shown.motion
    people = np.flatnonzero(series.present.any(axis=0))
    if len(people) == 0:
        if shown.result:
            st.video(shown.result.preview)
        st.warning(NO_PERSON_IN_VIDEO, icon=":material/person_search:")
        return
    step = shown.result.still_step if shown.result else still_step(series.frames)
    scrub_frames = np.arange(0, series.frames, step)

    top = st.columns(2, gap="medium")
    with top[0]:
        if shown.result:
            st.video(shown.result.preview)
            st.caption("Annotated video (H.264), skeleton on every analysed frame.")
        else:
            st.info("A recording holds poses only, no video: the frame view draws its skeleton.", icon=":material/save:")
    scrubber, chooser = st.columns([5, 1], vertical_alignment="bottom") if len(people) > 1 else (st.container(), None)
    person = int(people[0])
    if chooser is not None:
        person = chooser.selectbox("Person", people.tolist(), format_func=lambda p: f"person {p + 1} "
                                   f"({int(series.present[:, p].sum())} frames)")
    frame = 0
    if len(scrub_frames) > 1:
        sparse = f" In a clip this long, one frame in {step} can be shown." if step > 1 else ""
        frame = scrubber.select_slider("Frame at", scrub_frames.tolist(), value=int(scrub_frames[0]),
                                       format_func=lambda i: f"{series.times_s[i]:.2f} s",
                                       help="Shows that frame and its landmarks, and marks its time on the "
                                            f"charts.{sparse}")
    time_s = float(series.times_s[frame])
    with top[1]:
        if shown.result and frame // step < len(shown.result.stills):
            st.image(shown.result.stills[frame // step])
        else:
            st.image(draw_skeleton_only(series.frame(frame)))
        st.caption(f"Frame {int(series.frame_index[frame])} at {time_s:.2f} s"
                   + ("" if series.present[frame, person] else f": person {person + 1} is not in this frame"))

    if series.frames == 1:
        st.warning("This video has a single frame, so there is no movement to chart: its landmarks and angle "
                   "summary are below.", icon=":material/movie:")
    charts, tables = st.columns([3, 2], gap="medium")
    with charts:
        if series.frames > 1:
            curves(shown, person, time_s)
    with tables:
        st.subheader("Landmarks", help="At the scrubbed frame. x, y: fraction of the frame's width and height; "
                     "x_px, y_px: pixels; z: depth relative to the hips; world x, y, z: metres from the point "
                     "between the hips (y points down).")
        landmarks = series.frame_table(frame, person)
        if landmarks.empty:
            st.caption(f"Person {person + 1} was not found in this frame.")
        else:
            st.dataframe(landmarks, hide_index=True, height=440,
                         column_config={c: st.column_config.NumberColumn(format="%.3f")
                                        for c in ("x", "y", "z", "visibility", "presence",
                                                  "world_x", "world_y", "world_z")}
                         | {c: st.column_config.NumberColumn(format="%.0f") for c in ("x_px", "y_px")})
        st.subheader("Summary", help="Over the whole clip, from the smoothed 2D angles: the lowest and highest "
                     "value, their difference (range of motion) and the mean. Segment angles are directions and "
                     "are summarised around the circle.")
        meanings = {"what the numbers mean": [a.meaning for a in ANGLES]}
        summary = exports.angle_summary(motion, person).assign(**meanings)
        st.dataframe(summary, hide_index=True, height=440,
                     column_config={c: st.column_config.NumberColumn(f"{c} (°)", format="%.1f")
                                    for c in ("min", "max", "range", "mean")})

    quality = Quality.of(series.present[:, person], series.visibility[:, person],
                         motion.interpolated[:, person], DEFAULT_VISIBILITY_THRESHOLD)
    st.subheader("Data quality", help="Red: the person was not found. Amber: share of landmarks the model thinks "
                 "hidden. Blue: share of landmarks filled in across a short gap.")
    st.plotly_chart(quality_strip(series.times_s, quality, time_s if series.frames > 1 else None),
                    key="quality_chart", config={"displayModeBar": False})
    affected = quality.frames_affected()
    st.caption(f"Of {series.frames} frames: no person in {affected['No person']}, low-visibility landmarks in "
               f"{affected['Low visibility']}, interpolated landmarks in {affected['Interpolated']}.")
    downloads(shown)


def curves(shown: Shown, person: int, time_s: float) -> None:
    series, motion = shown.series, shown.motion
    st.subheader("Joint angles", help="Thin faint lines: the raw angles, frame by frame. Bold: after gap filling "
                 "and the low-pass filter (sidebar). The dotted red line marks the scrubbed frame.")
    pick, plane_box = st.columns([5, 2], vertical_alignment="bottom")
    joints = pick.multiselect("Joints", ANGLE_NAMES, default=DEFAULT_JOINTS, key="joints", wrap=True,
                              placeholder="Choose joints to chart")
    plane = plane_box.segmented_control(
        "Angles from", ["2D", "3D"], default="2D", key="plane", required=True,
        format_func=lambda p: {"2D": "Image", "3D": "World"}[p],
        help="Image: in the picture, as you see it (raw and smoothed). World: from the model's 3D landmarks, "
             "which do not shrink when a limb points towards the camera (smoothed).")
    columns = [ANGLE_NAMES.index(name) for name in joints]
    if plane == "3D":
        angles, raw = motion.angles_3d[:, person, columns], None
    else:
        angles, raw = motion.angles_2d[:, person, columns], motion.angles_2d_raw[:, person, columns]
    st.plotly_chart(time_series(series.times_s, angles, joints, "Angle (°)", raw=raw, marker_s=time_s),
                    key="angle_chart")
    if shown.smoothing.has_no_effect(series.times_s):
        st.caption(f"The cutoff is at or above {nyquist_hz(series.times_s):.1f} Hz, half the analysed frame rate, "
                   "so the low-pass filter leaves these curves unchanged.")

    metres = motion.speed_m is not None and bool(np.isfinite(motion.speed_m[:, person]).any())
    st.subheader("Speed", help="Linear: how fast each landmark moves in the picture, in pixels per second, or in "
                 "metres per second once the person's height is given. Angular: how fast each chosen joint angle "
                 "changes, in degrees per second. Both from the smoothed data.")
    kind_box, pick = st.columns([2, 3], vertical_alignment="bottom")
    kind = kind_box.segmented_control("Speed of", ["landmarks", "joints"], default="landmarks", key="speed_kind",
                                      required=True, format_func=str.capitalize)
    if kind == "joints":
        pick.caption("The joints chosen above.")
        st.plotly_chart(time_series(series.times_s, motion.angular_velocity[:, person, columns], joints,
                                    "Angular velocity (°/s)", marker_s=time_s), key="speed_chart")
        return
    landmarks = pick.multiselect("Landmarks", LANDMARK_NAMES, default=DEFAULT_SPEED_LANDMARKS, key="speed_landmarks",
                                 wrap=True, placeholder="Choose landmarks to chart")
    points = [LANDMARK_NAMES.index(name) for name in landmarks]
    speeds = motion.speed_m if metres and motion.speed_m is not None else motion.speed_px
    st.plotly_chart(time_series(series.times_s, speeds[:, person, points], landmarks,
                                "Speed (m/s)" if metres else "Speed (px/s)", marker_s=time_s), key="speed_chart")
    if shown.height_m and not metres:
        st.caption("The height could not calibrate this person: the nose and heels are never all visible, so "
                   "speeds stay in pixels per second.")
    elif not shown.height_m:
        st.caption("Give the person's height in the sidebar for speeds in metres per second.")


def downloads(shown: Shown) -> None:
    series, motion, stem = shown.series, shown.motion, download_stem(shown.name)
    st.subheader("Downloads")
    buttons: list[tuple[str, bytes | Callable[[], str | bytes], str, str]] = []
    clip = shown.result.clip if shown.result else None
    if shown.result:
        buttons.append(("Annotated video", shown.result.preview, f"{stem}_annotated.mp4", "video/mp4"))
    buttons += [
        ("Landmarks CSV", lambda: exports.landmarks_csv(series), f"{stem}_landmarks.csv", "text/csv"),
        ("Angles CSV", lambda: exports.angles_csv(series, motion), f"{stem}_angles.csv", "text/csv"),
    ]
    if clip:
        summary = partial(exports.summary_json, clip, motion, shown.smoothing, height_m=shown.height_m,
                          source=shown.name)
        buttons.append(("Summary JSON", summary, f"{stem}_summary.json", "application/json"))
    for person in np.flatnonzero(series.present.any(axis=0)):
        buttons.append((f"TRC person {person + 1}", partial(exports.person_trc, series, motion, int(person), clip),
                        f"{stem}_{exports.trc_name(int(person))}", "text/plain"))
    if clip:
        buttons.append(("Pose series (.npz)", series.to_npz, f"{stem}_series.npz", "application/octet-stream"))
    row = st.container(horizontal=True)
    for label, data, file_name, mime in buttons:
        row.download_button(label, data, file_name, mime, key=f"download_{label}", on_click="ignore",
                            icon=":material/download:")
    st.caption("Landmarks CSV: raw landmarks, one row per frame, person and landmark. Angles CSV: smoothed 2D "
               "and 3D angles. TRC: one person's smoothed world landmarks for OpenSim. Pose series: the poses, "
               "to open here again later.")


def video_caption(name: str, info: VideoInfo, result: VideoResult | None) -> str:
    parts = [name, f"{info.width} × {info.height}", f"{info.fps:.3g} frames/s", f"{info.duration_s:.1f} s",
             info.codec.upper()]
    if info.rotation_deg:
        parts.append(f"turned {info.rotation_deg}°")
    text = " · ".join(parts)
    if result:
        clip = result.clip
        frames = f"{clip.series.frames} frame{'s' if clip.series.frames != 1 else ''}"
        text += (f" — analysed {frames} in {clip.elapsed_s:.1f} s "
                 f"({clip.series.frames / max(clip.elapsed_s, 1e-9):.0f} frames/s)")
    return text


# --- the page --------------------------------------------------------------------------------------------------------


def video_page(upload: UploadedFile, settings: PoseSettings, privacy: bool, smoothing: Smoothing,
               height_m: float | None) -> None:
    key, suffix = fingerprint(upload), suffix_of(upload.name)
    info = describe(key, suffix, upload)
    caption = st.empty()
    caption.caption(video_caption(upload.name, info, None))
    options = clip_options(info, privacy)
    request = f"{key}|{settings}|{options}"
    if st.session_state.get(CANCELLED) == request:
        st.info("The analysis was cancelled: nothing was kept and its temporary files were removed.", icon=":material/stop:")
        st.button("Analyse again", on_click=_forget_cancel, type="primary")
        return
    try:
        result = VideoResult(*kept(key, settings, options))
    except _NotAnalysed:
        if note := heads_up(info, options):
            st.warning(note, icon=":material/timer:")
        panel = ProgressPanel(request)
        try:
            result = analyse(upload, suffix, settings, options, panel.update, panel.stills)
        except (VideoError, ModelError):
            panel.close()
            raise
        panel.close()
        kept(key, settings, options, _fresh=(result.clip, result.preview, result.stills, result.still_step))
    caption.caption(video_caption(upload.name, info, result))
    if result.clip.warning:
        st.warning(result.clip.warning, icon=":material/content_cut:")
    series = result.clip.series
    motion = cached_kinematics(request, smoothing, height_m, _series=series)
    show_results(Shown(upload.name, series, motion, smoothing, height_m, result))


def recording_page(upload: UploadedFile, smoothing: Smoothing, height_m: float | None) -> None:
    key = fingerprint(upload)
    series = open_recording(key, upload)
    st.caption(f"{upload.name} · recording of {series.frames} frames over "
               f"{float(series.times_s[-1] - series.times_s[0]):.1f} s · {series.width} × {series.height}")
    show_results(Shown(upload.name, series, cached_kinematics(key, smoothing, height_m, _series=series), smoothing,
                       height_m))


st.title("Video")
pose_settings, privacy_mode = pose_settings_sidebar()
clip_smoothing, person_height = motion_sidebar()
limit_mb = int(st.get_option("server.maxUploadSize"))
chosen = st.file_uploader(f"A video (MP4, MOV, AVI, WebM or MKV, as phones record them; up to {limit_mb:,} MB), "
                          "or a pose series saved as .npz", type=[*VIDEO_TYPES, RECORDING_TYPE])
if chosen is None:
    st.caption("Drop a training video: the skeleton on every frame, joint angles and speeds over time, a frame "
               "scrubber with its landmarks, a summary per joint and exports. Everything is computed on this "
               "machine; the video never leaves it.")
else:
    try:
        if PurePath(chosen.name).suffix.lower() == f".{RECORDING_TYPE}":
            recording_page(chosen, clip_smoothing, person_height)
        else:
            video_page(chosen, pose_settings, privacy_mode, clip_smoothing, person_height)
    except (VideoError, RecordingError) as problem:
        st.error(f"**{chosen.name}**: {problem}", icon=":material/movie:")
    except ModelError as problem:
        show_model_error(problem)
