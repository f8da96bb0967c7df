"""Webcam page: the camera over WebRTC, the live skeleton, angles and chart, the exercise's live count, a pose
template's match, fall monitoring, and recordings to download."""

from __future__ import annotations

import math
import os
import time
from urllib.parse import urlparse

import streamlit as st
from streamlit_webrtc import WebRtcMode, WebRtcStreamerContext, webrtc_streamer
from streamlit_webrtc.webrtc import SignallingTimeoutError

from analysis.angles import ANGLE_NAMES
from analysis.live import DEFAULT_LIVE_ANGLES, LiveInsight, LiveProcessor, LiveSettings, live_figure, rep_table
from analysis.live_timing import LiveStats
from analysis.recording import Recording
from analysis.templates import PoseTemplate, TemplateError
from views.ice import IceConfigError, ice_servers_from, rtc_configuration
from views.player import Playback
from views.results import Shown, show_results
from views.shared import escape_markdown, exercise_sidebar, pose_settings_sidebar

# The live chart, figures and table: twice a second, without rerunning the page. Each refresh is a script run,
# and Streamlit follows every run with a full garbage collection unless runner.postScriptGC is off: about 140 ms
# on 2 cores with the GIL held, which stalls the stream (see .streamlit/config.toml).
REFRESH_S = 0.5
STALL_S = 5.0  # connected this long without a frame: say so
SIGNALLING_TIMEOUT_S = 15.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
MAX_TEMPLATE_MB = 1  # the smallest limit Streamlit takes; PoseTemplate.from_json refuses anything over 64 KB
CUE_MESSAGES = {"info": st.info, "warning": st.warning, "error": st.error}

# What the camera widget says when the browser will not give it a camera: each says what to do.
TRANSLATIONS = {
    "start": "Start",
    "stop": "Stop",
    "select_device": "Camera",
    "media_api_not_available": (
        "This browser gives cameras only to secure pages: open PoseScope as http://localhost:8501 on this "
        "machine, or serve it over HTTPS to use it from another one (see the README)."),
    "device_ask_permission": "Allow PoseScope to use your camera when the browser asks.",
    "device_not_available": (
        "No camera was found, or another app is using it. Connect a camera or close the other app "
        "(video calls, other tabs), then press Start again"),
    "device_access_denied": (
        "Camera access was denied. Allow the camera for this site (the camera icon in the address bar or "
        "the site settings), then press Start again"),
}


# The camera widget reports a failed start only in its own box, as the browser's error name, and not to Python;
# this says what each one means and what to do.
CAMERA_HELP = """
- **NotAllowedError: Permission denied**: the browser blocks the camera for this site. Allow it (the camera icon
  in the address bar, or the site's settings), reload the page and press Start.
- **NotFoundError**: no camera was found. Connect one, then press Start.
- **NotReadableError**: another app or browser tab is using the camera. Close it, then press Start.
- **The browser never asks for the camera, or says media devices are not available**: cameras work only on
  https:// pages and on http://localhost. On this machine open http://localhost:8501; from another machine, serve
  PoseScope over HTTPS (see the README).
- **"Connection is taking longer than expected"**: the browser and PoseScope cannot reach each other. On this
  machine reload and press Start again; across networks, configure a STUN or TURN server (see the README).
"""


@st.cache_resource(scope="session", on_release=LiveProcessor.close, show_spinner=False)
def live_processor(_settings: LiveSettings) -> LiveProcessor:
    """This browser session's live pipeline, kept across reruns and camera restarts and closed (its models
    with it) when the session ends; its model starts loading as the page first opens, so that the first Start
    shows the skeleton at once. `_settings` (not part of the cache key) are the ones it starts with."""
    processor = LiveProcessor(_settings)
    processor.prepare()
    return processor


def ice_servers() -> list[dict]:
    """Configured STUN/TURN servers ([] by default: on this machine none is needed, none is contacted)."""
    secrets = st.secrets.get("webrtc") if st.secrets.load_if_toml_exists() else None
    try:
        return ice_servers_from(secrets, os.environ)
    except IceConfigError as error:
        st.error(f"{error} Until it is fixed, only this machine can connect.", icon=":material/public:")
        return []


def camera_needs_https() -> bool:
    """Browsers give cameras only to https:// pages and to localhost."""
    url = urlparse(st.context.url or "")
    return url.scheme == "http" and (url.hostname or "localhost") not in LOCAL_HOSTS


