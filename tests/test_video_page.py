"""The Video page's logic through Streamlit's AppTest, with the real model and real (generated) videos.

The analysis runs as a background job; `upload` and `settle` rerun the page until it has finished, as the
page's polling fragment does in a browser. Every test runs with Python's temporary folder pointed at a
folder of its own, and checks at the end, once the sessions are released, that nothing is left in it.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import streamlit as st
from conftest import open_page
from streamlit.testing.v1 import AppTest

from analysis import clips
from analysis.engine import PoseSettings
from analysis.result import ClipOptions, ClipResult
from analysis.templates import PoseTemplate
from analysis.uploads import content_digest
from analysis.video import analyse_video
from analysis.video_io import read_frames

CLIP_DOWNLOADS = ["Landmarks CSV", "Angles CSV", "Summary JSON", "Events CSV", "TRC person 1",
                  "Pose series (.npz)"]


# --- fixtures and helpers --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Python's temporary folder for the test; once the sessions end (their resources released, as when a
    browser tab closes), the page must have left it empty."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    st.cache_resource.clear()  # releases every session's ClipSession: jobs cancelled, staged files removed
    deadline = time.monotonic() + 15
    while list(folder.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(p.name for p in folder.iterdir()) == [], "the page left temporary files behind"


@pytest.fixture
def analyses(monkeypatch: pytest.MonkeyPatch) -> list[ClipOptions]:
    """The ClipOptions of every pose analysis the page's jobs run (analysis.clips calls analyse_video), with the
    process-wide result caches emptied first so that nothing comes from an earlier test."""
    calls: list[ClipOptions] = []
    real = clips.analyse_video

    def counted(path: Any, settings: PoseSettings, options: ClipOptions = ClipOptions(), *args: Any,
                **kwargs: Any) -> ClipResult:
        calls.append(options)
        return real(path, settings, options, *args, **kwargs)

    clips.ANALYSES.clear()
    clips.MOTIONS.clear()
    monkeypatch.setattr(clips, "analyse_video", counted)
    return calls


@pytest.fixture(scope="module")
def clip_frames(media: Path) -> list[np.ndarray]:
    return [rgb for _, _, rgb in read_frames(media / "clip.mp4")]


def video_page() -> AppTest:
    return open_page("video", timeout_s=120)


def upload(app: AppTest, name: str, data: bytes, mime: str = "video/mp4", wait: bool = True) -> AppTest:
    app.file_uploader[0].set_value((name, data, mime))
    app.run()
    assert not app.exception, app.exception
    return settle(app) if wait else app


def running(app: AppTest) -> bool:
    """The page shows a job's progress bar: queued or analysing."""
    return len(app.get("progress")) > 0


def settle(app: AppTest, timeout_s: float = 180) -> AppTest:
    """Rerun the page, as its polling fragment does, until no analysis is under way."""
    deadline = time.monotonic() + timeout_s
    while running(app):
        assert time.monotonic() < deadline, "the analysis did not finish"
        time.sleep(0.25)
        app.run()
        assert not app.exception, app.exception
    return app


def progress_text(app: AppTest) -> str:
    return app.get("progress")[0].proto.text if running(app) else ""


def frames_done(app: AppTest) -> int:
    """Frames analysed so far, from the progress sentence ("Analysing: 125 / 600 frames · …"); 0 before."""
    text = progress_text(app)
    return int(text.split("Analysing: ")[1].split(" /")[0].replace(",", "")) if "Analysing: " in text else 0


