"""The review player (player.js, player.css): one Streamlit component for the Video page and webcam recordings.

The browser plays the video itself and draws the poses over it, so the page sends only URLs and settings. The
video and the poses are files on the app's own server (Streamlit's media files, as st.video uses), fetched
with HTTP range requests and cached by the browser; nothing big goes through the websocket, and a rerun
resends a few hundred bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit import runtime

from analysis.angles import ANGLE_NAMES, DEFAULT_VISIBILITY_THRESHOLD
from analysis.drawing import FACE
from analysis.figures import CURVE_COLOURS, TIME_TITLE
from analysis.landmarks import BONES
from analysis.result import ClipResult
from analysis.review import Measurement, PoseTrack, read_measurements
from analysis.series import Kinematics

_HERE = Path(__file__).parent
_PLAYER = st.components.v2.component("posescope_player", css=(_HERE / "player.css").read_text(),
                                     js=(_HERE / "player.js").read_text())


@dataclass(frozen=True)
class Playback:
    """What the player plays under the poses: a video the browser can decode (the source, a proxy or a
    recording), or None for a blank stage (privacy mode, a saved series); `note` is shown over the stage."""

    video: bytes | None = None
    mimetype: str = "video/mp4"
    note: str = ""


@dataclass(frozen=True)
class PlayerState:
    """What the user did in the player: the frame shown once paused (a series index) and the measurements."""

    frame: int
    measurements: list[Measurement]


def media_url(data: bytes, mimetype: str, coordinates: str) -> str:
    """A URL of this app's own server for `data`, served with range requests and kept for as long as this session
    shows it (Streamlit's media file manager: what st.video does with bytes). `coordinates` names the slot, so a
    new file in the same slot replaces the old one."""
    url = runtime.get_instance().media_file_mgr.add(data, mimetype, coordinates)
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{url}" if base else url


def seek(key: str, time_s: float) -> None:
    """Ask the player under `key` to show the moment time_s on its next render (a chart click, a table row)."""
    nonce = st.session_state.get(f"{key}__seek", {}).get("nonce", 0) + 1
    st.session_state[f"{key}__seek"] = {"time_s": float(time_s), "nonce": nonce}


def review_player(result: ClipResult, motion: Kinematics, playback: Playback, *, person: int | None,
                  joints: Sequence[str], reps: Sequence[tuple[float, float]] = (),
                  metres_per_px: float | None = None, key: str = "player") -> PlayerState:
    """Render the player and return what the user did in it.

    person: whose angles are labelled and charted on the timeline (everyone's skeleton is drawn). joints: the
    angles labelled on the picture and on the timeline. reps: (start_s, end_s) spans shaded on the timeline.
    metres_per_px: the height calibration, for distances in metres."""
    series = result.series
    track = PoseTrack.of(series, motion)
    reported = (st.session_state.get(key) or {}).get("measurements") or []  # what the browser sent last
    measured = read_measurements(reported, series)
    data = {
        "video": media_url(playback.video, playback.mimetype, f"{key}.video") if playback.video else None,
        "poses": media_url(track.data, "application/octet-stream", f"{key}.poses"),
        **track.shape,
        "width": series.width, "height": series.height,
        "bones": [list(bone) for bone in BONES], "face_last": max(FACE),
        "threshold": DEFAULT_VISIBILITY_THRESHOLD,
        "person": person,
        "labels": [{"name": name, "angle": ANGLE_NAMES.index(name)} for name in joints],
        "colours": list(CURVE_COLOURS),  # the charts' own, so a joint has one colour everywhere
        "reps": [[float(start), float(end)] for start, end in reps],
        "measurements": [{"id": m.id, "frame": m.frame, "kind": m.kind,
                          "points": (m.points / [series.width, series.height]).tolist(),
                          "label": m.label(metres_per_px)} for m in measured],
        "seek": st.session_state.get(f"{key}__seek"),
        "message": playback.note,
        "time_title": TIME_TITLE,  # the page's charts over time, whose cursor follows the video
    }
    shown = _PLAYER(data=data, key=key, default={"frame": 0, "measurements": []},
                    on_frame_change=lambda: None, on_measurements_change=lambda: None)
    frame = shown.frame if isinstance(shown.frame, int) and 0 <= shown.frame < series.frames else 0
    return PlayerState(frame, read_measurements(shown.measurements or [], series))
