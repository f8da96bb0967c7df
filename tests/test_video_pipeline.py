"""The streaming video pipeline and the series it builds, on a real clip with the real model."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from analysis.angles import ANGLE_NAMES
from analysis.drawing import PRIVACY_BACKGROUND
from analysis.engine import FramePose, PoseSettings
from analysis.landmarks import INDEX
from analysis.photo import PhotoAnalysis
from analysis.series import PoseSeries, SeriesBuilder, Smoothing, clean, kinematics, nyquist_hz
from analysis.video import ClipOptions, Progress, analyse_video, expected_frames
from analysis.video_io import VideoError, VideoInfo, VideoWriter, probe


@pytest.fixture(scope="module")
def clip_result(media: Path, tmp_path_factory: pytest.TempPathFactory):
    annotated = tmp_path_factory.mktemp("out") / "annotated.mp4"
    progress: list[Progress] = []
    result = analyse_video(media / "clip.mp4", PoseSettings(max_people=2), ClipOptions(), annotated, progress.append)
    return result, annotated, progress


def test_every_frame_is_analysed_with_its_own_time(clip_result) -> None:
    result, _, _ = clip_result
    series = result.series
    assert series.frames == 60 and series.people == 2 and (series.width, series.height) == (960, 540)
    np.testing.assert_allclose(series.times_s, np.arange(60) / 30, atol=1e-3)
    np.testing.assert_array_equal(series.frame_index, np.arange(60))
    assert series.present[:, 0].sum() >= 45  # the jumper stays in slot 0
    assert result.warning is None


def test_the_walker_who_enters_late_gets_the_second_slot(clip_result) -> None:
    series = clip_result[0].series
    assert series.present[-5:].all()  # both in view at the end
    hips_x = series.landmarks[-5:, :, 23:25, 0].mean(axis=(0, 2))
    assert hips_x[0] < 0.45 < 0.7 < hips_x[1]  # jumper on the left kept slot 0, walker on the right


def test_progress_reports_frames_rate_and_time_left(clip_result) -> None:
    progress = clip_result[2]
    assert progress[-1].frames_done == 60 and progress[-1].fraction == 1.0 and progress[-1].remaining_s == 0
    assert all(p.fps > 0 for p in progress)
    assert [p.frames_done for p in progress] == sorted(p.frames_done for p in progress)


def test_the_annotated_video_plays_in_browsers(clip_result) -> None:
    annotated = clip_result[1]
    with av.open(str(annotated)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.format.name == "yuv420p"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 60 and frames[0].shape == (540, 960, 3)
    # The skeleton's red joints are drawn: pure red pixels that the source video does not have.
    red = np.array([((f[..., 0] > 200) & (f[..., 1] < 70) & (f[..., 2] < 70)).sum() for f in frames])
    present = clip_result[0].series.present.any(axis=1)
    assert (red[present] > 20).all() and (red[~present] < 5).all()


def test_trim_and_stride_keep_source_frame_numbers(media: Path) -> None:
    result = analyse_video(media / "clip.mp4", PoseSettings(complexity="lite"), ClipOptions(0.5, 1.5, stride=2))
    series = result.series
    np.testing.assert_array_equal(series.frame_index, np.arange(15, 45, 2))
    np.testing.assert_allclose(series.times_s, series.frame_index / 30, atol=1e-3)


def test_privacy_mode_shows_no_pixel_of_the_person(media: Path, tmp_path: Path) -> None:
    annotated = tmp_path / "private.mp4"
    analyse_video(media / "clip.mp4", PoseSettings(complexity="lite"), ClipOptions(end_s=0.5, privacy=True),
                  annotated)
    with av.open(str(annotated)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    background = np.abs(frame - np.array(PRIVACY_BACKGROUND)).sum(axis=-1) < 12
    assert background.mean() > 0.9


def test_cancelling_stops_the_threads_and_removes_the_partial_video(media: Path, tmp_path: Path) -> None:
    class Cancelled(Exception):
        pass

    def cancel_at_20(progress: Progress) -> None:
        if progress.frames_done >= 20:
            raise Cancelled

    threads_before = threading.active_count()
    annotated = tmp_path / "annotated.mp4"
    with pytest.raises(Cancelled):
        analyse_video(media / "clip.mp4", PoseSettings(complexity="lite"), ClipOptions(), annotated, cancel_at_20)
    assert not annotated.exists()
    assert threading.active_count() <= threads_before


def test_a_truncated_video_keeps_the_frames_before_the_break(media: Path, tmp_path: Path) -> None:
    # A clip whose media data is cut off (index at the front, so the file still opens).
    data = (media / "clip.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = analyse_video(cut, PoseSettings(complexity="lite"))
    assert 10 < result.series.frames < 60
    assert result.warning and "truncated or damaged" in result.warning


def test_bad_files_raise_a_sentence(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(VideoError, match="not a video file we can read"):
        analyse_video(text, PoseSettings())
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        analyse_video(empty, PoseSettings())


def test_a_start_past_the_end_is_explained(media: Path) -> None:
    with pytest.raises(VideoError, match="past the end"):
        analyse_video(media / "clip.mp4", PoseSettings(), ClipOptions(start_s=5))


def test_a_video_without_people_and_a_one_frame_video(tmp_path: Path) -> None:
    path = tmp_path / "wall.mp4"
    rng = np.random.default_rng(1)
    with VideoWriter(path, fps=25) as writer:
        writer.write(rng.integers(0, 255, (240, 320, 3), np.uint8), 0.0)
    result = analyse_video(path, PoseSettings())
    assert result.series.frames == 1 and not result.series.present.any()
    k = kinematics(result.series, Smoothing())
    assert np.isnan(k.angles_2d).all()


def test_smoothing_reduces_jitter_without_moving_the_movement(clip_result) -> None:
    series = clip_result[0].series
    raw_pixels, _, _ = clean(series, Smoothing(cutoff_hz=None, max_gap_s=0.0))
    smooth_pixels, _, filled = clean(series, Smoothing(cutoff_hz=4.0))
    nose_raw, nose_smooth = raw_pixels[:, 0, INDEX["nose"]], smooth_pixels[:, 0, INDEX["nose"]]
    both = np.isfinite(nose_raw[:, 0]) & np.isfinite(nose_smooth[:, 0])
    jitter = lambda x: np.abs(np.diff(x, 2, axis=0)).mean()  # noqa: E731
    assert jitter(nose_smooth[both]) < 0.5 * jitter(nose_raw[both])
    assert np.abs(nose_raw[both] - nose_smooth[both]).mean() < 5  # pixels: the head is where it was
    assert filled[:, 0].sum() > 0  # the frames MediaPipe missed mid-jump are filled in

    smooth = kinematics(series, Smoothing(cutoff_hz=4.0), height_m=1.75)
    shoulder = smooth.angles_2d[:, 0, ANGLE_NAMES.index("left shoulder")]
    assert np.nanmax(shoulder) - np.nanmin(shoulder) > 60  # jumping jacks swing the arms
    assert smooth.speed_m is not None and 0 < np.nanmedian(smooth.speed_m[:, 0]) < 5  # m/s: human speeds
    assert kinematics(series, Smoothing()).speed_m is None


def test_series_survives_a_round_trip_through_npz(clip_result) -> None:
    series = clip_result[0].series
    back = PoseSeries.from_npz(series.to_npz())
    np.testing.assert_array_equal(back.landmarks, series.landmarks)
    np.testing.assert_array_equal(back.times_s, series.times_s)
    assert (back.width, back.height) == (series.width, series.height)
    assert back.frame(0).people == series.frame(0).people


def _pose_at(*hips_x: float) -> FramePose:
    landmarks = np.zeros((len(hips_x), 33, 5), np.float32)
    landmarks[:, :, 0] = np.array(hips_x)[:, None]
    landmarks[:, :, 1] = 0.5
    return FramePose(landmarks, np.zeros((len(hips_x), 33, 3), np.float32), 100, 100)


def test_people_keep_their_slots_when_mediapipe_swaps_their_order() -> None:
    builder = SeriesBuilder(2, 100, 100)
    builder.add(0, 0.0, _pose_at(0.2, 0.8))
    builder.add(1, 0.033, _pose_at(0.81, 0.21))  # same two people, listed the other way round
    builder.add(2, 0.067, _pose_at(0.82))  # only the right one
    series = builder.build()
    np.testing.assert_allclose(series.landmarks[:, 0, 0, 0], [0.2, 0.21, np.nan])
    np.testing.assert_allclose(series.landmarks[:, 1, 0, 0], [0.8, 0.81, 0.82])


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 not really a zip", np.zeros(3).tobytes()])
def test_bytes_that_are_not_a_saved_series_are_refused_with_a_sentence(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a PoseScope recording"):
        PoseSeries.from_npz(data)


# the frame count the progress bar and the page's heads-up expect

def _info(fps: float = 30.0, duration_s: float = 2.0) -> VideoInfo:
    return VideoInfo(960, 540, 0, fps, duration_s, round(fps * duration_s), "h264", False)


def test_expected_frames_follow_trim_and_stride() -> None:
    assert expected_frames(_info(), ClipOptions()) == 60
    assert expected_frames(_info(), ClipOptions(0.5, 1.5, stride=2)) == 15
    assert expected_frames(_info(), ClipOptions(end_s=10.0)) == 60  # an end past the video's is the video's
    assert expected_frames(_info(fps=0.0), ClipOptions()) == 1  # no frame rate in the header
    assert expected_frames(_info(), ClipOptions(start_s=1.99, stride=5)) == 1


def test_expected_frames_are_what_is_analysed(media: Path, clip_result) -> None:
    info = probe(media / "clip.mp4")
    assert expected_frames(info, ClipOptions()) == clip_result[0].series.frames == clip_result[2][-1].frames_expected
    options = ClipOptions(0.5, 1.5, stride=2)
    assert expected_frames(info, options) == len(np.arange(15, 45, 2))  # as test_trim_and_stride_... finds


# when the low-pass filter can do nothing

def test_a_cutoff_at_or_above_nyquist_has_no_effect() -> None:
    at_30 = np.arange(30) / 30
    assert nyquist_hz(at_30) == pytest.approx(15.0)
    assert nyquist_hz(at_30[::2]) == pytest.approx(7.5)  # a stride of 2
    assert Smoothing(cutoff_hz=15.5).has_no_effect(at_30)
    assert not Smoothing(cutoff_hz=14.0).has_no_effect(at_30)
    assert Smoothing(cutoff_hz=8.0).has_no_effect(at_30[::2])
    assert not Smoothing(cutoff_hz=None).has_no_effect(at_30[::2])  # no filter: nothing to warn about


# one frame's landmark table

def test_frame_table_is_the_image_pages_table_for_one_frame(clip_result) -> None:
    series = clip_result[0].series
    frame = int(np.flatnonzero(series.present[:, 0])[0])
    table = series.frame_table(frame, 0)
    assert list(table.columns) == ["landmark", "x", "y", "z", "visibility", "presence", "x_px", "y_px",
                                   "world_x", "world_y", "world_z"]
    photo = PhotoAnalysis(FramePose(series.landmarks[frame, [0]], series.world[frame, [0]], series.width,
                                    series.height), np.zeros((1, 0)), np.zeros((1, 0)), np.zeros((1, 1, 3), np.uint8))
    pd.testing.assert_frame_equal(table, photo.landmarks().drop(columns="person"))
    np.testing.assert_allclose(table[["x_px", "y_px"]], series.pixels[frame, 0], rtol=1e-6)


def test_frame_table_is_empty_where_the_person_is_not_found(clip_result) -> None:
    series = clip_result[0].series
    frame = int(np.flatnonzero(~series.present[:, 1])[0])  # the walker comes in late
    table = series.frame_table(frame, 1)
    assert table.empty and list(table.columns) == list(series.frame_table(len(series.times_s) - 1, 1).columns)
