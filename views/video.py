"""Video page: a training video (or a saved pose series) in; the results view (views/results.py) out.

The analysis runs as a background job of this browser session (analysis.clips): this page submits it,
polls it in a fragment and shows its results, so touching any control, or leaving the page and coming
back, never stops or restarts it. The results come as soon as the poses are done: the review player plays
the upload itself, or a playable copy made afterwards, and the annotated video is made when asked for.
"""

from __future__ import annotations

from pathlib import PurePath

import streamlit as st

from analysis import clips
from analysis.clips import ClipSession, VideoUpload
from analysis.engine import PoseSettings
from analysis.identities import people_found
from analysis.jobs import Job, JobState
from analysis.models import ModelError
from analysis.result import ClipOptions, ClipResult, RecordingError
from analysis.series import Smoothing
from analysis.uploads import UploadError, content_digest, known_suffix, safe_stems
from analysis.video_io import VideoError
from views.clip_panels import follow_up_panel, job_panel, playback
from views.people_panel import people_panel
from views.player import Playback
from views.results import Shown, show_results
from views.shared import escape_markdown, exercise_sidebar, pose_settings_sidebar, show_model_error

@st.cache_resource(scope="session", on_release=ClipSession.close, show_spinner=False)
def clip_session() -> ClipSession:
    """This browser session's video and job; released (job cancelled, staged file removed) when the session ends."""
    return ClipSession()


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


def clip_options(upload: VideoUpload, privacy: bool) -> ClipOptions:
    """Trim and stride, applied together with the form's button so that moving them does not restart work."""
    info = upload.info
    if not clips.can_trim(info):
        return ClipOptions(privacy=privacy)
    with st.expander("Trim and frame stride"), st.form("clip_options", border=False):
        step = round(max(0.01, 1 / info.fps if info.fps else 0.1), 2)
        end = round(info.duration_s, 2)
        start_s, end_s = st.slider("Part to analyse (s)", 0.0, end, (0.0, end), step=step, format="%.2f s")
        stride = st.number_input("Frame stride", 1, 30, 1, help="Analyse every nth frame: 2 halves the work, "
                                 "at half the time resolution.")
        st.form_submit_button("Analyse this part")
    return clips.trim_options(info, start_s, end_s, stride, privacy)


def annotated_download(session: ClipSession, key: str, result: ClipResult, name: str) -> None:
    """The annotated video of the result `key` names (its people as edited), made when the user asks (with
    progress), then downloadable."""
    made = session.annotated_video(key, result)
    if made is None:
        st.button("Make the annotated video", icon=":material/movie:", on_click=session.annotated_video,
                  args=(key, result, True),
                  help="An MP4 with the skeleton drawn into the picture, as the command line writes it.")
    elif isinstance(made, Job):
        if made.state is JobState.FAILED:
            st.error(f"The annotated video could not be made: {made.error}", icon=":material/movie:")
            st.button("Try again", key="annotated_again", on_click=session.forget_video, args=(made,))
        else:
            follow_up_panel(made, "Making the annotated video", "Drawing")
    else:
        st.download_button("Annotated video", made, f"{safe_stems([name])[0]}_annotated.mp4", "video/mp4",
                           key="download_annotated", on_click="ignore", icon=":material/download:")


