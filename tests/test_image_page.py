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
from analysis.engine import PoseEngine, PoseSettings
from analysis.images import load_image
from analysis.landmarks import INDEX
from analysis.templates import OFF_COLOUR, PoseTemplate


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
    assert labels == ["Annotated PNG", "Landmarks CSV", "Everything (JSON)", "Pose template (JSON)"]
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


@pytest.fixture(scope="module")
def bus_template(media: Path) -> PoseTemplate:
    """The man in bus.jpg as a template, made as the page makes it (the page's default model settings)."""
    with PoseEngine(PoseSettings()) as engine:
        pose = engine.detect(load_image((media / "bus.jpg").read_bytes()))
    return PoseTemplate.from_pose(pose.pixels[0], pose.visibility[0], "Standing [at the bus]", "bus.jpg")


def arms_up(template: PoseTemplate) -> PoseTemplate:
    """The template with both arms swung up overhead about the shoulders: another pose."""
    points = template.points.copy()
    for side, turn in (("left", np.pi * 0.9), ("right", -np.pi * 0.9)):
        arm = [INDEX[f"{side}_{point}"] for point in ("elbow", "wrist", "pinky", "index", "thumb")]
        shoulder = points[INDEX[f"{side}_shoulder"]]
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]], np.float32)
        points[arm] = (points[arm] - shoulder) @ rotation.T + shoulder
    return PoseTemplate("arms up", points, template.weights)


def compare(app: AppTest, name: str, data: bytes) -> AppTest:
    app.file_uploader[1].set_value((name, data, "application/json"))
    app.run()
    assert not app.exception, app.exception
    return app


def test_a_photo_matches_its_own_template_and_not_another(media: Path, bus_template: PoseTemplate,
                                                         shown_media: dict[str, bytes]) -> None:
    app = upload(image_page(), ("bus.jpg", (media / "bus.jpg").read_bytes(), "image/jpeg"))
    assert "Pose template (JSON)" in [b.label for b in app.get("download_button")]
    plain = _shown_picture(app, shown_media)
    compare(app, "standing.json", bus_template.to_json().encode())
    [match] = app.metric
    assert match.label == "Match" and match.value == r"100 % like Standing \[at the bus\]"  # escaped Markdown
    assert any("No joint is far off" in caption.value for caption in app.caption)
    assert np.array_equal(_shown_picture(app, shown_media), plain)  # nothing to ring

    compare(app, "arms_up.json", arms_up(bus_template).to_json().encode())
    [match] = app.metric
    percent = int(match.value.split(" %")[0])
    assert percent < 30 and match.value.endswith("like arms up")
    [furthest] = [c.value for c in app.caption if "Furthest off" in c.value]
    assert furthest.count("wrist") + furthest.count("elbow") == 3, furthest
    # The joints named are ringed on the picture: amber pixels appear round the man's wrists, none far away.
    ringed = np.argwhere(np.abs(_shown_picture(app, shown_media) - OFF_COLOUR).max(axis=-1) <= 40)
    landmarks = app.dataframe[1].value.set_index("landmark")
    wrists = landmarks.loc[["left_wrist", "right_wrist"], ["x_px", "y_px"]].to_numpy()
    assert len(ringed) > 50
    nearest = np.hypot(*(ringed[:, None, ::-1] - wrists[None]).transpose(2, 0, 1)).min(axis=1)
    assert np.percentile(nearest, 95) < 150


def test_the_mirror_switch_matches_a_pose_on_the_other_side(media: Path, bus_template: PoseTemplate) -> None:
    """The man's mirror picture is another pose (his arms are not alike), unless either side may match."""
    other_side = PoseTemplate("other side", bus_template.points * np.array([-1, 1], np.float32), bus_template.weights)
    app = upload(image_page(), ("bus.jpg", (media / "bus.jpg").read_bytes(), "image/jpeg"))
    compare(app, "other_side.json", other_side.to_json().encode())
    off = int(app.metric[0].value.split(" %")[0])
    [toggle] = [t for t in app.toggle if t.label == "Either side"]
    toggle.set_value(True)
    app.run()
    assert not app.exception, app.exception
    assert off < 80 and app.metric[0].value == "100 % like other side", (off, app.metric[0].value)
    assert any("Matched on the other side" in caption.value for caption in app.caption)


@pytest.mark.parametrize(("data", "words"), [
    (b"{not json", "This is not a JSON file"),
    (b'{"format": "something-else"}', "not a PoseScope pose template"),
    (b"[" * 70000, "at most 64 KB"),
])
def test_a_bad_template_file_gets_a_sentence(media: Path, data: bytes, words: str) -> None:
    app = upload(image_page(), ("bus.jpg", (media / "bus.jpg").read_bytes(), "image/jpeg"))
    compare(app, "my_*pose*.json", data)
    [error] = app.error
    assert words in error.value and r"my\_\*pose\*.json" in error.value
    assert not app.metric and len(app.dataframe) == 2  # the photo's own results are still there
