"""PoseScope: the entry point. Navigation, and the home page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from analysis.models import COMPLEXITIES, REBUILD_COMMAND, bundle_path, bundle_status


def home() -> None:
    st.title("PoseScope")
    st.markdown(
        "Human pose analysis on your own machine. Drop in a photo, a training video or switch on your webcam "
        "and see the skeleton, joint angles, landmark tables and a 3D view, in seconds; pick an exercise and get "
        "its reps, depth, tempo and form cues.")
    image, video, webcam, compare = st.columns(4)
    with image.container(border=True):
        st.page_link(IMAGE_PAGE, label="**Image**", icon=":material/image:")
        st.caption("One or several photos: skeleton, 33 landmarks, joint and segment angles, 3D skeleton, "
                   "PNG, CSV and JSON downloads; save a pose as a template or score it against one.")
    with video.container(border=True):
        st.page_link(VIDEO_PAGE, label="**Video**", icon=":material/movie:")
        st.caption("Training videos: skeleton on every frame, a frame scrubber, angle and speed curves over time, "
                   "a summary per joint, reps with depth, tempo and cues, jumps and falls, CSV, JSON and TRC "
                   "exports.")
    with webcam.container(border=True):
        st.page_link(WEBCAM_PAGE, label="**Webcam**", icon=":material/videocam:")
        st.caption("Live skeleton, joint angles and a live chart from your camera over WebRTC; live rep count and "
                   "cues, a pose template's match, a fall alert; record a session and download it.")
    with compare.container(border=True):
        st.page_link(COMPARE_PAGE, label="**Compare**", icon=":material/compare_arrows:")
        st.caption("An athlete against a reference: synchronised and aligned automatically, both players side by "
                   "side, both skeletons over each other, both angle curves and the differences per joint.")

    st.subheader("Models")
    rows = []
    for complexity in COMPLEXITIES:
        problem = bundle_status(complexity)
        size = f"{bundle_path(complexity).stat().st_size / 1e6:.1f} MB" if problem is None else "—"
        rows.append({"model": complexity, "bundle": bundle_path(complexity).name, "size": size,
                     "status": "ready" if problem is None else problem})
    st.dataframe(rows, hide_index=True)
    if any(row["status"] != "ready" for row in rows):
        st.warning(f"Rebuild the model bundles with `{REBUILD_COMMAND}`.")

    st.subheader("Privacy")
    st.markdown(
        "Everything runs locally. Photos, videos and camera frames are analysed in this process and never "
        "leave this machine; the app makes no network calls of its own and sends no usage statistics. "
        "Uploads are kept in memory and temporary files are removed when the analysis ends.")


IMAGE_PAGE = st.Page("views/image.py", title="Image", icon=":material/image:", url_path="image")
VIDEO_PAGE = st.Page("views/video.py", title="Video", icon=":material/movie:", url_path="video")
WEBCAM_PAGE = st.Page("views/webcam.py", title="Webcam", icon=":material/videocam:", url_path="webcam")
COMPARE_PAGE = st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare")

# The favicon is a file of our own, served by the app itself. A ":material/…:" favicon would make the browser fetch an
# SVG from fonts.gstatic.com on every page load (icons inside the page come from Streamlit's bundled font and are
# fine). It is set before st.navigation on every run: a page's own ":material/…:" icon becomes the favicon only
# while no page_icon has been set.
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"
st.set_page_config(page_title="PoseScope", page_icon=FAVICON, layout="wide")
navigation = st.navigation([st.Page(home, title="Home", icon=":material/home:", default=True),
                            IMAGE_PAGE, VIDEO_PAGE, WEBCAM_PAGE, COMPARE_PAGE])
navigation.run()
