"""Compare page: an athlete's video (or saved analysis) against a reference's; where, in degrees and when, they differ.

Each side is analysed as on the Video page, as a background job of its own (analysis.clips), so the two go on
while the user touches anything. Once both are in, analysis.compare synchronises and warps them; this page shows
both review players, one moment slider that moves both, the two skeletons over each other, both angle curves on
one chart and the per-joint differences, and offers the comparison's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

import streamlit as st

from analysis import clips, figures
from analysis.angles import ANGLE_NAMES
from analysis.clips import ClipSession
from analysis.compare import (
    DEFAULT_JOINTS,
    FILES,
    SIGNALS,
    Comparison,
    ComparisonError,
    Performance,
    comparison_file,
)
from analysis.engine import PoseSettings
from analysis.jobs import Job, JobState
from analysis.models import ModelError
from analysis.result import ClipOptions, ClipResult, RecordingError
from analysis.series import Kinematics, Smoothing
from analysis.uploads import UploadError, content_digest, known_suffix
from analysis.video_io import VideoError
from views.clip_panels import job_panel, playback
from views.player import Playback, review_player, seek
from views.shared import escape_markdown, pose_settings_sidebar, show_model_error

SIDES = ("reference", "athlete")
MIMETYPES = {"comparison.json": "application/json", "aligned.csv": "text/csv", "comparison.png": "image/png"}


@st.cache_resource(scope="session", on_release=ClipSession.close, show_spinner=False)
def side_session(side: str) -> ClipSession:
    """This browser session's video and job for one side; released (job cancelled, file removed) with the session."""
    return ClipSession()


@dataclass(frozen=True)
class Side:
    """One side once analysed: its result, its kinematics, what its player plays and its analysis key."""

    name: str
    result: ClipResult
    motion: Kinematics
    playback: Playback
    key: str


def side_input(side: str, settings: PoseSettings, privacy: bool) -> Side | None:
    """The uploader of one side and its analysis's progress; the side once analysed, else None."""
    limit_mb = int(st.get_option("server.maxUploadSize"))
    chosen = st.file_uploader(f"The {side}: a video (up to {limit_mb:,} MB) or a pose series saved as .npz",
                              type=[*clips.VIDEO_TYPES, clips.RECORDING_TYPE], key=f"{side}_file")
    session = side_session(side)
    try:
        if chosen is not None and PurePath(chosen.name).suffix.lower() == f".{clips.RECORDING_TYPE}":
            digest = content_digest(chosen.getbuffer())
            result = clips.recording(digest, chosen.getbuffer(), chosen.name)
            return Side(chosen.name, result, clips.motion(digest, result, Smoothing(), None),
                        Playback(note="A saved pose series holds no pictures: the skeleton is drawn on a blank "
                                      "background."), digest)
        if chosen is not None:
            with st.spinner("Reading the video…"):
                session.use_upload(chosen.file_id, chosen.getvalue(), chosen.name,
                                   known_suffix(chosen.name, clips.VIDEO_TYPES, "video"))
        if (upload := session.upload) is None:
            return None
        if chosen is None:
            st.button("Close this video", key=f"{side}_close", on_click=session.close, icon=":material/close:",
                      help="This video stays here while you use other pages; close it to choose another.")
        options = ClipOptions(privacy=privacy)
        outcome = session.analysis(settings, options)
        if isinstance(outcome, Job):
            state = outcome.state
            if state in (JobState.FAILED, JobState.CANCELLED):
                st.error(f"**{escape_markdown(upload.name)}**: "
                         f"{outcome.error if state is JobState.FAILED else 'the analysis was cancelled.'}",
                         icon=":material/movie:")
                st.button("Analyse again", key=f"{side}_again", on_click=session.forget_job)
                return None
            if state is not JobState.DONE:
                job_panel(session, outcome, key=f"{side}_cancel")
                return None
            outcome = outcome.result
        key = clips.analysis_key(upload.staged.digest, settings, options)
        st.caption(clips.video_caption(escape_markdown(upload.name), upload.info, outcome))
        with st.container():
            shown = playback(session, upload, privacy)
        return Side(upload.name, outcome, clips.motion(key, outcome, Smoothing(), None), shown, key)
    except (VideoError, RecordingError, UploadError) as problem:
        st.error(f"**{escape_markdown(chosen.name if chosen is not None else '')}**: {problem}",
                 icon=":material/movie:")
    except ModelError as problem:
        show_model_error(problem)
    return None


def person_of(side: str, shown: Side) -> int:
    """The person compared on this side: a choice when the analysis found room for several."""
    if shown.result.series.people == 1:
        return 0
    return st.selectbox(f"Person in the {side}'s video", range(shown.result.series.people), key=f"{side}_person",
                        format_func=lambda person: f"Person {person + 1}")


