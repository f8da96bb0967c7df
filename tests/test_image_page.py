"""The Image page's logic through Streamlit's AppTest, with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, open_page
from streamlit.testing.v1 import AppTest


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


def test_privacy_mode_shows_the_skeleton_on_a_blank_background(media: Path) -> None:
    app = image_page()
    app.sidebar.toggle[0].set_value(True)
    app.run()
    upload(app, ("bus.jpg", (media / "bus.jpg").read_bytes(), "image/jpeg"))
    assert len(app.dataframe) == 2 and not app.error


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