def template_sidebar() -> tuple[PoseTemplate | None, bool]:
    """A pose template to hold (saved on the Image page), and whether its mirror image counts too."""
    with st.sidebar:
        st.header("Pose template")
        upload = st.file_uploader("Hold a pose (template JSON)", type="json", max_upload_size=MAX_TEMPLATE_MB,
                                  help="A pose saved on the Image page: the picture shows how close you hold it.")
        mirror = st.toggle("Either side", help="Also compare with the mirror image (left and right swapped), and "
                                               "keep the better: for a pose done on the other side.")
        if upload is None:
            return None, mirror
        try:
            return PoseTemplate.from_json(upload.getvalue()), mirror
        except TemplateError as error:
            st.error(f"**{escape_markdown(upload.name)}**: {error}", icon=":material/rule:")
            return None, mirror


def settings_sidebar() -> tuple[LiveSettings, float, bool]:
    pose, privacy = pose_settings_sidebar(default_complexity="lite")
    _, exercise = exercise_sidebar(allow_auto=False)
    template, template_mirror = template_sidebar()
    with st.sidebar:
        st.header("Monitoring")
        monitoring = st.toggle("Fall alert (monitoring mode)",
                               help="For care at home: only the skeleton is shown and recorded, and a fall raises "
                                    "an alert here and on the picture until it is dismissed.")
        if monitoring:
            st.caption("Privacy is on while monitoring: no camera picture is shown or recorded.")
        st.header("Live view")
        angles = st.multiselect("Angles on the picture and chart", ANGLE_NAMES, default=DEFAULT_LIVE_ANGLES,
                                max_selections=8, help="Joint angles are written next to their joints.")
        mirror = st.toggle("Mirror view", value=True,
                           help="Show the picture as a mirror. Recorded data stays as the camera sees it.")
        window_s = st.slider("Chart: last seconds", 5, 60, 15)
        settings = LiveSettings(pose, tuple(angles), mirror, privacy, exercise=exercise, template=template,
                                template_mirror=template_mirror, monitoring=monitoring)
        with_video = st.toggle("Record the video too (MP4)", disabled=settings.privacy,
                               help="Off in privacy and monitoring mode: then only the skeleton data is recorded.")
    return settings, float(window_s), with_video and not settings.privacy


def fmt(value: float, unit: str) -> str:
    return "—" if math.isnan(value) else f"{value:.0f} {unit}"  # NaN: not measured yet


def show_figures(stats: LiveStats) -> None:
    top, bottom = st.columns(2), st.columns(2)
    (fps, processing), (lag, dropped) = top, bottom
    fps.metric("Processed", "—" if not stats.processed else f"{stats.fps:.1f} fps",
               help="Frames analysed and sent back per second, over the last two seconds. The camera's own rate "
                    "is below the figures.")
    processing.metric("Processing", fmt(stats.processing_ms_p50, "ms"),
                      help=f"Median time per frame (decode, pose, angles, drawing); 95th percentile "
                           f"{fmt(stats.processing_ms_p95, 'ms')}. Under 33 ms keeps up with 30 frames/s.")
    lag.metric("Lag", fmt(stats.lag_ms, "ms"),
               help="How much later than the quickest frame the newest one reached processing. It stays near 0 "
                    "because frames are never queued: when processing falls behind, stale frames are dropped.")
    dropped.metric("Dropped", f"{stats.dropped:,} of {stats.received:,}",
                   help="Stale frames skipped to keep up, of the frames received from the camera.")
    if stats.processed:
        st.caption(f"Camera {stats.camera_fps:.1f} fps · {stats.processed:,} frames analysed · "
                   f"processing p95 {fmt(stats.processing_ms_p95, 'ms')} · "
                   f"{stats.width} × {stats.height} px · {stats.model} model · "
                   f"{stats.people} {'person' if stats.people == 1 else 'people'} in view")


def show_falls(live: LiveProcessor) -> None:
    """Falls seen and not yet dismissed: they stay, whatever else happens, until someone presses Dismiss."""
    alerts = live.fall_alerts()
    if not alerts:
        return
    times = ", ".join(f"{alert.at:%H:%M:%S}" for alert in alerts)
    st.error(f"**{'A fall' if len(alerts) == 1 else f'{len(alerts)} falls'} at {times}** "
             f"({alerts[-1].event.note}).", icon=":material/emergency:")
    st.button("Dismiss", icon=":material/check:", on_click=live.dismiss_falls, key="webcam_dismiss_falls",
              help="The alert stays until it is dismissed, even if the person gets up or the camera stops.")


