"""The Image page's logic through Streamlit's AppTest, with the real model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from conftest import ROOT, open_page
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from analysis.drawing import PRIVACY_BACKGROUND
from analysis.engine import PoseSettings


def image_page() -> AppTest:
    return open_page("image")


def upload(app: AppTest, *files: tuple[str, bytes, str]) -> AppTest:
    app.file_uploader[0].set_value(list(files))
    app.run()
    assert not app.exception, app.exception
    return app


def test_home_page_lists_the_inputs_and_the_models() -> None:
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=30)
    app.run()
    assert not app.exception
    assert app.title[0].value == "PoseScope"
    models = app.dataframe[0].value
    assert list(models["model"]) == ["lite", "full", "heavy"]
    assert set(models["status"]) == {"ready"}
    assert any("never leave this machine" in m.value for m in app.markdown)


def test_a_photo_of_a_person_gives_image_landmarks_angles_3d_and_downloads(media: Path) -> None:
    app = upload(image_page(), ("bus.jpg", (media / "bus.jpg").read_bytes(), "image/jpeg"))
    assert len(app.get("image")) == 1
    angles, landmarks = app.dataframe[0].value, app.dataframe[1].value
    assert len(landmarks) == 33 and landmarks["landmark"].iloc[0] == "nose"
    assert landmarks["visibility"].between(0, 1).all()
    knees = angles.set_index("angle").loc[["left knee", "right knee"], "2D (°)"]
    assert (knees > 150).all()  # the man is standing
    assert len(app.get("plotly_chart")) == 1
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Annotated PNG", "Landmarks CSV", "Everything (JSON)"]
    assert not app.error


def test_several_photos_at_once_each_get_their_own_result(media: Path) -> None:
    app = upload(image_page(), ("bus.jpg", (media / "bus.jpg").read_bytes(), "image/jpeg"),
                 ("zidane.jpg", (media / "zidane.jpg").read_bytes(), "image/jpeg"))
    assert len(app.get("image")) == 2
    assert len(app.dataframe) == 2  # landmarks and angles for bus.jpg only
    assert any("No person was found" in info.value for info in app.info)


def test_photos_whose_names_are_or_become_the_same_each_get_their_own_result(media: Path) -> None:
    bus = (media / "bus.jpg").read_bytes()
    app = upload(image_page(), ("IMG_0001.jpg", bus, "image/jpeg"), ("IMG_0001.jpg", bus, "image/jpeg"),
                 ("a b.jpg", bus, "image/jpeg"), ("a_b.jpg", bus, "image/jpeg"))
    assert len(app.get("image")) == 4 and len(app.get("plotly_chart")) == 4
    assert [button.label for button in app.get("download_button")].count("Annotated PNG") == 4
    # (The downloads' file names, IMG_0001-2_annotated.png and so on, are checked in the browser test.)


@pytest.fixture
def shown_media(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The bytes of every media file the page hands Streamlit (st.image's pictures), by the URL the page shows.

    AppTest keeps them in a MemoryMediaFileStorage that is dropped after each run; this keeps a copy."""
    files: dict[str, bytes] = {}
    get_url = MemoryMediaFileStorage.get_url

    def recording_get_url(storage: MemoryMediaFileStorage, file_id: str) -> str:
        url = get_url(storage, file_id)
        files[url] = storage.get_file(file_id).content
        return url
    monkeypatch.setattr(MemoryMediaFileStorage, "get_url", recording_get_url)
    return files


def _shown_picture(app: AppTest, files: dict[str, bytes]) -> np.ndarray:
    """The one picture on the page, decoded to RGB (int, so differences do not wrap)."""
    [image] = app.get("image")
    [url] = image.value
    return np.asarray(Image.open(io.BytesIO(files[url])).convert("RGB"), dtype=np.int16)


def test_privacy_mode_shows_the_skeleton_on_a_blank_background(media: Path, shown_media: dict[str, bytes]) -> None:
    data = (media / "bus.jpg").read_bytes()
    photo = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
    app = image_page()
    app.sidebar.toggle[0].set_value(True)
    app.run()
    upload(app, ("bus.jpg", data, "image/jpeg"))
    assert len(app.dataframe) == 2 and not app.error
    shown = _shown_picture(app, shown_media)
    assert shown.shape == photo.shape
    # Away from the skeleton (outside the box round every landmark, with a margin for line widths and the
    # JPEG's 8-pixel blocks), every pixel is the blank background; the picture is sent as a JPEG, hence 3 levels.
    landmarks = app.dataframe[1].value
    rows, columns = np.mgrid[:shown.shape[0], :shown.shape[1]]
    margin = 30
    away = ((columns < landmarks.x_px.min() - margin) | (columns > landmarks.x_px.max() + margin)
            | (rows < landmarks.y_px.min() - margin) | (rows > landmarks.y_px.max() + margin))
    assert away.mean() > 0.8
    from_background = np.abs(shown - PRIVACY_BACKGROUND).max(axis=-1)
    assert from_background[away].max() <= 3
    assert (from_background[~away] > 100).sum() > 1000  # the skeleton is drawn: white bones, red joints
    # and no trace of the photo: almost no pixel matches it (those that do are the photo's own near-black ones).
    from_photo = np.abs(shown - photo).max(axis=-1)
    assert (from_photo <= 3).mean() < 0.01

    # The same photo without privacy mode: now the photo is what is shown, so the checks above can tell.
    app.sidebar.toggle[0].set_value(False)
    app.run()
    assert not app.exception, app.exception
    shown = _shown_picture(app, shown_media)
    assert (np.abs(shown - photo).max(axis=-1) <= 8).mean() > 0.9
    assert (np.abs(shown - PRIVACY_BACKGROUND).max(axis=-1)[away] <= 3).mean() < 0.05


@pytest.mark.parametrize(("name", "data", "words"), [
    ("empty.jpg", b"", "This file is empty"),
    ("notes.png", b"these are my training notes\n" * 50, "not an image we can read"),
])
def test_bad_files_get_a_sentence_and_the_page_stays_usable(name: str, data: bytes, words: str,
                                                             media: Path) -> None:
    app = upload(image_page(), (name, data, "image/png"),
                 ("bus.jpg", (media / "bus.jpg").read_bytes(), "image/jpeg"))
    assert len(app.error) == 1 and words in app.error[0].value and name in app.error[0].value
    assert len(app.dataframe) == 2  # the good photo beside it still gets its result


def test_the_photo_engines_are_bounded_and_one_pushed_out_is_closed() -> None:
    """One engine per settings used, but only the last three are kept; the oldest is closed, not leaked."""
    from views.shared import image_engine  # the page's own cached engines

    st.cache_resource.clear()
    engines = []
    for confidence in (0.3, 0.4, 0.5, 0.6):
        with image_engine(PoseSettings(min_detection_confidence=confidence)) as engine:
            engines.append(engine)
    assert [engine.closed for engine in engines] == [True, False, False, False]
    with image_engine(PoseSettings(min_detection_confidence=0.6)) as again:
        assert again is engines[-1]  # still cached
