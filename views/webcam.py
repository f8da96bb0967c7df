"""Webcam page: the camera over WebRTC, the live skeleton, angles and chart, and recordings to download."""

from __future__ import annotations

import math
import os
import time
from urllib.parse import urlparse

import streamlit as st
from streamlit_webrtc import WebRtcMode, WebRtcStreamerContext, webrtc_streamer
from streamlit_webrtc.webrtc import SignallingTimeoutError

from analysis.angles import ANGLE_NAMES
from analysis.live import DEFAULT_LIVE_ANGLES, LiveProcessor, LiveSettings, live_figure
from analysis.live_timing import LiveStats
from analysis.recording import Recording
from views.ice import IceConfigError, ice_servers_from, rtc_configuration
from views.results import Shown, show_results
from views.shared import pose_settings_sidebar

# The live chart, figures and table: twice a second, without rerunning the page. Each refresh is a script run,
# and Streamlit follows every run with a full garbage collection unless runner.postScriptGC is off: about 140 ms
# on 2 cores with the GIL held, which stalls the stream (see .streamlit/config.toml).
REFRESH_S = 0.5
STALL_S = 5.0  # connected this long without a frame: say so
SIGNALLING_TIMEOUT_S = 15.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}

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


def settings_sidebar() -> tuple[LiveSettings, float, bool]:
    pose, privacy = pose_settings_sidebar(default_complexity="lite")
    with st.sidebar:
        st.header("Live view")
        angles = st.multiselect("Angles on the picture and chart", ANGLE_NAMES, default=DEFAULT_LIVE_ANGLES,
                                max_selections=8, help="Joint angles are written next to their joints.")
        mirror = st.toggle("Mirror view", value=True,
                           help="Show the picture as a mirror. Recorded data stays as the camera sees it.")
        window_s = st.slider("Chart: last seconds", 5, 60, 15)
        with_video = st.toggle("Record the video too (MP4)", disabled=privacy,
                               help="Off in privacy mode: then only the skeleton data is recorded.")
    return LiveSettings(pose, tuple(angles), mirror, privacy), float(window_s), with_video and not privacy


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
    connection_problems(ctx, stats)
    if stats.error:
        st.error(stats.error, icon=":material/extension_off:")
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
    show_results(Shown(result, recording.kinematics, files=recording.files, stem=recording.stem))


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