def show_exercise(live: LiveProcessor, insight: LiveInsight) -> None:
    """The count (or the hold's time), the stage, the last cue in its severity's colour, what makes the count
    unreliable, and the reps so far."""
    exercise, state = insight.exercise, insight.state
    st.subheader(exercise.title)
    first, second = st.columns(2)
    if exercise.kind == "reps":
        first.metric("Reps", state.count, help="A rep leaves the rest position, reaches the working position and "
                                               "comes back; one that falls short is a partial rep, not counted.")
        second.metric("Stage", state.stage or "—")
    else:
        first.metric("Held", f"{state.held_s:.0f} s", help="This hold so far.")
        second.metric("Good form", f"{state.good_s:.0f} s", help="Of this hold, the time with every form rule kept.")
    if state.partials:
        st.caption(f"Partial reps, not counted: {state.partials}")
    elif exercise.kind == "hold" and state.count:
        st.caption(f"Holds done: {state.count}")
    if (cue := insight.last_cue) is not None:
        CUE_MESSAGES[cue.severity](f"{escape_markdown(cue.text)} ({insight.cue_age_s:.0f} s ago)",
                                   icon=":material/campaign:")
    for warning in insight.warnings:
        st.warning(warning, icon=":material/videocam:")
    if state.reps:
        st.dataframe(rep_table(state.reps), hide_index=True, key="webcam_reps")
    st.button("New set", icon=":material/restart_alt:", on_click=live.restart_exercise, key="webcam_new_set",
              help="Start counting again from 0.")


def show_match(insight: LiveInsight) -> None:
    st.metric("Match", "—" if math.isnan(insight.match) else f"{insight.match:.0f} %",
              help=f"How close the pose is to {escape_markdown(insight.template)}: 100 % is the same pose, wherever "
                   "you stand in the picture.")
    if math.isnan(insight.match):
        st.caption("Too few of the template's joints are in view to compare.")
    elif insight.off:
        joints = ", ".join(joint.replace("_", " ") for joint in insight.off)
        st.caption(f"Furthest off{' (on the other side)' if insight.mirrored else ''}, ringed on the picture: {joints}.")


def show_table(live: LiveProcessor) -> None:
    """The current frame's landmarks, live or frozen (held to read it while the stream goes on); off by default,
    as it costs the browser a redraw each refresh."""
    mode = st.segmented_control("Landmark table", ["Off", "Live", "Frozen"], default="Off", key="webcam_table",
                                help="Frozen holds the landmarks of one frame to read them; the stream goes on.")
    if mode != "Frozen":
        st.session_state.pop("webcam_frozen", None)
    if mode in (None, "Off"):
        return
    frame = live.latest() if mode == "Live" else st.session_state.setdefault("webcam_frozen", live.latest())
    if frame is None or frame.pose.people == 0:
        st.caption("No person in view yet.")
        return
    table = frame.landmarks()
    st.dataframe(table, hide_index=True, height=300,
                 column_config={c: st.column_config.NumberColumn(format="%.3f")
                                for c in ("x", "y", "z", "visibility", "presence", "world_x", "world_y", "world_z")})


def connection_problems(ctx: WebRtcStreamerContext, stats: LiveStats) -> None:
    """Starting that never connects, or a connection with no picture: a sentence with what to do."""
    now = time.monotonic()
    if ctx.state.signalling and not ctx.state.playing:
        since = st.session_state.setdefault("webcam_signalling_since", now)
        if now - since > SIGNALLING_TIMEOUT_S:
            st.error("The video connection could not be set up. On this machine, reload the page and press Start "
                     "again. From another machine, the app needs HTTPS and, across networks, a STUN or TURN "
                     "server in .streamlit/secrets.toml (see the README).", icon=":material/power_off:")
    else:
        st.session_state.pop("webcam_signalling_since", None)
    if ctx.state.playing:
        since = st.session_state.setdefault("webcam_playing_since", now)
        if now - since > STALL_S and stats.since_last_frame_s > STALL_S:
            st.warning("Connected, but no camera frames are arriving. Check that the camera is not covered or used "
                       "by another app, or press Stop and Start.", icon=":material/videocam:")
    else:
        st.session_state.pop("webcam_playing_since", None)


