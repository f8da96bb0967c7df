"""The streaming video pipeline and the series it builds, on a real clip with the real model."""

from __future__ import annotations

import math
import threading
import time
import types
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest

from analysis.angles import ANGLE_NAMES
from analysis.drawing import PRIVACY_BACKGROUND
from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.landmarks import INDEX
from analysis.people import same_people, video_engine
from analysis.photo import PhotoAnalysis
import analysis.sharing
import analysis.stream
from analysis.result import ClipOptions
from analysis.series import PoseSeries, SeriesBuilder, Smoothing, clean, kinematics, nyquist_hz
from analysis.stream import Cancelled, PoseEstimationError, Progress
from analysis.video import analyse_video, expected_frames
from analysis.video_io import VideoError, VideoInfo, VideoWriter, keyframes_before, probe, read_frames


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
    assert result.warnings == ()


def test_the_walker_who_enters_late_gets_the_second_slot(clip_result) -> None:
    series = clip_result[0].series
    assert series.present[-5:].all()  # both in view at the end
    hips_x = series.landmarks[-5:, :, 23:25, 0].mean(axis=(0, 2))
    assert hips_x[0] < 0.45 < 0.7 < hips_x[1]  # jumper on the left kept slot 0, walker on the right


def test_progress_reports_frames_rate_and_time_left(clip_result) -> None:
    progress = clip_result[2]
    assert progress[-1].frames_done == 60 and progress[-1].fraction == 1.0 and progress[-1].remaining_s == 0
    assert all(p.fps > 0 for p in progress if p.frames_done)
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


