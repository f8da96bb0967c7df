"""What every page shares: the cached pose engine, the sidebar's pose settings, and safe display of names."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from analysis.coaching import AUTO
from analysis.engine import PoseEngine, PoseSettings
from analysis.exercises import Catalogue, ExerciseError, current_catalogue
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
        keep_id = PoseSettings().keep_id_s
        if max_people > 1:
            keep_id = st.slider("Keep a hidden person's ID (s)", 0.0, 5.0, keep_id, 0.1,
                                help="Someone out of view (behind another, out of the picture) for at most this "
                                     "long keeps their ID; after it, they count as someone new.")
        privacy = st.toggle("Privacy mode (skeleton only)",
                            help="Draw the skeleton on a blank background: no pixel of the person is shown.")
    return PoseSettings(complexity, max_people, detection, presence, tracking, keep_id), privacy


EXERCISE_PARAMETER = "exercise"
NO_EXERCISE = "none"


def exercise_sidebar(allow_auto: bool = True) -> tuple[Catalogue | None, str | None]:
    """The sidebar's exercise picker, in step with the page's `?exercise=` URL parameter so that a set-up can be
    bookmarked: (catalogue, the exercise's name, "auto", or None). An unknown name in the URL, or a bad user
    exercise file, is said in the sidebar; the page goes on without an exercise."""
    with st.sidebar:
        st.header("Exercise")
        try:
            catalogue = current_catalogue()
        except ExerciseError as error:
            st.error(str(error), icon=":material/fitness_center:")
            return None, None
        options = [NO_EXERCISE, *([AUTO] if allow_auto else []), *catalogue.names]
        asked = st.query_params.get(EXERCISE_PARAMETER)
        if asked is not None and asked != AUTO and asked != NO_EXERCISE:
            try:
                asked = catalogue.get(asked).name
            except ExerciseError as error:
                st.warning(str(error), icon=":material/link_off:")
                asked = None
        if asked not in options:
            asked = None
        if asked is not None and asked != st.session_state.get("exercise_in_url"):
            st.session_state["exercise_choice"] = asked  # a new address decides; then the picker does
        titles = {AUTO: "Find it from the motion", NO_EXERCISE: "None"} | {
            name: exercise.title for name, exercise in catalogue.exercises.items()}
        choice = st.selectbox("Exercise", options, key="exercise_choice", format_func=titles.__getitem__,
                              help="Count reps (or time a hold), measure each rep and check its form. "
                                   "The page's address keeps the choice (…?exercise=squat), to bookmark it.")
        if choice != NO_EXERCISE and choice != AUTO:
            st.caption(catalogue.exercises[choice].about)
        if choice == NO_EXERCISE:
            st.query_params.pop(EXERCISE_PARAMETER, None)
            st.session_state["exercise_in_url"] = None
            return catalogue, None
        st.query_params[EXERCISE_PARAMETER] = choice
        st.session_state["exercise_in_url"] = choice
        return catalogue, choice


def show_model_error(error: ModelError) -> None:
    st.error(str(error), icon=":material/extension_off:")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~<>$:])")


def escape_markdown(text: str) -> str:
    """A user-given text (a file name) shown literally where Streamlit reads Markdown: captions, messages."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