def live_panel(ctx: WebRtcStreamerContext, live: LiveProcessor, names: list[str], window_s: float) -> None:
    stats = live.stats()
    show_falls(live)
    connection_problems(ctx, stats)
    if stats.error:
        st.error(stats.error, icon=":material/extension_off:")
    insight = live.insight()
    if insight.exercise is not None:
        show_exercise(live, insight)
    if insight.template is not None:
        show_match(insight)
    show_figures(stats)
    if names:
        st.plotly_chart(live_figure(live.window(window_s), names, window_s), key="webcam_chart",
                        config={"displayModeBar": False})
    else:
        st.caption("Choose angles in the sidebar to chart them.")
    if stats.loading:
        st.caption(f"Loading the {stats.loading} model…" + (f" The {stats.model} model keeps running meanwhile."
                                                            if stats.model else ""))
    show_table(live)


def stop_recording(live: LiveProcessor) -> None:
    st.session_state.webcam_recording = recording = live.stop_recording()
    if recording is None:
        st.toast("Nothing was recorded: no camera frame arrived while recording.", icon=":material/videocam_off:")


def recording_controls(ctx: WebRtcStreamerContext, live: LiveProcessor, with_video: bool) -> None:
    recorder = live.recorder
    if recorder is None:
        st.button("Start recording", icon=":material/fiber_manual_record:", on_click=live.start_recording,
                  args=(with_video,), disabled=not ctx.state.playing,
                  help="Record the landmarks and angles (and the video, if chosen).")
    else:
        st.button("Stop recording", icon=":material/stop:", type="primary", on_click=stop_recording, args=(live,))
        st.caption("Recording… the time runs in the corner of the picture.")


def show_recording(recording: Recording) -> None:
    st.subheader("Recording")
    result = recording.result
    series = result.series
    people = int(series.present.any(axis=0).sum())
    analysed = f", analysed at {result.frames_per_s:.0f} frames/s" if result.frames_per_s else ""
    st.caption(f"Started {recording.started:%H:%M:%S}: {series.times_s[-1]:.1f} s, {series.frames} frames "
               f"({result.capture_fps:.1f} frames/s{analysed}), {series.width} × {series.height} px, "
               f"{people} {'person' if people == 1 else 'people'} found.")
    shown_video = Playback(recording.video) if recording.video is not None else Playback(
        note="Recorded without the camera video: the skeleton is drawn on a blank background.")
    show_results(Shown(result, recording.kinematics, shown_video, files=recording.files, stem=recording.stem,
                       coaching=recording.coaching, key=f"recording {recording.started.isoformat()}"))


st.title("Webcam")
settings, window_s, with_video = settings_sidebar()
live = live_processor(settings)
live.update(settings)

if camera_needs_https():
    st.warning("This page is open over plain http:// from another address, and browsers give cameras only to "
               "https:// pages and to localhost. Open it as http://localhost:8501 on the machine that runs "
               "PoseScope, or serve PoseScope over HTTPS (see the README).", icon=":material/lock:")

picture, panel = st.columns([3, 2])
with picture:
    rtc = rtc_configuration(ice_servers())

    async def on_frames(frames: list) -> list:
        return [live.process_newest(frames)]

    try:
        ctx = webrtc_streamer(
            key="webcam", mode=WebRtcMode.SENDRECV,
            frontend_rtc_configuration=rtc, server_rtc_configuration=rtc,
            media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480},
                                                "frameRate": {"ideal": 30}}, "audio": False},
            queued_video_frames_callback=on_frames, on_video_ended=live.stream_ended, async_processing=True,
            sendback_audio=False, translations=TRANSLATIONS,
            video_html_attrs={"autoPlay": True, "muted": True, "playsInline": True, "controls": False,
                              "style": {"width": "100%", "borderRadius": "0.5rem", "border": "1px solid #2c313c"}})
    except SignallingTimeoutError:
        st.error("The video connection could not be set up in time. Press Start again; if it keeps failing from "
                 "another machine, configure a STUN or TURN server (see the README).", icon=":material/power_off:")
        st.stop()
    if live.recorder is not None and not (ctx.state.playing or ctx.state.signalling):
        stop_recording(live)  # the camera stopped: so does the recording
    if not ctx.state.playing:
        st.caption("Press **Start** and allow the camera. Your skeleton, joint angles and a live chart appear in a "
                   "second or two; everything is computed on this machine and nothing is sent anywhere else.")
        with st.expander("Camera not starting? What the messages mean"):
            st.markdown(CAMERA_HELP)
    recording_controls(ctx, live, with_video)

names = list(settings.angles)
with panel:
    active = ctx.state.playing or ctx.state.signalling
    st.fragment(run_every=REFRESH_S if active else None)(live_panel)(ctx, live, names, window_s)

if (recording := st.session_state.get("webcam_recording")) is not None:
    show_recording(recording)