def video_view(session: ClipSession, upload: VideoUpload, settings: PoseSettings, privacy: bool,
               smoothing: Smoothing, height_m: float | None, exercise: str | None) -> None:
    caption = st.empty()
    caption.caption(clips.video_caption(escape_markdown(upload.name), upload.info, None))
    options = clip_options(upload, privacy)
    outcome = session.analysis(settings, options)
    if isinstance(outcome, Job):
        state = outcome.state  # read once: the job moves on while the page renders
        if state is JobState.CANCELLED:
            st.info("The analysis was cancelled: nothing was kept and its temporary files were removed.",
                    icon=":material/stop:")
            st.button("Analyse again", on_click=session.forget_job, type="primary")
            return
        if state is JobState.FAILED:
            st.error(f"**{escape_markdown(upload.name)}**: {outcome.error}", icon=":material/movie:")
            st.button("Try again", on_click=session.forget_job)
            return
        if state is not JobState.DONE:
            if note := clips.heads_up(upload.info, options):
                st.warning(note, icon=":material/timer:")
            job_panel(session, outcome)
            return
        outcome = outcome.result
    caption.caption(clips.video_caption(escape_markdown(upload.name), upload.info, outcome))
    key = clips.analysis_key(upload.staged.digest, settings, options)
    edited_key, edited = clips.edited(key, outcome, people_panel(outcome, upload.staged.path, privacy, key))
    if people_found(outcome) and not people_found(edited):
        st.info("Everyone is left out: tick “Analyse” for someone under People to see their results.",
                icon=":material/groups:")
        return
    motion = clips.motion(edited_key, edited, smoothing, height_m)
    with st.container():  # the copy's progress bar comes and goes inside it: the player below stays in place
        shown_video = playback(session, upload, privacy)
    show_results(Shown(edited, motion, shown_video,
                       more_downloads=lambda: annotated_download(session, edited_key, edited, upload.name),
                       coaching=clips.coaching(edited_key, edited, motion, exercise), key=key))


def recording_view(data: memoryview, name: str, smoothing: Smoothing, height_m: float | None,
                   exercise: str | None) -> None:
    digest = content_digest(data)
    result = clips.recording(digest, data, name)
    series = result.series
    st.caption(f"{escape_markdown(name)} · {series.frames} frames over "
               f"{float(series.times_s[-1] - series.times_s[0]):.1f} s · {series.width} × {series.height}")
    motion = clips.motion(digest, result, smoothing, height_m)
    show_results(Shown(result, motion, Playback(note="A saved pose series holds no pictures: the skeleton is drawn on "
                                                     "a blank background."),
                       coaching=clips.coaching(digest, result, motion, exercise), key=digest))


st.title("Video")
pose_settings, privacy_mode = pose_settings_sidebar()
_, chosen_exercise = exercise_sidebar()
clip_smoothing, person_height = motion_sidebar()
limit_mb = int(st.get_option("server.maxUploadSize"))
chosen = st.file_uploader(f"A video (MP4, MOV, AVI, WebM or MKV, as phones record them; up to {limit_mb:,} MB), "
                          "or a pose series saved as .npz", type=[*clips.VIDEO_TYPES, clips.RECORDING_TYPE])
this_session = clip_session()
try:
    if chosen is not None and PurePath(chosen.name).suffix.lower() == f".{clips.RECORDING_TYPE}":
        recording_view(chosen.getbuffer(), chosen.name, clip_smoothing, person_height, chosen_exercise)
    else:
        if chosen is not None:
            with st.spinner("Reading the video…"):
                this_session.use_upload(chosen.file_id, chosen.getvalue(), chosen.name,
                                        known_suffix(chosen.name, clips.VIDEO_TYPES, "video"))
        if (current := this_session.upload) is None:
            st.caption("Drop a training video: a player with the skeleton and angles over every frame, frame "
                       "stepping and measuring, joint angles and speeds over time, a summary per joint and exports. Everything is computed "
                       "on this machine; the video never leaves it.")
        else:
            if chosen is None:
                st.button("Close this video", on_click=this_session.close, icon=":material/close:",
                          help="This video stays here while you use other pages; close it to start afresh.")
            video_view(this_session, current, pose_settings, privacy_mode, clip_smoothing, person_height,
                       chosen_exercise)
except (VideoError, RecordingError, UploadError) as problem:
    name = chosen.name if chosen is not None else ""
    st.error(f"**{escape_markdown(name)}**: {problem}", icon=":material/movie:")
except ModelError as problem:
    show_model_error(problem)
