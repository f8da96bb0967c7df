"""The results of a clip, from a video or a webcam recording: one view that both pages show.

The review player with the frame's landmark table and the measurements, then charts, the summary, data
quality and the downloads, all from the clip's one result (ClipResult) and its Kinematics. Clicking a chart
or picking a rep or an event takes the player to that moment; the player's paused frame is the one the
tables and the charts' cursor show.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from analysis import exports
from analysis.angles import ANGLE_NAMES, ANGLES, DEFAULT_VISIBILITY_THRESHOLD
from analysis.coaching import Coaching
from analysis.figures import (
    Quality,
    exercise_chart,
    mark_reps,
    quality_strip,
    rep_chart,
    similarity_curve,
    time_series,
)
from analysis.identities import person_label
from analysis.landmarks import LANDMARK_NAMES
from analysis.reps import ExerciseAnalysis
from analysis.result import ClipResult
from analysis.review import measurements_frame, scale_of
from analysis.series import Kinematics, nyquist_hz
from analysis.templates import PoseTemplate, TemplateError, furthest_joints, score
from analysis.uploads import safe_stems
from views.player import Playback, PlayerState, review_player, seek
from views.shared import escape_markdown

DEFAULT_JOINTS = ["left knee", "right knee", "left hip", "right hip", "left shoulder", "right shoulder"]
DEFAULT_SPEED_LANDMARKS = ["left_wrist", "right_wrist", "left_ankle", "right_ankle"]
NO_PERSON_IN_CLIP = (
    "No person was found in any analysed frame. Pose detection works best when the whole body is in frame, "
    "well lit and not too small; if the person appears only later, check the trim; a lower minimum detection "
    "confidence in the sidebar may also help."
)


@dataclass(frozen=True)
class Shown:
    """What the results view shows. playback: what the review player plays under the poses (the source video, a
    playable copy, a recording's video, or a blank stage). files: the downloads as (label, content, file name,
    mime), made ahead (a recording's); by default the clip's files, made on click. more_downloads: the page's
    own downloads made on request (the Video page's annotated video), drawn beside them. stem: the downloads'
    names start with it (by default the source's name, made safe). coaching: the exercise's reps, the suggestion
    and the events, when the page computed them. key: what names this analysis (its content and settings): the
    player's state, such as the measurements, belongs to it."""

    result: ClipResult
    motion: Kinematics
    playback: Playback = Playback()
    files: tuple[tuple[str, bytes, str, str], ...] | None = None
    more_downloads: Callable[[], None] | None = None
    stem: str | None = None
    coaching: Coaching | None = None
    key: str = ""

    @property
    def player_key(self) -> str:
        return f"player-{hashlib.sha1(self.key.encode()).hexdigest()[:16]}"


# Charts and tables whose points and rows take the player to their moment; the charts' x is time in seconds.
SEEKING_CHARTS = ("angle_chart", "speed_chart", "exercise_chart", "template_chart")
SEEKING_TABLES = ("rep_table", "events_table")
CLICK_TO_SEEK = {"on_select": "rerun", "selection_mode": "points"}


@st.fragment
def show_results(shown: Shown) -> None:
    """Everything below the input; a fragment, so that the player, clicks on charts and choosing joints rerun
    only this."""
    series, motion = shown.result.series, shown.motion
    for warning in shown.result.warnings:
        st.warning(warning, icon=":material/content_cut:")
    people = np.flatnonzero(series.present.any(axis=0))
    if len(people) == 0:
        review_player(shown.result, motion, shown.playback, person=None, joints=[], key=shown.player_key)
        st.warning(NO_PERSON_IN_CLIP, icon=":material/person_search:")
        return
    coaching = shown.coaching
    analysis = coaching.exercise if coaching is not None else None
    chooser, joints_box = st.columns([1, 4], vertical_alignment="bottom") if len(people) > 1 else (None, st.container())
    person = int(people[0])
    if chooser is not None:
        person = chooser.selectbox("Person", people.tolist(), format_func=lambda p: f"{person_label(shown.result, p)} "
                                   f"({int(series.present[:, p].sum())} frames)")
    joints = joints_box.multiselect("Joints", ANGLE_NAMES, default=list(analysis.joints) if analysis and analysis.joints
                                    else DEFAULT_JOINTS, key="joints", wrap=True,
                                    placeholder="Choose joints to label and chart",
                                    help="Their angles are written on the picture and drawn on the charts.")
    rep_table = _person_rows(exports.reps_frame(coaching), person) if coaching is not None else None
    event_table = _person_rows(exports.events_frame(coaching), person) if coaching is not None else None
    _seek_to_clicks(shown.player_key, series.times_s, rep_table, event_table)
    scale = scale_of(series, motion, person)

    view, tables = st.columns([3, 2], gap="medium")
    with view:
        reps = [(r.start_s, r.end_s) for r in analysis.reps_of(person)] if analysis and analysis.exercise.kind == "reps" \
            else []
        player = review_player(shown.result, motion, shown.playback, person=person, joints=joints, reps=reps,
                               metres_per_px=scale, key=shown.player_key)
    frame = player.frame
    time_s = float(series.times_s[frame])
    with tables:
        st.subheader("Landmarks", help="At the frame the player shows once paused. x, y: fraction of the frame's "
                     "width and height; x_px, y_px: pixels; z: depth relative to the hips; world x, y, z: metres "
                     "from the point between the hips (y points down).")
        absent = "" if series.present[frame, person] else \
            f": {escape_markdown(person_label(shown.result, person))} is not in this frame"
        st.caption(f"Frame {int(series.frame_index[frame])} at {time_s:.2f} s{absent}")
        landmarks = series.frame_table(frame, person)
        if not landmarks.empty:
            st.dataframe(landmarks, hide_index=True, height=360,
                         column_config={c: st.column_config.NumberColumn(format="%.3f")
                                        for c in ("x", "y", "z", "visibility", "presence",
                                                  "world_x", "world_y", "world_z")}
                         | {c: st.column_config.NumberColumn(format="%.0f") for c in ("x_px", "y_px")})
        measurements_section(shown, player, scale)

    if coaching is not None and series.frames > 1:
        exercise_section(coaching, rep_table, person, series.times_s, time_s)
    if series.frames == 1:
        st.warning("This video has a single frame, so there is no movement to chart: its landmarks and angle "
                   "summary are below.", icon=":material/movie:")
    charts, tables = st.columns([3, 2], gap="medium")
    with charts:
        if series.frames > 1:
            curves(shown, person, joints, time_s)
    with tables:
        st.subheader("Summary", help="Over the whole clip, from the smoothed 2D angles: the lowest and highest "
                     "value, their difference (range of motion) and the mean. Segment angles are directions and "
                     "are summarised around the circle.")
        meanings = {"what the numbers mean": [a.meaning for a in ANGLES]}
        summary = exports.angle_summary(motion, person).assign(**meanings)
        st.dataframe(summary, hide_index=True, height=440,
                     column_config={c: st.column_config.NumberColumn(f"{c} (°)", format="%.1f")
                                    for c in ("min", "max", "range", "mean")})

    if event_table is not None:
        events_section(event_table)
    if series.frames > 1:
        template_section(shown, person, frame, time_s)
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


def curves(shown: Shown, person: int, joints: list[str], time_s: float) -> None:
    series, motion = shown.result.series, shown.motion
    st.subheader("Joint angles", help="Thin faint lines: the raw angles, frame by frame. Bold: after gap filling "
                 "and the low-pass filter (sidebar). The dotted red line marks the player's frame; click a curve "
                 "to show that moment in the player.")
    coaching = shown.coaching
    analysis = coaching.exercise if coaching is not None else None
    plane = st.segmented_control(
        "Angles from", ["2D", "3D"], default="2D", key="plane", required=True,
        format_func=lambda p: {"2D": "Image", "3D": "World"}[p],
        help="Image: in the picture, as you see it (raw and smoothed). World: from the model's 3D landmarks, "
             "which do not shrink when a limb points towards the camera (smoothed).")
    columns = [ANGLE_NAMES.index(name) for name in joints]
    if plane == "3D":
        angles, raw = motion.angles_3d[:, person, columns], None
    else:
        angles, raw = motion.angles_2d[:, person, columns], motion.angles_2d_raw[:, person, columns]
    figure = time_series(series.times_s, angles, joints, "Angle (°)", raw=raw, marker_s=time_s)
    if coaching is not None:
        mark_reps(figure, [r for r in analysis.reps if r.person == person] if analysis else [],
                  [r for r in analysis.partials if r.person == person] if analysis else [],
                  [e for e in coaching.events if e.person == person])
    st.plotly_chart(figure, key="angle_chart", **CLICK_TO_SEEK)
    if motion.smoothing.has_no_effect(series.times_s):
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
                                    "Angular velocity (°/s)", marker_s=time_s), key="speed_chart", **CLICK_TO_SEEK)
        return
    landmarks = pick.multiselect("Landmarks", LANDMARK_NAMES, default=DEFAULT_SPEED_LANDMARKS, key="speed_landmarks",
                                 wrap=True, placeholder="Choose landmarks to chart")
    points = [LANDMARK_NAMES.index(name) for name in landmarks]
    speeds = motion.speed_m if metres and motion.speed_m is not None else motion.speed_px
    st.plotly_chart(time_series(series.times_s, speeds[:, person, points], landmarks,
                                "Speed (m/s)" if metres else "Speed (px/s)", marker_s=time_s), key="speed_chart",
                    **CLICK_TO_SEEK)
    if motion.height_m and not metres:
        st.caption("The height could not calibrate this person: the nose and heels are never all visible, so "
                   "speeds stay in pixels per second.")
    elif not motion.height_m:
        st.caption("Give the person's height in the sidebar for speeds in metres per second.")


def downloads(shown: Shown) -> None:
    """The clip's files (exports.clip_files, as the CLI writes them), or shown.files, and the page's own."""
    stem = shown.stem or safe_stems([shown.result.source.name])[0]
    st.subheader("Downloads")
    if shown.files is not None:
        buttons = list(shown.files)
    else:
        buttons = [(file.label, file.make, file.name, file.mime)
                   for file in exports.clip_files(shown.result, shown.motion, shown.coaching)]
    row = st.container(horizontal=True)
    for label, data, name, mime in buttons:
        row.download_button(label, data, f"{stem}_{name}", mime, key=f"download_{name}", on_click="ignore",
                            icon=":material/download:")
    if shown.more_downloads is not None:
        shown.more_downloads()
    st.caption("Landmarks CSV: raw landmarks, one row per frame, person and landmark. Angles CSV: smoothed 2D "
               "and 3D angles. Summary: settings, counts, range of motion per angle and the exercise. TRC: one "
               "person's smoothed world landmarks for OpenSim. Pose series: the clip, to open here again later. "
               "Reps CSV: one row per counted rep. Events CSV: jumps, falls and partial reps.")


def template_section(shown: Shown, person: int, frame: int, time_s: float) -> None:
    """Save the player's frame's pose as a template (a yoga pose, a rehab position), or score the whole clip
    against one: a similarity curve over time."""
    series = shown.result.series
    stem = shown.stem or safe_stems([shown.result.source.name])[0]
    st.subheader("Pose template", help="How closely each frame matches a reference pose, 0–100 %, whatever the "
                 "person's position and size in the picture and a small camera tilt. Save one from the player's "
                 "frame here or from a photo on the Image page.")
    save, compare = st.columns([1, 2], vertical_alignment="top")
    try:
        own = PoseTemplate.from_pose(series.pixels[frame, person], series.visibility[frame, person],
                                     f"{shown.result.source.name} at {time_s:.2f} s", shown.result.source.name)
        save.download_button("This frame as a template", own.to_json, f"{stem}_template_{time_s:.2f}s.json",
                             "application/json", key="frame_template", on_click="ignore",
                             icon=":material/download:")
    except TemplateError as error:
        save.caption(f"This frame cannot be a template: {error}")
    chosen = compare.file_uploader("Score the clip against a template (JSON)", type="json", key="clip_template",
                                   max_upload_size=1)
    if chosen is None:
        return
    try:
        template = PoseTemplate.from_json(chosen.getvalue())
    except TemplateError as error:
        compare.error(f"**{escape_markdown(chosen.name)}**: {error}", icon=":material/accessibility_new:")
        return
    mirror = compare.toggle("Either side", key="clip_template_mirror",
                            help="Also match the pose mirrored, left for right.")
    similarity = score(template, series.pixels[:, person], series.visibility[:, person], mirror)
    if not np.isfinite(similarity.score).any():
        compare.warning(f"Too few of the joints of **{escape_markdown(template.name)}** are visible in this clip to "
                        "compare.", icon=":material/visibility_off:")
        return
    best = int(np.nanargmax(similarity.score))
    compare.metric("Best match", f"{similarity.score[best]:.0f} % at {series.times_s[best]:.2f} s",
                   help="The frame most like the template.")
    now = similarity.score[frame]
    if np.isfinite(now):
        off = furthest_joints(similarity.joint_error[frame])
        compare.caption(f"At {time_s:.2f} s: {now:.0f} % like {escape_markdown(template.name)}"
                        + (f"; furthest off: {', '.join(j.replace('_', ' ') for j in off)}." if off else "."))
    st.plotly_chart(similarity_curve(series.times_s, similarity.score, template.name, time_s), key="template_chart",
                    **CLICK_TO_SEEK)


def exercise_section(coaching: Coaching, table: pd.DataFrame, person: int, times_s: np.ndarray,
                     time_s: float) -> None:
    """The exercise for one person: what `auto` found, the warnings, the count and its figures, the signal with
    its thresholds and each rep shaded, the rep (or hold) table with its cues, and the range-of-motion and tempo
    chart."""
    suggestion, analysis = coaching.suggestion, coaching.exercise
    if analysis is None and suggestion is None:
        return
    st.subheader("Exercise", help="Counted from the exercise's signal with hysteresis: a rep leaves the rest "
                 "position, passes the threshold that counts and comes back. Partial reps are flagged, not counted.")
    if suggestion is not None:
        if suggestion.name is None:
            st.info("No exercise was recognised: nothing in this clip moves like the known exercises do. Pick one "
                    "in the sidebar to count it anyway.", icon=":material/fitness_center:")
        else:
            others = [f"{name.replace('_', ' ')} {score:.0%}" for name, score in suggestion.scores.items()
                      if score > 0 and name != suggestion.name][:3]
            st.caption(f"Found from the motion: **{analysis.exercise.title}**, {suggestion.confidence:.0%} sure"
                       + (f" (next: {', '.join(others)})." if others else "."))
    if analysis is None:
        return
    for warning in analysis.warnings:
        st.warning(warning, icon=":material/videocam:")
    if analysis.exercise.kind == "hold":
        hold_figures(analysis, table, person)
    else:
        rep_figures(analysis, table, person, times_s, time_s)


def events_section(events: pd.DataFrame) -> None:
    """Jumps, falls and partial reps of one person, one row each, as events.csv holds them; a row's pick shows
    its moment in the player."""
    events = events.dropna(axis=1, how="all")
    if events.empty:
        return
    st.subheader("Events", help="Jumps (take-off to landing, flight time, height from the flight time and, with the "
                 "height calibration, from the hip rise), falls and partial reps. Pick a row to watch it.")
    st.dataframe(events, hide_index=True, key="events_table", on_select="rerun", selection_mode="single-row",
                 column_config={c: st.column_config.NumberColumn(format="%.2f")
                                for c in events.columns if c.endswith(("_s", "_m"))}
                 | {"note": st.column_config.TextColumn(width="large")})


def _person_rows(table: pd.DataFrame, person: int) -> pd.DataFrame:
    """One person's rows of reps.csv's or events.csv's table, without the person column, numbered afresh."""
    return table[table.person == person + 1].drop(columns="person").reset_index(drop=True)


def _seek_to_clicks(player_key: str, times_s: np.ndarray, reps: pd.DataFrame | None,
                    events: pd.DataFrame | None) -> None:
    """A point just clicked on a chart, or a row just picked in the rep or event table, takes the player there.
    Each click counts once: the selection stays in the widget's state across reruns."""
    starts = {"rep_table": reps, "events_table": events}
    for key in (*SEEKING_CHARTS, *SEEKING_TABLES):
        selection = (st.session_state.get(key) or {}).get("selection") or {}
        picked = selection.get("points") or selection.get("rows") or []
        seen_key = f"{key}__seen"
        if picked == st.session_state.get(seen_key):
            continue
        st.session_state[seen_key] = picked
        if not picked:
            continue
        if key in starts:
            table = starts[key]
            if table is not None and picked[0] < len(table):
                seek(player_key, float(table.start_s.iloc[picked[0]]))
        elif isinstance(picked[0].get("x"), (int, float)):
            seek(player_key, float(np.clip(picked[0]["x"], times_s[0], times_s[-1])))


def measurements_section(shown: Shown, player: PlayerState, scale: float | None) -> None:
    """The angles and distances measured in the player: a table and measurements.csv."""
    if not player.measurements:
        st.caption("Measure on the picture: pause, choose angle or distance under the player and click the points.")
        return
    series = shown.result.series
    table = measurements_frame(player.measurements, series, scale)
    st.subheader("Measurements", help="Clicked on paused frames. Angles in degrees, at the middle point; distances "
                 "in pixels of the analysed frame, or metres once the person's height is given (sidebar).")
    st.dataframe(table, hide_index=True, column_config={"time_s": st.column_config.NumberColumn("time", format="%.2f s")})
    stem = shown.stem or safe_stems([shown.result.source.name])[0]
    st.download_button("Measurements CSV", table.to_csv(index=False), f"{stem}_measurements.csv", "text/csv",
                       key="download_measurements", on_click="ignore", icon=":material/download:")


REP_TABLE = {  # reps.csv's columns the page shows, as the page names them
    "rep": st.column_config.NumberColumn("rep", format="%d"),
    "start_s": st.column_config.NumberColumn("start", format="%.2f s"),
    "duration_s": st.column_config.NumberColumn("duration", format="%.2f s"),
    "eccentric_s": st.column_config.NumberColumn("eccentric", format="%.2f s", help="A squat's way down."),
    "concentric_s": st.column_config.NumberColumn("concentric", format="%.2f s", help="A squat's way up."),
    "extreme_deg": st.column_config.NumberColumn("extreme", format="%.0f°", help="The signal at the working extreme."),
    "rom_deg": st.column_config.NumberColumn("range", format="%.0f°", help="Range of motion over the rep."),
    "depth_ok": st.column_config.CheckboxColumn("target", help="The extreme reached the exercise's target."),
    "asymmetry_deg": st.column_config.NumberColumn("left–right", format="%.0f°",
                                                   help="Difference between the two sides' extremes."),
    "cues": st.column_config.TextColumn("cues", width="large"),
}


def rep_figures(analysis: ExerciseAnalysis, table: pd.DataFrame, person: int, times_s: np.ndarray,
                time_s: float) -> None:
    exercise = analysis.exercise
    reps = analysis.reps_of(person)
    partials = [r for r in analysis.partials if r.person == person]
    count, partial, depth, tempo = st.columns(4)
    count.metric("Reps", len(reps), help="Counted reps: each passed the threshold that counts and came back.")
    partial.metric("Partial reps", len(partials), help="Started but never reached the threshold: not counted.")
    reached, judged = analysis.depth_reached(person)
    depth.metric("Target reached", f"{reached} of {judged}" if judged else "–",
                 help=f"Reps whose extreme passed the target ({exercise.target:.0f}°)."
                 if exercise.target is not None else None)
    eccentric, concentric = analysis.tempo(person)
    tempo.metric("Eccentric / concentric", f"{eccentric:.1f} s / {concentric:.1f} s" if reps else "–",
                 help="Mean time of the phase away from and back against the load: for a squat, down and up.")
    st.plotly_chart(exercise_chart(times_s, analysis.signal[:, person], exercise, reps, partials, time_s),
                    key="exercise_chart", **CLICK_TO_SEEK)
    if table.empty:
        st.caption("No rep was counted for this person.")
        return
    st.dataframe(table[list(REP_TABLE)], hide_index=True, column_config=REP_TABLE, key="rep_table",
                 on_select="rerun", selection_mode="single-row")
    st.caption("Pick a rep's row to watch it in the player.")
    st.plotly_chart(rep_chart(reps, exercise.target), key="rep_chart")


def hold_figures(analysis: ExerciseAnalysis, table: pd.DataFrame, person: int) -> None:
    held_s, good_s = analysis.held(person)
    held, good, holds = st.columns(3)
    held.metric("Held", f"{held_s:.1f} s")
    good.metric("In good form", f"{good_s:.1f} s")
    holds.metric("Holds", len(table))
    if table.empty:
        st.caption("The position was never held for long enough to count.")
        return
    st.dataframe(table, hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.1f s") for c in ("start_s", "end_s", "held_s", "good_form_s")}
        | {"good_form_share": st.column_config.ProgressColumn("in good form", format="percent", min_value=0,
                                                             max_value=1)})