def test_a_truncated_video_keeps_the_frames_before_the_break(media: Path, tmp_path: Path) -> None:
    # A clip whose media data is cut off (index at the front, so the file still opens).
    data = (media / "clip.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = analyse_video(cut, PoseSettings(complexity="lite"))
    assert 10 < result.series.frames < 60
    assert len(result.warnings) == 1 and "truncated or damaged" in result.warnings[0]


def test_a_video_analysed_in_spans_that_breaks_off_keeps_the_frames_before_the_break(media: Path,
                                                                                     tmp_path: Path) -> None:
    # demo.mp4 (230 frames) cut off at two thirds of its bytes: the break is in the later of its two spans.
    data = (media / "demo.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    threads: set[str] = set()
    result = analyse_video(cut, PoseSettings(complexity="lite"),
                           on_progress=lambda _: threads.update(t.name for t in threading.enumerate()))
    assert "posescope-span" in threads
    assert 100 < result.series.frames < 230
    assert np.all(np.diff(result.series.frame_index) == 1)
    assert len(result.warnings) == 1 and "truncated or damaged" in result.warnings[0]


def _matroska(path: Path, frames: list[np.ndarray], times_s: list[float]) -> None:
    """An H.264 Matroska file whose frames carry the given times, as a faulty camera or muxer writes them:
    the packets keep their timestamps, repeats and steps back included (Matroska stores them as they are;
    MP4's muxer would refuse them)."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=30, options={"bf": "0", "preset": "ultrafast"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        packets = []
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            packets += stream.encode(frame)
        packets += stream.encode()
        pts = [round(t / packets[0].time_base) for t in times_s]
        for k, (packet, time_pts) in enumerate(zip(packets, pts, strict=True)):
            packet.pts, packet.dts = time_pts, min(pts[k:])  # decoding times may repeat, never go back
            container.mux(packet)


@pytest.fixture(scope="module")
def clip_frames(media: Path) -> list[np.ndarray]:
    return [rgb for _, _, rgb in read_frames(media / "clip.mp4")]


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_frames_that_repeat_or_go_back_in_time_are_skipped_and_counted(clip_frames: list[np.ndarray],
                                                                       tmp_path: Path) -> None:
    times = [i / 30 for i in range(60)]
    times[10] = times[11] = times[9]  # two frames repeat frame 9's time
    times[30] = times[25]  # one goes back
    path, annotated = tmp_path / "repeats.mkv", tmp_path / "annotated.mp4"
    _matroska(path, clip_frames, times)
    assert [t for _, t, _ in read_frames(path)] == pytest.approx(times, abs=1e-3)  # the file really has them

    result = analyse_video(path, PoseSettings(complexity="lite"), annotated_path=annotated)
    kept = [i for i in range(60) if i not in (10, 11, 30)]
    np.testing.assert_array_equal(result.series.frame_index, kept)
    np.testing.assert_allclose(result.series.times_s, np.array(kept) / 30, atol=1e-3)
    assert result.series.present[:, 0].sum() >= 40  # the jumper is still found
    assert result.warnings == ("3 frames repeated an earlier time and were skipped (the video's timestamps are "
                               "faulty there).",)
    assert _frame_count(annotated) == 57


# MediaPipe counts time in microseconds, in 64 bits: a frame stamped 10^13 s (a corrupt timestamp) overflows
# its clock, and detect_for_video refuses it. That is the real way to make MediaPipe fail part-way used here.
CORRUPT_TIME_S = 1e13


def _corrupt_from_frame_30(clip_frames: list[np.ndarray], path: Path) -> None:
    _matroska(path, clip_frames, [i / 30 if i < 30 else CORRUPT_TIME_S + i / 30 for i in range(60)])


def test_mediapipe_failing_part_way_keeps_what_was_analysed(clip_frames: list[np.ndarray], tmp_path: Path) -> None:
    path, annotated = tmp_path / "corrupt.mkv", tmp_path / "annotated.mp4"
    _corrupt_from_frame_30(clip_frames, path)
    before = _pipeline_threads()

    result = analyse_video(path, PoseSettings(complexity="lite"), annotated_path=annotated)
    np.testing.assert_array_equal(result.series.frame_index, np.arange(30))
    assert result.series.present[:, 0].sum() >= 20
    (warning,) = result.warnings
    assert warning.startswith("The analysis stopped at frame 30 (10000000000001.00 s): MediaPipe failed on it (“")
    assert warning.endswith("”). The results below cover the 30 frames before it.")
    assert "\n" not in warning and "Traceback" not in warning
    assert _frame_count(annotated) == 30  # the annotated video of those frames is kept too
    assert _pipeline_threads() <= before


class ReplayingEngine(PoseEngine):
    """A real engine that hands MediaPipe each frame twice with the same timestamp, as a buggy caller might:
    MediaPipe refuses the second one with its own error. (A frame stamped 10^13 s, as above, fails only after
    earlier ones: MediaPipe takes any timestamp as its first. This is the way found to make it fail on the first
    frame; it needs `engine=`.)"""

    def detect_frame(self, rgb: np.ndarray, timestamp_ms: int) -> FramePose:
        super().detect_frame(rgb, timestamp_ms)
        return super().detect_frame(rgb, timestamp_ms)


def test_mediapipe_failing_on_the_first_frame_raises_a_sentence(media: Path, tmp_path: Path) -> None:
    annotated = tmp_path / "annotated.mp4"
    settings = PoseSettings(complexity="lite")
    before = _pipeline_threads()
    with ReplayingEngine(settings, Mode.VIDEO) as engine, pytest.raises(PoseEstimationError) as caught:
        analyse_video(media / "clip.mp4", settings, ClipOptions(start_s=0.5), annotated, engine=engine)
    message = str(caught.value)
    assert isinstance(caught.value, VideoError)  # the page and the CLI show it as it is
    assert message == ("Pose estimation failed on the first frame analysed, frame 15 (0.50 s): MediaPipe reported "
                       "“Input timestamp must be monotonically increasing”. Try another part of the video, or "
                       "another model.")
    assert not annotated.exists() and _pipeline_threads() <= before


def test_an_engine_for_other_settings_or_another_mode_is_refused(media: Path) -> None:
    with PoseEngine(PoseSettings(complexity="lite"), Mode.IMAGE) as image_engine, pytest.raises(ValueError):
        analyse_video(media / "clip.mp4", PoseSettings(complexity="lite"), engine=image_engine)
    with PoseEngine(PoseSettings(complexity="lite"), Mode.VIDEO) as lite, pytest.raises(ValueError):
        analyse_video(media / "clip.mp4", PoseSettings(complexity="full"), engine=lite)


def _annex_b(frames: list[np.ndarray]) -> bytes:
    """A raw H.264 stream (Annex B, no container) of the frames."""
    context = av.CodecContext.create("libx264", "w")
    context.height, context.width = frames[0].shape[:2]
    context.pix_fmt, context.time_base, context.options = "yuv420p", Fraction(1, 30), {"preset": "ultrafast"}
    packets = []
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = i
        packets += context.encode(frame)
    packets += context.encode(None)
    return b"".join(bytes(packet) for packet in packets)


def test_a_video_whose_picture_size_changes_part_way_keeps_one_preview_size(clip_frames: list[np.ndarray],
                                                                           tmp_path: Path) -> None:
    # Two raw H.264 streams one after the other, as a camera that switched resolution writes them.
    path, annotated = tmp_path / "switched.h264", tmp_path / "annotated.mp4"
    smaller = [cv2.resize(rgb, (640, 360), interpolation=cv2.INTER_AREA) for rgb in clip_frames[30:]]
    path.write_bytes(_annex_b(clip_frames[:30]) + _annex_b(smaller))
    assert {rgb.shape for _, _, rgb in read_frames(path)} == {(540, 960, 3), (360, 640, 3)}

    result = analyse_video(path, PoseSettings(complexity="lite"), annotated_path=annotated)
    assert result.series.frames == 60 and result.warnings == ()
    assert result.series.present[30:, 0].sum() >= 20  # the jumper is found in the smaller frames too
    with av.open(str(annotated)) as container:
        sizes = [(frame.width, frame.height) for frame in container.decode(video=0)]
    assert sizes == [(960, 540)] * 60


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_while_writing_the_annotated_video_says_so(media: Path, tmp_path: Path) -> None:
    # Writing to /dev/full fails as a full disk does (ENOSPC); the annotated path is a link to it.
    annotated = tmp_path / "annotated.mp4"
    annotated.symlink_to("/dev/full")
    before = _pipeline_threads()
    with pytest.raises(VideoError) as caught:
        analyse_video(media / "clip.mp4", PoseSettings(complexity="lite"), annotated_path=annotated)
    assert str(caught.value) == ("The video could not be written: there is not enough disk space (No space left "
                                 "on device). Free some space and try again.")
    assert not annotated.is_symlink() and Path("/dev/full").exists()  # the link is removed, not what it points to
    assert _pipeline_threads() <= before


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
    # At least 40 % less (the jumper, followed on his own crop, measured 0.90 against 1.79 px a frame²).
    assert jitter(nose_smooth[both]) < 0.6 * jitter(nose_raw[both])
    assert np.abs(nose_raw[both] - nose_smooth[both]).mean() < 5  # pixels: the head is where it was
    assert series.present[:, 0].all() and not filled[:, 0, INDEX["nose"]].any()  # followed on his crop, mid-jump too

    smooth = kinematics(series, Smoothing(cutoff_hz=4.0), height_m=1.75)
    shoulder = smooth.angles_2d[:, 0, ANGLE_NAMES.index("left shoulder")]
    assert np.nanmax(shoulder) - np.nanmin(shoulder) > 60  # jumping jacks swing the arms
    assert smooth.speed_m is not None and 0 < np.nanmedian(smooth.speed_m[:, 0]) < 5  # m/s: human speeds
    assert kinematics(series, Smoothing()).speed_m is None


def _pose_at(*x: float) -> FramePose:
    """People standing at these x, their landmarks spread over a 0.08 x 0.6 box, the first (the nose) at x."""
    spread = np.linspace(-0.04, 0.04, 33)
    spread[0] = 0.0
    landmarks = np.ones((len(x), 33, 5), np.float32)
    landmarks[:, :, 0] = np.array(x)[:, None] + spread
    landmarks[:, :, 1] = np.linspace(0.2, 0.8, 33)
    return FramePose(landmarks, np.zeros((len(x), 33, 3), np.float32), 100, 100)


def _frames_with_other_people(a: PoseSeries, b: PoseSeries) -> list[int]:
    """The frames in which two analyses of one video find other people (analysis.people.same_people)."""
    return [frame for frame in range(a.frames)
            if not same_people(FramePose(a.landmarks[frame][a.present[frame]], a.world[frame][a.present[frame]],
                                         a.width, a.height),
                               FramePose(b.landmarks[frame][b.present[frame]], b.world[frame][b.present[frame]],
                                         b.width, b.height))]


def test_a_long_video_analysed_in_spans_side_by_side_follows_whom_one_pass_follows(media: Path) -> None:
    """Without an annotated video, demo.mp4 (230 frames, a woman walking past the man in frames ~35-200) is cut in
    two spans analysed at once. The later span's landmarker starts afresh mid-walk and takes up the woman where one
    pass follows the man (one person asked for): the earlier span's landmarker carries on until both find the same
    person, so every frame has the person one pass finds, and the same frames and numbers."""
    settings = PoseSettings()
    threads: set[str] = set()
    in_spans = analyse_video(media / "demo.mp4", settings,
                             on_progress=lambda _: threads.update(t.name for t in threading.enumerate()))
    with video_engine(settings) as engine:
        one_pass = analyse_video(media / "demo.mp4", settings, engine=engine)
    assert "posescope-span" in threads
    a, b = one_pass.series, in_spans.series
    np.testing.assert_array_equal(a.times_s, b.times_s)
    np.testing.assert_array_equal(a.frame_index, b.frame_index)
    assert in_spans.warnings == one_pass.warnings == ()
    different = _frames_with_other_people(a, b)
    assert len(different) <= 2, f"another person than one pass's in frames {different}"
    first_span = a.times_s < keyframes_before(media / "demo.mp4", [probe(media / "demo.mp4").duration_s / 2])[0]
    assert first_span.sum() > 50
    np.testing.assert_array_equal(a.landmarks[first_span], b.landmarks[first_span])  # analysed by one landmarker


def _twice_over(source: Path, path: Path, keyframe_every: int) -> int:
    """source played twice in a row, as an H.264 MP4 with a keyframe every keyframe_every frames: its frame count."""
    frames = [rgb for _, _, rgb in read_frames(source)] * 2
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"g": str(keyframe_every), "keyint_min":
                                                                    str(keyframe_every), "preset": "ultrafast"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return len(frames)


def test_a_video_in_several_chunks_shared_by_two_landmarkers_follows_whom_one_pass_follows(
        media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """demo.mp4 twice over (460 frames) is cut into 4 chunks at keyframes 100, 200 and 300, which two landmarkers
    share: the second starts afresh near the middle, only where one person is counted in view (the woman walks
    past the man in frames ~35-200 of each copy; one person asked for; the count may miss her as she comes out from
    behind the tree, and the hand-over then follows the man). Every frame has the person one pass finds,
    in the same frames with the same times."""
    video = tmp_path / "twice.mp4"
    frames = _twice_over(media / "demo.mp4", video, keyframe_every=50)
    chunks = analysis.sharing.chunks_for(video, probe(video), ClipOptions(), frames)
    np.testing.assert_allclose(chunks.starts, np.array([0, 100, 200, 300]) / 30, atol=1e-3)
    settings = PoseSettings(complexity="lite")
    engines = 0

    def counted_engine(*args, **kwargs):  # the real one, counted
        nonlocal engines
        engines += 1
        return video_engine(*args, **kwargs)

    monkeypatch.setattr(analysis.sharing, "video_engine", counted_engine)
    shared = analyse_video(video, settings)
    monkeypatch.undo()
    with video_engine(settings) as engine:
        one_pass = analyse_video(video, settings, engine=engine)
    assert engines >= 2, "the chunks were not shared: one landmarker did all"
    a, b = one_pass.series, shared.series
    assert a.frames == b.frames == frames
    np.testing.assert_array_equal(a.times_s, b.times_s)
    np.testing.assert_array_equal(a.frame_index, b.frame_index)
    assert shared.warnings == one_pass.warnings == ()
    different = _frames_with_other_people(a, b)
    assert len(different) <= 4, f"another person than one pass's in frames {different}"


def test_chunks_are_started_afresh_in_the_middle_of_the_free_ones_where_no_one_else_is_in_view() -> None:
    chunks = analysis.sharing.Chunks([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    first = chunks.take(0)
    assert chunks.take(0) is None  # taken
    looked: list[float] = []

    def crowded(time_s: float) -> bool:
        looked.append(time_s)
        return time_s in (3.0, 5.0)

    second = chunks.take_free(crowded)
    # Free: 1-5, whose middle, chunk 3, shows someone else too: left to be carried into; its nearest, 2, does not.
    assert second.start_s == 2.0 and looked == [3.0, 2.0]
    assert chunks.carry_on(first) is None and first.chunk == 1  # free: the first landmarker goes on into it
    assert chunks.carry_on(first) is second  # taken: hand over to the span that has it
    assert chunks.carry_on(second) is None and second.chunk == 3
    third = chunks.take_free(crowded)
    assert third.start_s == 4.0 and looked == [3.0, 2.0, 5.0, 4.0]  # free: 4-5, whose middle, 5, is crowded
    # The one free chunk, 5, is crowded: none is started afresh there; it is left to the span that carries on into it.
    assert chunks.take_free(crowded) is None and looked == [3.0, 2.0, 5.0, 4.0]  # and it is not looked at again
    assert chunks.carry_on(third) is None and third.chunk == 5
    chunks.end_at(second)  # the video broke off in chunk 3: nothing after it is analysed
    assert chunks.take_free(crowded) is None and chunks.carry_on(second) is second
    assert chunks.spans()[:3] == [first, second, third]


def test_people_keep_their_slots_when_mediapipe_swaps_their_order() -> None:
    builder = SeriesBuilder(2, 100, 100)
    builder.add(0, 0.0, _pose_at(0.2, 0.8))
    builder.add(1, 0.033, _pose_at(0.81, 0.21))  # same two people, listed the other way round
    builder.add(2, 0.067, _pose_at(0.82))  # only the right one
    series = builder.build()
    np.testing.assert_allclose(series.landmarks[:, 0, 0, 0], [0.2, 0.21, np.nan])
    np.testing.assert_allclose(series.landmarks[:, 1, 0, 0], [0.8, 0.81, 0.82])


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


# stopping: every stage can be stopped at any moment, whichever is the slow one

PIPELINE_THREADS = frozenset({"posescope-decode", "posescope-render", "posescope-encode", "posescope-span"})
CANCEL_WITHIN_S = 2.0


def _pipeline_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name in PIPELINE_THREADS}


class Stages:
    """Which of the pipeline's functions each thread is in, told by the interpreter's profiling hook
    (threading.setprofile) on the threads the analysis starts: the code is watched, not changed.

    inside(thread, function): that thread (by name) is running that function now, or waiting in it (a
    generator counts while it runs, not while it is suspended). end_offered: the decoding thread waits in
    Decoder._offer with the end marker (every frame is decoded and queued).
    """

    WATCHED = frozenset({"Decoder.frames", "Decoder._offer", "read_frames", "PoseEngine.detect_frame",
                         "_Renderer.put", "_Renderer.close", "VideoWriter.write", "VideoWriter.close"})

    def __init__(self) -> None:
        self._depth: dict[tuple[str, str], int] = {}
        self.end_offered = False

    def __call__(self, frame: types.FrameType, event: str, arg: object) -> None:
        if event not in ("call", "return") or (name := frame.f_code.co_qualname) not in self.WATCHED:
            return
        key = (threading.current_thread().name, name)
        self._depth[key] = self._depth.get(key, 0) + (1 if event == "call" else -1)
        if name == "Decoder._offer":
            self.end_offered = event == "call" and frame.f_locals.get("item") is analysis.stream._END

    def inside(self, thread: str, function: str) -> bool:
        return self._depth.get((thread, function), 0) > 0


@pytest.fixture(autouse=True)
def _no_profiling_hook_left() -> Iterator[None]:
    yield
    threading.setprofile(None)


class Analysis:
    """analyse_video on a thread of its own, as the page's background job runs it, so that the test can watch
    where each stage is and cancel it there: with the stop event, or as the page's Cancel button does, by
    raising from on_progress (which runs on the analysing thread) at its first call after the click."""

    def __init__(self, path: Path, annotated: Path | None, options: ClipOptions = ClipOptions(),
                 settings: PoseSettings = PoseSettings(complexity="lite"),
                 raise_when: Callable[[Analysis, Progress], bool] | None = None) -> None:
        self.annotated, self.raise_when = annotated, raise_when
        self.stop = threading.Event()
        self.clicked = threading.Event()  # the user's click that on_progress answers by raising
        self.progress: list[Progress] = []
        self.outcome: object = None
        self.cancelled_at = self.returned_at = math.nan
        self.before = _pipeline_threads()
        self.stages = Stages()
        threading.setprofile(self.stages)  # for the threads started from now on: this one and the pipeline's
        self.thread = threading.Thread(target=self._run, args=(path, settings, options), name="test-analysis",
                                       daemon=True)
        self.thread.start()

    def _run(self, path: Path, settings: PoseSettings, options: ClipOptions) -> None:
        try:
            self.outcome = analyse_video(path, settings, options, self.annotated, self._on_progress, stop=self.stop)
        except BaseException as error:  # noqa: BLE001 - the test looks at it
            self.outcome = error
        finally:
            self.returned_at = time.perf_counter()

    def _on_progress(self, progress: Progress) -> None:
        self.progress.append(progress)
        if self.raise_when is not None and self.raise_when(self, progress):
            self.cancelled_at = time.perf_counter()
            raise UserCancel
        if self.clicked.is_set():
            raise UserCancel

    @property
    def frames_done(self) -> int:
        return self.progress[-1].frames_done if self.progress else 0

    def inside(self, function: str, thread: str = "test-analysis") -> bool:
        return self.stages.inside(thread, function)

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = 60) -> float:
        """Return the time at which condition() first holds (fail if it never does)."""
        deadline = time.perf_counter() + timeout_s
        while not condition():
            assert self.thread.is_alive(), f"the analysis ended before the stage to stop was reached: {self.outcome!r}"
            assert time.perf_counter() < deadline, "the stage to stop was never reached"
            time.sleep(0.002)
        return time.perf_counter()

    def cancel_when(self, condition: Callable[[], bool], how: str) -> None:
        """As soon as condition() holds, set the stop event (how="stop") or click Cancel (how="on_progress")."""
        self.wait_until(condition)
        self.cancelled_at = time.perf_counter()
        (self.stop if how == "stop" else self.clicked).set()

    def assert_stopped_promptly_and_cleanly(self, how: str) -> float:
        """The analysis raised Cancelled (or on_progress's exception) within CANCEL_WITHIN_S of the cancel, no
        thread of its pipeline is left, and the partial annotated video is gone. Returns the time it took."""
        self.thread.join(30)
        threading.setprofile(None)
        assert not self.thread.is_alive(), "the analysis hangs after a cancel"
        assert isinstance(self.outcome, Cancelled if how == "stop" else UserCancel), repr(self.outcome)
        took = self.returned_at - self.cancelled_at
        assert 0 <= took < CANCEL_WITHIN_S, f"the cancel took {took:.2f} s"
        assert _pipeline_threads() <= self.before, f"threads left running: {_pipeline_threads() - self.before}"
        assert self.annotated is None or not self.annotated.exists()
        print(f"cancel took {took * 1000:.0f} ms")
        return took


class UserCancel(Exception):
    """What the page's progress callback raises when the user cancels (Streamlit's own is a StopException)."""


@pytest.fixture(scope="module")
def slow_to_decode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SLOW_DECODE_FRAMES frames of 3840x2160 H.264 random noise: 0.1 to 0.5 s a frame to decode here (2 cores,
    quiet or busy), many times what the lite model takes over a 256-pixel frame, so the analysis waits on
    decoding; enough frames that it is still decoding when the cancel comes, on a quiet machine too."""
    path = tmp_path_factory.mktemp("slow") / "noise_2160p.mp4"
    rng = np.random.default_rng(7)
    noise = [rng.integers(0, 256, (2160, 3840, 3), np.uint8) for _ in range(3)]
    with VideoWriter(path, preset="ultrafast") as writer:
        for i in range(SLOW_DECODE_FRAMES):
            writer.write(noise[i % 3], i / 30)
    return path


SLOW_DECODE_FRAMES = 30


@pytest.fixture(scope="module")
def slow_to_encode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 frames of 1920x1080 random noise, uncompressed (rawvideo in Matroska, 150 MB): decoding costs a few
    ms a frame and the lite model about 20, but encoding the full-size annotated preview 0.1 to 0.2 s, so the
    preview's queues fill and the analysis waits on the encoder."""
    path = tmp_path_factory.mktemp("slow") / "noise_1080p.mkv"
    rng = np.random.default_rng(8)
    noise = [av.VideoFrame.from_ndarray(rng.integers(0, 256, (1080, 1920, 3), np.uint8), format="rgb24")
             .reformat(format="yuv420p") for _ in range(4)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for i in range(SLOW_FRAMES):
            frame = noise[i % 4]
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


SLOW_FRAMES = 48
FULL_SIZE = ClipOptions(analysis_max_side=1920, preview_max_side=1920)


@pytest.mark.parametrize("how", ["stop", "on_progress"])
def test_cancel_while_decoding_is_the_bottleneck(slow_to_decode: Path, tmp_path: Path, how: str) -> None:
    # The analysing thread waits for a decoded frame while the decoding thread is busy inside FFmpeg.
    run = Analysis(slow_to_decode, tmp_path / "annotated.mp4", ClipOptions(analysis_max_side=256))
    run.cancel_when(lambda: run.frames_done > 0 and run.inside("Decoder.frames")
                    and run.inside("read_frames", "posescope-decode"), how)
    run.assert_stopped_promptly_and_cleanly(how)
    assert 0 < run.frames_done < SLOW_DECODE_FRAMES


@pytest.mark.parametrize("how", ["stop", "on_progress"])
def test_cancel_while_the_decoder_waits_to_queue_its_end_on_a_full_queue(media: Path, tmp_path: Path,
                                                                         how: str) -> None:
    # 13 frames: when the analysis has taken 5 (its first progress report), the queue holds the other 8 and
    # the decoding thread waits to queue its end marker. A cancel must not leave it waiting there for ever.
    def at_frame_5(run: Analysis, progress: Progress) -> bool:
        if progress.frames_done != 5:
            return False
        deadline = time.perf_counter() + 10
        while not run.stages.end_offered:
            assert time.perf_counter() < deadline, "the decoder never came to wait with its end marker"
            time.sleep(0.002)
        if how == "stop":  # a slow progress callback, and meanwhile the stop is set from another thread
            threading.Thread(target=run.cancel_when, args=(lambda: True, "stop")).start()
            assert run.stop.wait(10)
            return False
        return True

    run = Analysis(media / "clip.mp4", tmp_path / "annotated.mp4", ClipOptions(end_s=12.5 / 30), PoseSettings(),
                   raise_when=at_frame_5)
    run.assert_stopped_promptly_and_cleanly(how)
    assert run.frames_done == 5


@pytest.mark.parametrize("how", ["stop", "on_progress"])
def test_cancel_during_pose_estimation(media: Path, tmp_path: Path, how: str) -> None:
    run = Analysis(media / "clip.mp4", tmp_path / "annotated.mp4", settings=PoseSettings(complexity="heavy"))
    run.cancel_when(lambda: run.frames_done >= 20 and run.inside("PoseEngine.detect_frame"), how)
    run.assert_stopped_promptly_and_cleanly(how)
    assert 20 <= run.frames_done < 60


@pytest.mark.parametrize("how", ["stop", "on_progress"])
def test_cancel_while_encoding_is_the_bottleneck(slow_to_encode: Path, tmp_path: Path, how: str) -> None:
    # Both queues of the annotated video are full: the analysing thread waits to queue a frame to draw, and
    # the drawing thread waits to queue a frame to encode, while the encoder works.
    run = Analysis(slow_to_encode, tmp_path / "annotated.mp4", FULL_SIZE)
    run.cancel_when(lambda: run.inside("_Renderer.put") and run.inside("VideoWriter.write", "posescope-render"), how)
    run.assert_stopped_promptly_and_cleanly(how)
    assert run.frames_done < SLOW_FRAMES


@pytest.mark.parametrize("how", ["stop", "on_progress"])
def test_cancel_while_the_annotated_video_is_being_finished(slow_to_encode: Path, tmp_path: Path, how: str) -> None:
    # Every pose is done; the analysis waits for the drawing and encoding threads to work through their
    # queues and for the encoder to flush the frames it holds back.
    run = Analysis(slow_to_encode, tmp_path / "annotated.mp4", FULL_SIZE)
    run.cancel_when(lambda: run.inside("_Renderer.close") and (run.inside("VideoWriter.write", "posescope-render")
                                                               or run.inside("VideoWriter.close", "posescope-render")),
                    how)
    run.assert_stopped_promptly_and_cleanly(how)
    assert run.frames_done == SLOW_FRAMES


@pytest.mark.parametrize("how", ["stop", "on_progress"])
def test_cancel_while_the_video_is_analysed_in_spans(media: Path, how: str) -> None:
    # demo.mp4 is long enough for two spans: the later one is on a thread of its own, with its own decoder.
    run = Analysis(media / "demo.mp4", None)
    run.cancel_when(lambda: run.frames_done >= 20 and run.inside("PoseEngine.detect_frame", "posescope-span"), how)
    run.assert_stopped_promptly_and_cleanly(how)
    assert 20 <= run.frames_done < 230


def test_a_stop_set_before_the_start_cancels_at_once(media: Path, tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    before = _pipeline_threads()
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        analyse_video(media / "clip.mp4", PoseSettings(), ClipOptions(), tmp_path / "annotated.mp4", stop=stop)
    assert time.perf_counter() - started < 0.5
    assert not (tmp_path / "annotated.mp4").exists() and _pipeline_threads() <= before