def comparison_view(reference: Side, athlete: Side) -> None:
    st.header("Comparison")
    controls = st.columns([2, 2, 3])
    signal = controls[0].selectbox("Synchronise by", SIGNALS, key="signal",
                                   help="The signal cross-correlated to find when the athlete's video starts in the "
                                        "reference's time: the hips' vertical speed suits most movements.")
    by_hand = controls[1].toggle("Set the offset by hand", key="by_hand")
    offset_s = controls[1].number_input("Athlete's video starts at (s of the reference)", value=0.0, step=0.01,
                                        format="%.3f", key="offset", disabled=not by_hand)
    joints = tuple(controls[2].multiselect("Joints", ANGLE_NAMES, default=list(DEFAULT_JOINTS), key="joints"))
    performances = []
    for side, shown in zip(SIDES, (reference, athlete)):
        person = person_of(side, shown)
        performances.append((shown.key, Performance.of(shown.result, person, motion=shown.motion)))
    try:
        compared = clips.comparison(performances[0], performances[1], joints, signal, offset_s if by_hand else None)
    except ComparisonError as problem:
        st.error(str(problem), icon=":material/compare_arrows:")
        return
    sync = compared.sync
    how = ("set by hand" if sync.correlation is None
           else f"found by cross-correlating the {sync.signal} (correlation {sync.correlation:.2f})")
    st.markdown(f"The athlete's video starts at **{sync.offset_s:.3f} s** of the reference's, {how}; the "
                f"movements are aligned over {compared.reference_times_s[-1] - compared.reference_times_s[0]:.1f} s "
                "of the reference.")

    start, end = float(compared.reference_times_s[0]), float(compared.reference_times_s[-1])
    moment = st.slider("Moment (s of the reference)", start, end, start, step=0.01, format="%.2f s", key="moment",
                       help="Moves both players: the athlete's to the matching moment of their movement.")
    step = compared.step_at(moment)
    athlete_s = float(compared.athlete_times_s[step])
    if st.session_state.get("moment_shown") != moment:  # a new moment: both players go there
        st.session_state["moment_shown"] = moment
        seek("compare_reference", moment)
        seek("compare_athlete", athlete_s)
    columns = st.columns(2)
    for column, side, shown, (_, performance) in zip(columns, SIDES, (reference, athlete), performances):
        with column:
            st.subheader(f"{side.capitalize()}: {escape_markdown(shown.name)}")
            review_player(shown.result, shown.motion, shown.playback, person=performance.person, joints=joints,
                          key=f"compare_{side}")
    overlay, chart = st.columns([2, 3])
    with overlay:
        st.caption(f"Both skeletons at {moment:.2f} s of the reference and {athlete_s:.2f} s of the athlete, centred "
                   "on the hips and scaled to one torso length")
        st.plotly_chart(figures.overlaid_skeletons([("reference", performances[0][1].pose_at(moment)),
                                                    ("athlete", performances[1][1].pose_at(athlete_s))]),
                        key="overlay", config={"displaylogo": False})
    with chart:
        st.caption("Angles along the aligned movement: the reference solid, the athlete dashed")
        st.plotly_chart(figures.aligned_curves(compared, moment), key="aligned", config={"displaylogo": False},
                        on_select=lambda: _moment_from_chart(), selection_mode="points")
    st.subheader("Differences per joint")
    st.caption("Athlete minus reference over the aligned movement; the largest difference, and when it happens in "
               "each video and how far through the movement. Pick a row to see that moment; click the chart above "
               "for any other.")
    table = compared.difference_table()
    st.dataframe(table, hide_index=True, key="differences", on_select=lambda: _moment_from_row(compared),
                 selection_mode="single-row",
                 column_config={name: st.column_config.NumberColumn(format="%.1f")
                                for name in table.columns if name != "joint"})
    row = st.container(horizontal=True)
    for name in FILES:  # each made when clicked
        row.download_button(name, lambda name=name: comparison_file(compared, name), name, MIMETYPES[name],
                            key=f"download_{name}", on_click="ignore", icon=":material/download:")


def _moment_from_chart() -> None:
    """A point clicked on the aligned curves becomes the moment both players show."""
    points = ((st.session_state.get("aligned") or {}).get("selection") or {}).get("points") or []
    if points and isinstance(points[0].get("x"), (int, float)):
        st.session_state["moment"] = float(points[0]["x"])


def _moment_from_row(compared: Comparison) -> None:
    """A joint picked in the table: the moment of its largest difference."""
    rows = ((st.session_state.get("differences") or {}).get("selection") or {}).get("rows") or []
    if rows:
        st.session_state["moment"] = compared.differences[rows[0]].max_at_reference_s


st.title("Compare")
pose_settings, privacy_mode = pose_settings_sidebar()
st.caption("An athlete's performance against a reference: both are synchronised automatically, aligned in time so "
           "that phases line up when one moves faster, and compared joint by joint. Each video is analysed on this "
           "machine and never leaves it.")
sides = []
for side_name, column in zip(SIDES, st.columns(2)):
    with column:
        sides.append(side_input(side_name, pose_settings, privacy_mode))
if all(sides):
    comparison_view(*sides)
