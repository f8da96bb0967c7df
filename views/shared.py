"""What every page shares: the cached pose engine and the sidebar's pose settings."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath

import streamlit as st

from analysis.engine import PoseEngine, PoseSettings
from analysis.models import COMPLEXITIES, ModelError

NO_PERSON_HINTS = (
    "No person was found in this picture. Pose detection works best when the whole body is in frame, "
    "the person is well lit and not too small, and they face or side-on to the camera."
)


@st.cache_resource(show_spinner="Loading the pose model…")
def _image_engine(settings: PoseSettings) -> tuple[PoseEngine, threading.Lock]:
    """One IMAGE-mode engine per process and settings; the lock keeps sessions from sharing it at once."""
    return PoseEngine(settings), threading.Lock()


@contextmanager
def image_engine(settings: PoseSettings) -> Iterator[PoseEngine]:
    engine, lock = _image_engine(settings)
    with lock:
        yield engine


def pose_settings_sidebar(default_complexity: str = "full", default_people: int = 1) -> tuple[PoseSettings, bool]:
    """The sidebar's model settings and the privacy switch."""
    with st.sidebar:
        st.header("Pose model")
        complexity = st.radio("Model", COMPLEXITIES, index=COMPLEXITIES.index(default_complexity), horizontal=True,
                              help="lite is fastest, heavy most accurate; full is a good balance.")
        max_people = st.slider("Most people to find", 1, 6, default_people)
        detection = st.slider("Min detection confidence", 0.1, 0.9, 0.5, 0.05,
                              help="How sure the detector must be that a person is there.")
        presence = st.slider("Min presence confidence", 0.1, 0.9, 0.5, 0.05,
                             help="How sure the landmark model must be that the person is still there.")
        tracking = st.slider("Min tracking confidence", 0.1, 0.9, 0.5, 0.05,
                             help="Video and webcam: below this, the detector runs again instead of tracking.")
        privacy = st.toggle("Privacy mode (skeleton only)",
                            help="Draw the skeleton on a blank background: no pixel of the person is shown.")
    return PoseSettings(complexity, max_people, detection, presence, tracking), privacy


def show_model_error(error: ModelError) -> None:
    st.error(str(error), icon=":material/extension_off:")


def download_stem(filename: str) -> str:
    """A safe stem for download names: the upload's name is never used as a path."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath(filename).stem).strip("._")
    return stem[:60] or "upload"
