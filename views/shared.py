"""What every page shares: the cached pose engine, the sidebar's pose settings, and safe display of names."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from analysis.engine import PoseEngine, PoseSettings
from analysis.models import COMPLEXITIES, ModelError

NO_PERSON_HINTS = (
    "No person was found in this picture. Pose detection works best when the whole body is in frame, "
    "the person is well lit and not too small, and they face or side-on to the camera."
)


def _close_engine(entry: tuple[PoseEngine, threading.Lock]) -> None:
    engine, lock = entry
    with lock:
        engine.close()


@st.cache_resource(show_spinner="Loading the pose model…", max_entries=3, on_release=_close_engine)
def _image_engine(settings: PoseSettings) -> tuple[PoseEngine, threading.Lock]:
    """IMAGE-mode engines for the last few settings used in this process (each loaded model holds 50–150 MB;
    one pushed out is closed); the lock keeps sessions from sharing one at once."""
    return PoseEngine(settings), threading.Lock()


@contextmanager
def image_engine(settings: PoseSettings) -> Iterator[PoseEngine]:
    """The engine for these settings, held for this caller alone. One pushed out of the cache (and closed) between
    the lookup and the lock is looked up again: the cache then makes a fresh one."""
    while True:
        engine, lock = _image_engine(settings)
        with lock:
            if not engine.closed:
                yield engine
                return


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


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~<>$:])")


def escape_markdown(text: str) -> str:
    """A user-given text (a file name) shown literally where Streamlit reads Markdown: captions, messages."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