def wait_for_frames(app: AppTest, at_least: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while (done := frames_done(app)) < at_least:
        assert running(app) and time.monotonic() < deadline, f"stuck at {done} frames: {progress_text(app)!r}"
        time.sleep(0.1)
        app.run()
    return done


def encode(path: Path, frames: list[np.ndarray], fps: int = 30, codec: str = "libx264", rotation: int = 0,
           options: dict[str, str] | None = None) -> bytes:
    """A video written directly with PyAV, as a camera or phone would write it (not with our VideoWriter)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path.read_bytes()


def labelled(elements: Any, label: str) -> Any:
    found = [e for e in elements if e.label == label]
    assert len(found) == 1, f"{label!r} among {[e.label for e in elements]}"
    return found[0]


def figures(app: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def figure_with_y(app: AppTest, title: str) -> dict[str, Any]:
    found = [f for f in figures(app) if f["layout"].get("yaxis", {}).get("title", {}).get("text") == title]
    assert len(found) == 1, [f["layout"].get("yaxis", {}).get("title") for f in figures(app)]
    return found[0]


def array(values: Any) -> np.ndarray:
    """A Plotly JSON array: a list, or {"dtype", "bdata"} as Plotly writes numpy arrays."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), np.dtype(values["dtype"]))
    return np.array(values, float)


def marker(figure: dict[str, Any]) -> float:
    shapes = [s for s in figure["layout"].get("shapes", []) if s.get("name") == "scrubbed time"]
    assert len(shapes) == 1
    return shapes[0]["x0"]


def texts(elements: Any) -> str:
    """The elements' text as the user reads it: Markdown escapes (of file names) removed."""
    return re.sub(r"\\(.)", r"\1", "\n".join(e.value for e in elements))


def table_kinds(app: AppTest) -> list[str]:
    """Each dataframe on the page by its first column: landmark (the frame's landmarks), angle (the summary),
    event (jumps, falls, partial reps), rep (the reps)."""
    return [str(d.value.columns[0]) for d in app.dataframe]


def download_labels(app: AppTest) -> list[str]:
    """The clip's files under Downloads (not the template button, nor the annotated video made on request)."""
    return [b.label for b in app.get("download_button")
            if b.label not in ("This frame as a template", "Annotated video")]


def annotated_button(app: AppTest) -> bool:
    return any(b.label == "Annotated video" for b in app.get("download_button"))


def player(app: AppTest) -> dict[str, Any]:
    """What the page sends the review player (views/player.py): URLs, the poses' shape and the settings."""
    shown = app.get("bidi_component")
    assert len(shown) == 1 and shown[0].proto.component_name == "posescope_player"
    return json.loads(shown[0].proto.json)


# --- a good clip -----------------------------------------------------------------------------------------------------


def test_clip_gives_player_charts_tables_and_downloads(media: Path) -> None:
    app = upload(video_page(), "clip.mp4", (media / "clip.mp4").read_bytes())
    assert not app.error and not app.warning
    assert "1,024 MB" in app.file_uploader[0].label  # the configured limit, said on the page
    assert "clip.mp4 · 960 × 540 · 30 frames/s · 2.0 s · H264 — analysed 60 frames in" in texts(app.caption)
    shown = player(app)  # the upload itself plays: H.264 in MP4; the poses come as a file beside it
    assert re.fullmatch(r"(/mock)?/media/\w+\.mp4", shown["video"]) and re.fullmatch(r"(/mock)?/media/\w+\.bin", shown["poses"])
    assert (shown["frames"], shown["people"], shown["width"], shown["height"]) == (60, 1, 960, 540)
    assert [label["name"] for label in shown["labels"]] == ["left knee", "right knee", "left hip", "right hip",
                                                            "left shoulder", "right shoulder"]
    assert len(app.get("image")) == 0 and len(app.get("video")) == 0  # no stills, no annotated preview
    assert "Frame 0 at 0.00 s" in texts(app.caption)

    angles = figure_with_y(app, "Angle (°)")
    assert angles["layout"]["xaxis"]["title"]["text"] == "Time (s)"
    names = [t["name"] for t in angles["data"] if t.get("showlegend", True)]
    assert names == ["left knee", "right knee", "left hip", "right hip", "left shoulder", "right shoulder"]
    x = array(angles["data"][0]["x"])
    np.testing.assert_allclose(x, np.arange(60) / 30, atol=1e-3)  # seconds, from each frame's timestamp
    assert marker(angles) == 0
    speed = figure_with_y(app, "Speed (px/s)")
    assert [t["name"] for t in speed["data"]] == ["left_wrist", "right_wrist", "left_ankle", "right_ankle"]
    assert len(figures(app)) == 3  # angles, speed, data quality

    landmarks, summary = app.dataframe[0].value, app.dataframe[1].value
    assert len(landmarks) == 33 and landmarks["landmark"].iloc[0] == "nose"
    assert list(landmarks.columns) == ["landmark", "x", "y", "z", "visibility", "presence", "x_px", "y_px",
                                       "world_x", "world_y", "world_z"]  # the Image page's order
    assert list(summary.columns[:5]) == ["angle", "min", "max", "range", "mean"]
    shoulders = summary.set_index("angle").loc[["left shoulder", "right shoulder"]]
    assert (shoulders["range"] > 100).all()  # jumping jacks: the arms swing from the sides to overhead
    assert (shoulders["max"] - shoulders["min"] - shoulders["range"]).abs().max() < 1e-6

    assert download_labels(app) == CLIP_DOWNLOADS
    assert "no person in 0" in texts(app.caption)


def test_the_annotated_video_is_made_when_asked_for(media: Path, tmp_path: Path) -> None:
    clips.VIDEOS.clear()  # made once per process: not by an earlier test
    data = (media / "clip.mp4").read_bytes()
    app = upload(video_page(), "clip.mp4", data)
    assert not annotated_button(app)  # nothing is drawn into the picture unless asked
    labelled(app.button, "Make the annotated video").click().run()
    settle(app)
    assert not app.error and annotated_button(app) and download_labels(app) == CLIP_DOWNLOADS
    made = clips.VIDEOS.get(f"{clips.analysis_key(content_digest(data), PoseSettings(), ClipOptions())}|annotated")
    assert made is not None and made[4:8] == b"ftyp"
    path = tmp_path / "annotated.mp4"
    path.write_bytes(made)
    assert len(list(read_frames(path))) == 60  # every analysed frame


def test_joints_chosen_are_charted_and_labelled_in_the_player(media: Path) -> None:
    app = upload(video_page(), "clip.mp4", (media / "clip.mp4").read_bytes())
    labelled(app.multiselect, "Joints").set_value(["left elbow", "trunk lean"]).run()
    assert not app.exception
    assert [label["name"] for label in player(app)["labels"]] == ["left elbow", "trunk lean"]
    angles = figure_with_y(app, "Angle (°)")
    assert [t["name"] for t in angles["data"] if t.get("showlegend", True)] == ["left elbow", "trunk lean"]
    assert marker(angles) == 0  # the player's frame, the first until it reports another


def test_smoothing_and_height_recompute_only_kinematics(media: Path, analyses: list[ClipOptions]) -> None:
    app = upload(video_page(), "clip.mp4", (media / "clip.mp4").read_bytes())
    assert len(analyses) == 1
    smoothed = array(figure_with_y(app, "Angle (°)")["data"][1]["y"])

    labelled(app.slider, "Cutoff (Hz)").set_value(2.0).run()
    labelled(app.slider, "Longest gap to fill (s)").set_value(0.5).run()
    labelled(app.number_input, "Person's height (m)").set_value(1.80).run()
    assert not app.exception
    assert len(analyses) == 1  # the pose analysis came from the cache each time
    assert not np.allclose(array(figure_with_y(app, "Angle (°)")["data"][1]["y"]), smoothed, equal_nan=True)
    speeds = array(figure_with_y(app, "Speed (m/s)")["data"][0]["y"])
    assert 0.1 < np.nanmax(speeds) < 15  # a person's wrist, in metres per second

    upload(app, "clip again.mp4", (media / "clip.mp4").read_bytes())
    assert len(analyses) == 1  # the same file uploaded again is recognised by its content


def test_trim_and_stride_apply_with_the_form_button(media: Path, analyses: list[ClipOptions]) -> None:
    app = upload(video_page(), "clip.mp4", (media / "clip.mp4").read_bytes())
    labelled(app.slider, "Part to analyse (s)").set_value((0.5, 1.5))
    labelled(app.number_input, "Frame stride").set_value(2)
    settle(labelled(app.button, "Analyse this part").click().run())
    assert analyses[-1] == ClipOptions(start_s=0.5, end_s=1.5, stride=2)
    assert "analysed 15 frames" in texts(app.caption)
    angles = figure_with_y(app, "Angle (°)")
    np.testing.assert_allclose(array(angles["data"][0]["x"]), 0.5 + np.arange(15) / 15, atol=1e-3)
    assert player(app)["frames"] == 15
    assert "at 0.50 s" in texts(app.caption)


def test_a_second_person_gets_a_selector_and_a_trc_of_their_own(media: Path) -> None:
    app = video_page()
    labelled(app.slider, "Most people to find").set_value(2).run()
    upload(app, "clip.mp4", (media / "clip.mp4").read_bytes())
    person = labelled(app.selectbox, "Person")
    assert [option.split(" (")[0] for option in person.options] == ["person 1", "person 2"]
    assert person.options[0].endswith(" frames)")
    assert download_labels(app) == [*CLIP_DOWNLOADS[:4], "TRC person 1", "TRC person 2", CLIP_DOWNLOADS[-1]]
    person.set_value(1).run()
    assert not app.exception
    quality = [f for f in figures(app) if f["data"][0]["type"] == "heatmap"][0]
    assert np.nansum(array(quality["data"][0]["z"][0])) > 30  # the walker is missing for most of the clip
    assert "no person in" in texts(app.caption)


def test_privacy_mode_renders_the_skeleton_only(media: Path, analyses: list[ClipOptions]) -> None:
    app = video_page()
    labelled(app.toggle, "Privacy mode (skeleton only)").set_value(True).run()
    upload(app, "clip.mp4", (media / "clip.mp4").read_bytes())
    assert not app.error
    shown = player(app)
    assert shown["video"] is None and "Privacy mode" in shown["message"]  # the browser never gets the pixels
    assert shown["poses"].endswith(".bin") and table_kinds(app)[:2] == ["landmark", "angle"]
    assert len(analyses) == 1 and analyses[0].privacy


def test_a_phone_video_hevc_mov_turned_to_portrait(tmp_path: Path, clip_frames: list[np.ndarray]) -> None:
    data = encode(tmp_path / "phone.mov", clip_frames[:12], codec="libx265", rotation=90,
                  options={"x265-params": "log-level=none"})
    app = upload(video_page(), "IMG_0042.MOV", data, "video/quicktime")
    assert not app.error, texts(app.error)
    caption = texts(app.caption)
    assert "IMG_0042.MOV · 540 × 960 · 30 frames/s" in caption and "HEVC" in caption and "turned" in caption
    assert "analysed 12 frames" in caption
    shown = player(app)  # browsers cannot play HEVC: the page waited for the playable copy (an H.264 MP4)
    assert shown["video"].endswith(".mp4") and not shown["message"]


@pytest.mark.parametrize(("name", "codec", "options"), [
    ("clip.webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
    ("clip.avi", "mpeg4", {}),
    ("clip.mkv", "libx264", {}),
])
def test_other_containers_are_read(tmp_path: Path, clip_frames: list[np.ndarray], name: str, codec: str,
                                   options: dict[str, str]) -> None:
    data = encode(tmp_path / name, clip_frames[:8], codec=codec, options=options)
    app = upload(video_page(), name, data, "video/x-matroska")
    assert not app.error, texts(app.error)
    assert "analysed 8 frames" in texts(app.caption)


# --- recordings ------------------------------------------------------------------------------------------------------


def test_a_saved_recording_shows_charts_and_tables_without_video(media: Path) -> None:
    result = analyse_video(media / "clip.mp4", PoseSettings(), ClipOptions(stride=3), name="clip.mp4")
    app = upload(video_page(), "session.npz", result.to_npz(), "application/octet-stream")
    assert not app.error and not app.exception
    shown = player(app)  # the skeleton on a blank stage
    assert shown["video"] is None and "holds no pictures" in shown["message"] and shown["frames"] == 20
    assert "session.npz · 20 frames over 1.9 s · 960 × 540" in texts(app.caption)
    angles = figure_with_y(app, "Angle (°)")
    np.testing.assert_allclose(array(angles["data"][0]["x"]), result.series.times_s)
    kinds = table_kinds(app)
    assert kinds[:2] == ["landmark", "angle"] and set(kinds[2:]) <= {"event"}  # and the jacks' jumps, if any
    assert download_labels(app) == CLIP_DOWNLOADS  # the same files as the video's


# --- bad input -------------------------------------------------------------------------------------------------------


def _audio_only(path: Path) -> bytes:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100, layout="mono")
        for start in range(0, 22050, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path.read_bytes()


def _damaged_npz(path: Path, damage: str) -> bytes:
    """A pose series with valid shapes whose times or size are wrong in one way."""
    times = np.arange(10, dtype=np.float64) / 30
    size = np.array([640, 480])
    if damage == "unsorted":
        times[[3, 4]] = times[[4, 3]]
    elif damage == "repeated":
        times[5] = times[4]
    elif damage == "nan":
        times[2] = np.nan
    elif damage == "zero":
        size = np.array([0, 0])
    landmarks = np.full((10, 1, 33, 5), 0.5, np.float32)
    np.savez(path, times_s=times, frame_index=np.arange(10), landmarks=landmarks,
             world=np.zeros((10, 1, 33, 3), np.float32), size=size)
    return path.with_suffix(".npz").read_bytes()


def _not_ours_npz(path: Path) -> bytes:
    np.savez(path, weights=np.ones(3))
    return path.with_suffix(".npz").read_bytes()


@pytest.mark.parametrize(("name", "make", "words"), [
    ("empty.mp4", lambda path: b"", "This file is empty (0 bytes)"),
    ("notes.mp4", lambda path: b"These are my training notes, not a video.\n" * 40, "not a video file we can read"),
    ("song.mp4", _audio_only, "no video track (it may be audio only)"),
    ("weights.npz", _not_ours_npz, "not a PoseScope pose series"),
    ("junk.npz", lambda path: b"PK\x03\x04 not really a zip", "not a PoseScope pose series"),
    ("unsorted.npz", lambda path: _damaged_npz(path, "unsorted"), "its frame times are not in order"),
    ("repeated.npz", lambda path: _damaged_npz(path, "repeated"), "frame times repeat the one before"),
    ("nan.npz", lambda path: _damaged_npz(path, "nan"), "some frame times are not numbers"),
    ("zero.npz", lambda path: _damaged_npz(path, "zero"), "frame size 0 × 0 is not a picture size"),
])
def test_bad_files_get_a_sentence_and_nothing_crashes(tmp_path: Path, name: str,
                                                      make: Callable[[Path], bytes], words: str) -> None:
    app = upload(video_page(), name, make(tmp_path / name))
    assert len(app.error) == 1, texts(app.error)
    shown = texts(app.error)
    assert words in shown and name in shown and "Traceback" not in shown
    assert len(app.get("bidi_component")) == 0 and len(app.get("plotly_chart")) == 0


def test_a_truncated_video_keeps_the_part_before_the_break(media: Path) -> None:
    data = (media / "clip.mp4").read_bytes()
    start = data.index(b"mdat")
    app = upload(video_page(), "cut.mp4", data[: start + (len(data) - start) // 2])
    assert not app.error
    warning = texts(app.warning)
    assert "could not be read to the end" in warning and "The results below cover the part before the break" in warning
    assert player(app)["video"] and len(figures(app)) == 3


def test_a_video_with_nobody_in_it_says_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wall = cv2.resize(rng.integers(90, 140, (27, 48, 3), np.uint8), (480, 270), interpolation=cv2.INTER_CUBIC)
    data = encode(tmp_path / "wall.mp4", [np.roll(wall, i, axis=1) for i in range(15)])
    app = upload(video_page(), "wall.mp4", data)
    assert "No person was found in any analysed frame" in texts(app.warning)
    assert player(app)["video"].endswith(".mp4")  # the video is still there to look at
    assert len(app.get("plotly_chart")) == 0 and len(app.get("download_button")) == 0


def test_a_one_frame_video_shows_its_pose_without_curves(tmp_path: Path, clip_frames: list[np.ndarray]) -> None:
    app = upload(video_page(), "still.mp4", encode(tmp_path / "still.mp4", clip_frames[:1]))
    assert not app.error
    assert "single frame" in texts(app.warning)
    assert len(app.dataframe) == 2 and len(app.dataframe[0].value) == 33
    assert player(app)["frames"] == 1
    assert len(figures(app)) == 1  # only the data quality strip
    assert "analysed 1 frame in" in texts(app.caption)


def test_a_4k_60fps_clip_says_it_will_take_a_while_and_works(tmp_path: Path, clip_frames: list[np.ndarray]) -> None:
    frames = [cv2.resize(rgb, (3840, 2160), interpolation=cv2.INTER_LINEAR) for rgb in clip_frames[:24:2]]
    data = encode(tmp_path / "uhd.mp4", frames, fps=60, options={"preset": "ultrafast"})
    app = upload(video_page(), "uhd.mp4", data, wait=False)
    assert "This is a 3840 × 2160 video at 60 frames/s" in texts(app.warning)  # while it is analysed
    settle(app)
    assert not app.error
    assert "analysed 12 frames" in texts(app.caption)
    assert player(app)["video"] and len(figures(app)) == 3


# --- the analysis as a background job --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_video(clip_frames: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """600 frames (20 s) of the test clip played forwards and backwards: long enough to act during its analysis."""
    frames = [clip_frames[i % 118 if i % 118 < 60 else 118 - i % 118] for i in range(600)]
    return encode(tmp_path_factory.mktemp("long") / "session.mp4", frames, options={"preset": "ultrafast"})


def staged_names(temp_dir: Path) -> list[str]:
    return sorted(p.name for folder in temp_dir.iterdir() for p in folder.iterdir())


def test_touching_the_sidebar_and_leaving_the_page_neither_restart_nor_lose_the_analysis(
        long_video: bytes, analyses: list[ClipOptions]) -> None:
    app = upload(video_page(), "session.mp4", long_video, wait=False)
    before = wait_for_frames(app, 60)
    assert "/ 600 frames" in progress_text(app) and "frames/s" in progress_text(app)

    labelled(app.slider, "Cutoff (Hz)").set_value(3.0).run()  # smoothing, calibration: the job goes on
    labelled(app.number_input, "Person's height (m)").set_value(1.75).run()
    assert frames_done(app) >= before, "the progress went back: the analysis restarted"
    app.switch_page("views/image.py").run()  # away, and back: the uploader is empty then, the job is not
    app.switch_page("views/video.py").run()
    assert not app.exception
    assert frames_done(app) >= before or not running(app)
    settle(app)
    assert len(analyses) == 1, "the analysis ran more than once"
    assert "analysed 600 frames" in texts(app.caption)
    assert download_labels(app) == CLIP_DOWNLOADS
    assert labelled(app.button, "Close this video")  # the video stays until closed or replaced


def test_new_pose_settings_replace_the_job(long_video: bytes, analyses: list[ClipOptions], temp_dir: Path) -> None:
    app = upload(video_page(), "session.mp4", long_video, wait=False)
    wait_for_frames(app, 10)
    labelled(app.radio, "Model").set_value("lite").run()
    settle(app)
    assert len(analyses) == 2  # the full model's job was cancelled, the lite one ran
    assert "analysed 600 frames" in texts(app.caption)
    assert staged_names(temp_dir) == ["upload.mp4"]  # one copy of the upload, nothing else


def test_cancel_stops_the_work_keeps_no_partial_files_and_waits_to_be_asked_again(
        long_video: bytes, analyses: list[ClipOptions], temp_dir: Path) -> None:
    app = upload(video_page(), "session.mp4", long_video, wait=False)
    wait_for_frames(app, 10)
    app.button(key="cancel_analysis").click().run()
    settle(app, timeout_s=10)
    assert "The analysis was cancelled" in texts(app.info)
    assert len(app.get("bidi_component")) == 0
    assert staged_names(temp_dir) == ["upload.mp4"]  # nothing but the upload, which stays for a retry
    app.run()
    assert not running(app) and len(analyses) == 1  # it does not start again by itself

    labelled(app.button, "Analyse again").click().run()
    settle(app)
    assert "analysed 600 frames" in texts(app.caption) and len(analyses) == 2


def test_file_names_are_shown_as_they_are_not_as_markdown(tmp_path: Path) -> None:
    name = "**bold** [link](http://example.org) _x_.mp4"
    app = upload(video_page(), name, b"These are my training notes, not a video.\n" * 40)
    shown = app.error[0].value
    assert r"\*\*bold\*\* \[link\]\(http\://example.org\) \_x\_.mp4" in shown
    assert "not a video file we can read" in shown


# --- exercises -------------------------------------------------------------------------------------------------------


def exercise_page(exercise: str) -> AppTest:
    """The Video page opened at /video?exercise=… (a bookmarked set-up)."""
    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard.py"), default_timeout=120)
    app.run()
    app.switch_page("views/video.py")
    app.query_params["exercise"] = exercise
    app.run()
    assert not app.exception, app.exception
    return app


def test_the_exercise_comes_from_the_url_and_its_reps_show_with_the_curves(media: Path) -> None:
    app = upload(exercise_page("jumping_jack"), "clip.mp4", (media / "clip.mp4").read_bytes())
    assert labelled(app.selectbox, "Exercise").value == "jumping_jack"
    # clip.mp4 holds one whole jumping jack and most of a second one, which is not over when the clip ends.
    assert labelled(app.metric, "Reps").value == "1"
    reps = [d.value for d in app.dataframe if "extreme_deg" in d.value.columns]
    assert len(reps) == 1 and list(reps[0]["rep"]) == [1]
    assert reps[0]["extreme_deg"].iloc[0] > 150 and bool(reps[0]["depth_ok"].iloc[0])
    angles = figure_with_y(app, "Angle (°)")
    assert [t["name"] for t in angles["data"] if t.get("showlegend", True)] == ["left shoulder", "right shoulder"]
    shaded = [s for s in angles["layout"]["shapes"] if s.get("name") == "rep 1"]
    assert len(shaded) == 1 and 0 <= shaded[0]["x0"] < shaded[0]["x1"] <= 2.0
    assert any("Range of motion" in str(f["layout"].get("annotations")) for f in figures(app))
    assert download_labels(app) == [*CLIP_DOWNLOADS[:3], "Reps CSV", *CLIP_DOWNLOADS[3:]]
    assert app.query_params["exercise"] == "jumping_jack"


def test_choosing_another_exercise_recounts_without_a_new_analysis(media: Path, analyses: list[ClipOptions]) -> None:
    app = upload(exercise_page("jumping_jack"), "clip.mp4", (media / "clip.mp4").read_bytes())
    labelled(app.selectbox, "Exercise").set_value("squat").run()
    assert not app.exception
    assert labelled(app.metric, "Reps").value == "0"
    assert app.query_params["exercise"] == "squat"  # the address follows the picker, to bookmark it
    assert len(analyses) == 1
    labelled(app.selectbox, "Exercise").set_value("auto").run()
    assert "No exercise was recognised" in texts(app.info)  # one whole jumping jack is not yet a set
    assert len(analyses) == 1


def test_an_unknown_exercise_in_the_url_lists_the_known_ones() -> None:
    app = exercise_page("burpee")
    warning = texts(app.warning)
    assert "There is no exercise called “burpee”" in warning
    assert "squat" in warning and "jumping_jack" in warning and "wall_sit" in warning
    assert labelled(app.selectbox, "Exercise").value == "none"


def test_a_pose_template_scores_every_frame_of_the_clip(media: Path) -> None:
    result = analyse_video(media / "clip.mp4", PoseSettings(), ClipOptions(), name="clip.mp4")
    series = result.series
    shoulders = series.pixels[:, 0, 11:13, 1].mean(axis=-1) - series.pixels[:, 0, 15:17, 1].mean(axis=-1)
    overhead = int(np.nanargmax(shoulders[:30]))  # the first jump's top: the wrists highest above the shoulders
    template = PoseTemplate.from_pose(series.pixels[overhead, 0], series.visibility[overhead, 0], "star")
    app = upload(video_page(), "clip.mp4", (media / "clip.mp4").read_bytes())
    assert any(b.label == "This frame as a template" for b in app.get("download_button"))
    uploader = [u for u in app.file_uploader if u.label.startswith("Score the clip against a template")][0]
    uploader.set_value(("star.json", template.to_json().encode(), "application/json")).run()
    assert not app.exception and not app.error
    best = labelled(app.metric, "Best match").value
    percent, at = float(best.split(" %")[0]), float(best.split("at ")[1].rstrip(" s"))
    assert percent > 95 and abs(at - series.times_s[overhead]) < 0.1
    curve = figure_with_y(app, "Match (%)")
    match = array(curve["data"][0]["y"])
    assert match[0] < 40  # arms down at the start: nothing like the star
    uploader = [u for u in app.file_uploader if u.label.startswith("Score the clip against a template")][0]
    uploader.set_value(("bad.json", b"{not json", "application/json")).run()
    assert "bad.json" in texts(app.error) and not app.exception


def test_a_hold_shows_its_time_held_and_in_good_form(media: Path) -> None:
    app = upload(exercise_page("plank"), "clip.mp4", (media / "clip.mp4").read_bytes())
    assert not app.exception and not app.error
    assert labelled(app.metric, "Held").value == "0.0 s"  # jumping jacks are no plank
    assert labelled(app.metric, "Holds").value == "0"
    assert "never held for long enough" in texts(app.caption)
    assert any("measured from the side" in w.value for w in app.warning)  # the jumper faces the camera
