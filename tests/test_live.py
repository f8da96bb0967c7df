"""The live pipeline behind the Webcam page, on real camera-like frames with the real model.

Frames are clip.y4m's (640x480, a man doing jumping jacks), decoded to yuv420p av.VideoFrames with WebRTC's
90 kHz timestamps: what streamlit-webrtc hands the page's callback. Falls, which no real clip here shows, are
fed to the live watch as synthetic figures (tests/synthetic.py).
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import threading
import time
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from streamlit_webrtc.models import CallbackAttachableProcessor
from streamlit_webrtc.process import AsyncVideoProcessTrack

from synthetic import Figure, cycles, times

from analysis import exports
from analysis.angles import ANGLE_NAMES, ANGLES, DEFAULT_VISIBILITY_THRESHOLD, compute_angles
from analysis.drawing import (
    ALARM_COLOUR,
    HUD_COLOUR,
    JOINT_COLOUR,
    LABEL_COLOUR,
    PRIVACY_BACKGROUND,
    BannerAnnotator,
    draw_skeleton_only,
)
from analysis.engine import FramePose, PoseSettings
from analysis.exports import ANGLE_COLUMNS, EVENT_COLUMNS, REP_COLUMNS, SUMMARY_FORMAT
from analysis.landmarks import INDEX
from analysis.live import (
    AngleSmoother,
    LiveBuffer,
    LiveProcessor,
    LiveSettings,
    PersonWatch,
    live_figure,
    mirrored,
    rep_table,
)
from analysis.recording import Recorder
from analysis.result import CAMERA, ClipResult
from analysis.series import PoseSeries
from analysis.tables import LANDMARK_COLUMNS
from analysis.templates import OFF_COLOUR, PoseTemplate

TIME_BASE = Fraction(1, 90_000)
SEGMENT = np.array([a.kind == "segment" for a in ANGLES])
HIPS = [INDEX["left_hip"], INDEX["right_hip"]]
STEADY = [INDEX[name] for name in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]


def camera_frame(source: av.VideoFrame | np.ndarray, index: int, fps: float = 30.0) -> av.VideoFrame:
    """A copy of `source` (a frame, or an RGB array) as yuv420p, stamped as frame `index` of a camera at `fps`."""
    if isinstance(source, np.ndarray):
        frame = av.VideoFrame.from_ndarray(source, format="rgb24").reformat(format="yuv420p")
    else:
        frame = av.VideoFrame.from_ndarray(source.to_ndarray(), format="yuv420p")
    frame.pts, frame.time_base = round(index / fps / TIME_BASE), TIME_BASE
    return frame


@pytest.fixture(scope="module")
def clip(media: Path) -> list[av.VideoFrame]:
    with av.open(str(media / "clip.y4m")) as container:
        frames = [frame.reformat(format="yuv420p") for frame in container.decode(video=0)]
    assert len(frames) == 60 and (frames[0].width, frames[0].height) == (640, 480)
    return [camera_frame(frame, i) for i, frame in enumerate(frames)]


@pytest.fixture
def processor() -> LiveProcessor:
    live = LiveProcessor()  # the page's defaults: lite model, mirrored, four angles
    assert live.wait_until_ready(), live.stats().error
    yield live
    live.close()


def colour_pixels(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int = 30) -> int:
    return int((np.abs(rgb.astype(np.int16) - colour) <= tolerance).all(axis=-1).sum())


def test_the_callback_path_finds_the_man_and_draws_skeleton_angles_and_hud(processor: LiveProcessor,
                                                                          clip: list[av.VideoFrame]) -> None:
    for frame in clip[:10]:
        out = processor.process_newest([frame])
    assert isinstance(out, av.VideoFrame) and (out.width, out.height) == (640, 480)
    shown, camera = out.to_ndarray(format="rgb24"), clip[9].to_ndarray(format="rgb24")

    latest = processor.latest()
    assert latest is not None and latest.pose.people == 1
    pose = latest.pose
    assert (pose.visibility[0, [INDEX["left_shoulder"], INDEX["right_hip"], INDEX["left_knee"]]] > 0.5).all()
    # The data stays in camera coordinates (mirroring is for the picture only): the nose is in the picture's
    # middle third, and the legs are straight enough in this clip.
    assert 0.3 < pose.landmarks[0, INDEX["nose"], 0] < 0.7
    knee = ANGLE_NAMES.index("left knee")
    assert 120 < latest.angles[0, knee] <= 180

    # The overlay: red joints and yellow angle labels the clip itself does not have, on a mirrored picture.
    assert colour_pixels(camera, JOINT_COLOUR) == 0
    assert colour_pixels(shown, JOINT_COLOUR) > 150
    assert colour_pixels(shown, LABEL_COLOUR) > 20
    corner = (slice(380, 480), slice(0, 120))  # bottom left: far from the man and the HUD
    np.testing.assert_array_equal(shown[corner], camera[:, ::-1][corner])
    # The HUD: a darkened box in the top-left corner with light text in it.
    hud = shown[8:40, 8:150]
    assert (hud < 60).all(axis=-1).mean() > 0.5 and (hud > 200).all(axis=-1).sum() > 50

    stats = processor.stats()
    assert (stats.received, stats.processed, stats.dropped, stats.people) == (10, 10, 0, 1)
    assert (stats.width, stats.height, stats.model) == (640, 480, "lite")
    assert 0 < stats.processing_ms_p50 <= stats.processing_ms_p95 < 1000
    assert stats.error is None


def test_stale_frames_are_dropped_and_counted_and_the_newest_is_analysed(processor: LiveProcessor,
                                                                         clip: list[av.VideoFrame]) -> None:
    processor.process_newest([clip[0]])
    processor.process_newest(clip[1:4])  # three arrived while the first was processed: only the newest counts
    stats = processor.stats()
    assert (stats.received, stats.processed, stats.dropped) == (4, 2, 2)
    times = processor.window().times_s
    assert len(times) == 2
    assert times[1] - times[0] == pytest.approx(3 / 30, abs=1e-3)  # frame 3's time, not frame 1's


class PacedCamera(MediaStreamTrack):
    """A 30 frames/s camera in real time, playing the clip."""

    kind = "video"

    def __init__(self, frames: list[av.VideoFrame]) -> None:
        super().__init__()
        self.frames, self.sent, self.start = frames, 0, 0.0

    async def recv(self) -> av.VideoFrame:
        if self.sent == 0:
            self.start = time.monotonic()
        await asyncio.sleep(max(0.0, self.start + self.sent / 30 - time.monotonic()))
        frame = camera_frame(self.frames[self.sent % len(self.frames)], self.sent)
        self.sent += 1
        return frame


def test_through_streamlit_webrtc_a_slow_callback_drops_frames_instead_of_queueing_them(
        processor: LiveProcessor, clip: list[av.VideoFrame]) -> None:
    """streamlit-webrtc's own track, fed at 30 frames/s, with a callback slowed to about 8 frames/s: the lag
    stays flat (no queue builds up) and the frames in between are dropped."""
    lags: list[float] = []

    async def slow_callback(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        out = processor.process_newest(frames)
        lags.append(processor.stats().lag_ms)
        time.sleep(0.1)  # noqa: ASYNC251 - a slow machine: the real callback blocks its thread the same way
        return [out]

    async def stream() -> PacedCamera:
        camera = PacedCamera(clip)
        track = AsyncVideoProcessTrack(camera, CallbackAttachableProcessor(None, slow_callback, None))
        while camera.sent < 90:  # 3 s of camera
            await track.recv()
        track.stop()
        return camera

    camera = asyncio.run(stream())
    stats = processor.stats()
    assert stats.received >= 85
    assert 8 <= stats.processed <= 40, stats  # 0.1 s a frame at most: about 25 in 3 s on a quiet machine
    assert stats.dropped == stats.received - stats.processed >= 45
    assert max(lags[len(lags) // 2:]) < 200, f"the lag grew: {lags}"
    newest_shown = processor.window().times_s[-1] - processor.window().times_s[0]
    assert newest_shown > (camera.sent - 1) / 30 - 0.3, "the last frame analysed is stale"


def test_settings_change_on_the_next_frame_and_a_new_model_takes_over_without_a_gap(
        processor: LiveProcessor, clip: list[av.VideoFrame]) -> None:
    for frame in clip[:5]:
        processor.process_newest([frame])
    processor.update(LiveSettings(pose=PoseSettings(complexity="full"), angles=("left knee",), mirror=False,
                                  privacy=True))
    people, models = [], []
    for i, frame in enumerate(clip[5:] * 5, start=5):
        shown = processor.process_newest([camera_frame(frame, i)]).to_ndarray(format="rgb24")
        people.append(processor.latest().pose.people)
        models.append(processor.stats().model)
        if i == 5:  # privacy mode from the very next frame: the person is gone, the skeleton stays
            assert colour_pixels(shown, PRIVACY_BACKGROUND, 2) > 0.8 * 640 * 480
            assert colour_pixels(shown, JOINT_COLOUR) > 100
        if models[-1] == "full" and len(models) > 10:
            break
        time.sleep(0.02)
    assert models[0] == "lite" and models[-1] == "full", models
    assert all(p == 1 for p in people), "a frame went without a pose while the new model loaded"


def test_the_smoother_steadies_a_still_angle_follows_a_moving_one_and_crosses_plus_minus_180() -> None:
    rng = np.random.default_rng(0)
    times = np.arange(300) / 30
    segment_column = int(np.flatnonzero(SEGMENT)[0])

    def smooth(joint: np.ndarray, segment: np.ndarray) -> np.ndarray:
        smoother = AngleSmoother(min_cutoff=1.5, beta=0.02)  # LiveSettings' defaults
        out = []
        for t, a, b in zip(times, joint, segment):
            row = np.full(len(ANGLES), np.nan)
            row[0], row[segment_column] = a, b
            out.append(smoother(row, float(t)))
        return np.array(out)

    def rms(error: np.ndarray) -> float:
        return float(np.sqrt(np.mean(error[30:] ** 2)))  # after the first second

    still = 150 + rng.normal(0, 4, len(times))  # someone holding a pose, with the model's jitter
    out = smooth(still, np.full(len(times), 10.0))
    assert np.isnan(out[:, 1]).all()  # an angle never measured stays unmeasured
    assert rms(out[:, 0] - 150) < 0.6 * 4  # the labels and the chart flicker less than half as much

    moving = 120 + 40 * np.sin(2 * np.pi * 0.5 * times)  # an elbow bending every 2 s
    noisy = moving + rng.normal(0, 4, len(times))
    crossing = 178 + 4 * np.sin(2 * np.pi * times)  # a segment angle going over ±180° and back
    out = smooth(noisy, (crossing + rng.normal(0, 1, len(times)) + 180) % 360 - 180)
    assert np.std(np.diff(out[:, 0], 2)) < 0.5 * np.std(np.diff(noisy, 2))  # less frame-to-frame jitter
    assert rms(out[:, 0] - moving) < 6  # and it keeps up with the movement
    segment = out[:, segment_column]
    assert ((segment > -180) & (segment <= 180)).all()
    assert np.abs((segment - crossing + 180) % 360 - 180)[30:].max() < 6, "crossing ±180° made the filter jump"


def test_the_ring_buffer_keeps_rows_whole_under_concurrent_writers_and_readers() -> None:
    buffer = LiveBuffer(capacity=64)
    writers, pushes = 4, 3000
    problems: list[str] = []
    stop = threading.Event()

    def write(k: int) -> None:
        for i in range(pushes):
            v = float(k * 100_000 + i)
            buffer.push(v, np.full(len(ANGLES), v), np.full(len(ANGLES), v), np.full((33, 5), v), np.full((33, 3), v))

    reads = [0]

    def read() -> None:
        try:
            while not stop.is_set():
                window = buffer.window()
                rows = len(window.times_s)
                if rows > 64:
                    problems.append(f"{rows} rows in a ring of 64")
                for field in (window.angles, window.smoothed, window.landmarks, window.world):
                    if len(field) != rows or (rows and not (field.reshape(rows, -1) == window.times_s[:, None]).all()):
                        problems.append("a row mixes two pushes")
                reads[0] += 1
        except Exception as error:  # noqa: BLE001 - a reader that dies must fail the test, not go quiet
            problems.append(repr(error))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers + threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert not problems, problems[:5]
    assert reads[0] > 30, "the readers hardly ran"
    assert buffer.pushed == writers * pushes
    assert len(buffer.window().times_s) == 64


def test_one_writer_and_readers_see_the_newest_frames_in_order() -> None:
    buffer = LiveBuffer(capacity=100)
    seen_last: list[float] = []
    done = threading.Event()

    problems: list[str] = []

    def read() -> None:
        while not done.is_set():
            times = buffer.window(seconds=1.0).times_s
            if len(times):
                if not ((np.diff(times) > 0).all() and times[-1] - times[0] <= 1.0):
                    problems.append(f"out of order or too long: {times[0]} … {times[-1]}")
                seen_last.append(times[-1])

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(5000):
        t = i / 30
        buffer.push(t, np.zeros(len(ANGLES)), np.zeros(len(ANGLES)), np.zeros((33, 5)), np.zeros((33, 3)))
    done.set()
    reader.join()
    assert not problems, problems[:5]
    assert seen_last == sorted(seen_last) and len(seen_last) > 0
    window = buffer.window(seconds=2.0)
    assert len(window.times_s) == 61 and window.times_s[-1] == pytest.approx(4999 / 30)
    assert len(buffer.window().times_s) == 100


def test_the_live_chart_shows_the_last_seconds_of_the_chosen_angles(processor: LiveProcessor,
                                                                    clip: list[av.VideoFrame]) -> None:
    for frame in clip:
        processor.process_newest([frame])
    figure = live_figure(processor.window(15), ["left elbow", "right knee"], 15, max_points=20)
    assert [trace.name for trace in figure.data] == ["left elbow", "right knee"]
    x = np.asarray(figure.data[0].x)
    assert len(x) <= 20 and x[-1] == 0 and x[0] == pytest.approx(-59 / 30, abs=0.1)
    assert list(figure.layout.xaxis.range) == [-15, 0]
    assert np.isfinite(np.asarray(figure.data[1].y, float)).sum() >= 15


def test_a_recording_is_a_clip_result_that_downloads_in_the_video_pages_formats(processor: LiveProcessor,
                                                                               clip: list[av.VideoFrame]) -> None:
    processor.start_recording(with_video=True)
    call_s = 0.0  # the wall time spent in the callback: the recording's processing time cannot exceed it
    for i, frame in enumerate(clip[:45]):
        frames = [clip[i - 1], frame] if i % 10 == 9 else [frame]  # now and then a frame is dropped
        started = time.perf_counter()
        processor.process_newest(frames)
        call_s += time.perf_counter() - started
    recording = processor.stop_recording()
    assert processor.recorder is None and recording is not None

    result = recording.result
    series = result.series
    assert result.source.is_camera and result.source.name == CAMERA and result.warnings == ()
    assert result.settings == processor.settings.pose and not result.options.privacy
    assert series.frames == 45 and (series.width, series.height) == (640, 480)
    assert series.times_s[0] == 0 and series.times_s[-1] == pytest.approx(44 / 30, abs=1e-3)
    assert (np.diff(series.frame_index) >= 1).all() and series.frame_index[-1] == 44 + 4  # dropped frames: gaps
    assert series.present[:, 0].all()
    assert result.capture_fps == pytest.approx(30, abs=0.5)
    # The analysis time is the frames' summed processing, not the 1.5 s they span.
    assert 0.5 * call_s < result.elapsed_s <= call_s
    assert result.frames_per_s == pytest.approx(45 / result.elapsed_s)

    files = {file.name: file.make() for file in exports.clip_files(result, recording.kinematics)}
    assert list(files) == ["landmarks.csv", "angles.csv", "summary.json", "person1.trc", "series.npz"]
    landmarks = list(csv.reader(io.StringIO(files["landmarks.csv"])))
    assert landmarks[0] == LANDMARK_COLUMNS and len(landmarks) == 1 + 45 * 33
    assert landmarks[1][3] == "nose"
    angles = list(csv.reader(io.StringIO(files["angles.csv"])))
    assert angles[0] == ANGLE_COLUMNS and len(angles) == 1 + 45
    knee = float(angles[20][ANGLE_COLUMNS.index("left knee")])
    assert 90 < knee <= 180
    summary = json.loads(files["summary.json"])
    assert summary["format"] == SUMMARY_FORMAT and summary["source"] == {"name": CAMERA, "kind": "camera"}
    assert summary["counts"]["frames"] == 45 and summary["people"][0]["frames_found"] == 45
    assert summary["timing"]["elapsed_s"] == pytest.approx(result.elapsed_s, abs=1e-6)

    reopened = ClipResult.from_npz(files["series.npz"])  # what the Video page opens
    np.testing.assert_array_equal(reopened.series.landmarks, series.landmarks)
    np.testing.assert_array_equal(reopened.series.times_s, series.times_s)
    assert reopened.source.is_camera and reopened.elapsed_s == pytest.approx(result.elapsed_s)

    assert recording.video is not None
    with av.open(io.BytesIO(recording.video)) as container:
        video = list(container.decode(video=0))
    assert len(video) == 45 and (video[0].width, video[0].height) == (640, 480)


def test_a_camera_that_changes_resolution_keeps_recording_scaled_to_the_first_size(processor: LiveProcessor,
                                                                                  clip: list[av.VideoFrame]) -> None:
    """The clip's first 15 frames three times: at 640x480, at 320x240 (as browsers step a busy camera down), and
    as a 480x480 crop of columns 120-600. The recording stays 640x480, letterboxed, with its poses on the video."""
    full = [frame.to_ndarray(format="rgb24") for frame in clip[:15]]
    smaller = [cv2.resize(rgb, (320, 240), interpolation=cv2.INTER_AREA) for rgb in full]
    cropped = [np.ascontiguousarray(rgb[:, 120:600]) for rgb in full]
    processor.start_recording(with_video=True)
    for i, rgb in enumerate(full + smaller + cropped):
        processor.process_newest([camera_frame(rgb, i)])
    recording = processor.stop_recording()
    assert recording is not None
    series = recording.result.series
    assert series.frames == 45 and (series.width, series.height) == (640, 480)
    assert recording.result.warnings == (
        "The camera changed resolution from 640x480 to 320x240 at 0.5 s; later frames were scaled to fit.",
        "The camera changed resolution from 320x240 to 480x480 at 1.0 s; later frames were scaled to fit.")

    # The poses are in the recording's frame: at 320x240 where the same frame put them at 640x480; in the crop,
    # shifted as the crop was (120 px left) and as the letterbox centres it (80 px right).
    pixels = series.pixels[:, 0, STEADY]
    found = series.present[:15, 0] & series.present[15:30, 0] & series.present[30:, 0]
    assert found.sum() >= 12
    scaled_error = np.abs(pixels[15:30] - pixels[:15])[found]
    cropped_error = np.abs(pixels[30:] - (pixels[:15] + [-120 + 80, 0]))[found]
    assert np.median(scaled_error) < 4 and np.median(cropped_error) < 4, (scaled_error, cropped_error)

    # One 640x480 video throughout; the crop's frames have black bars left and right.
    assert recording.video is not None
    with av.open(io.BytesIO(recording.video)) as container:
        video = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(video) == 45 and {frame.shape for frame in video} == {(480, 640, 3)}
    for k in (0, 7, 14):
        assert video[30 + k][:, :76].max() < 30 and video[30 + k][:, 564:].max() < 30
        np.testing.assert_allclose(video[15 + k].mean(), video[k].mean(), atol=3)  # scaled back up, not barred
        middle = np.abs(video[30 + k][:, 84:556].astype(int) - video[k][:, 124:596]).mean()
        assert middle < 8, f"the crop is not where the letterbox puts it ({middle:.1f})"


def test_a_recording_stops_growing_at_its_limit(processor: LiveProcessor, clip: list[av.VideoFrame]) -> None:
    for frame in clip[:3]:
        processor.process_newest([frame])
    pose = processor.latest().pose
    recorder = Recorder(PoseSettings(complexity="lite"), max_s=1.0)
    for i in range(60):
        recorder.add(i / 30, pose, frame_number=i, processing_s=0.01)
    recording = recorder.finish()
    recorder.add(3.0, pose, frame_number=90, processing_s=0.01)  # after finish: ignored
    result = recording.result
    assert result.series.frames == 31 and result.series.times_s[-1] == 1.0
    assert result.elapsed_s == pytest.approx(31 * 0.01)  # only the frames recorded count
    assert result.warnings == ("The recording reached its limit of 1 s and stopped there.",)
    summary = json.loads(exports.summary_json(result, recording.kinematics))
    assert summary["warnings"] == list(result.warnings)


def test_a_recording_without_frames_is_none_not_an_empty_clip(processor: LiveProcessor) -> None:
    assert Recorder(PoseSettings()).finish() is None
    assert processor.stop_recording() is None  # none running
    processor.start_recording()
    assert processor.stop_recording() is None  # running, but no frame came


def test_a_stream_that_ends_closes_its_model_and_the_next_stream_loads_it_again(clip: list[av.VideoFrame]) -> None:
    """Through streamlit-webrtc's track: stopping it calls on_ended, the page's on_video_ended."""
    live = LiveProcessor()
    assert live.wait_until_ready()
    engines = []

    async def callback(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        out = live.process_newest(frames)
        if live.engine is not None and live.engine not in engines:
            engines.append(live.engine)
        return [out]

    async def stream(frames: int) -> None:
        camera = PacedCamera(clip)
        track = AsyncVideoProcessTrack(camera, CallbackAttachableProcessor(None, callback, live.stream_ended))
        while camera.sent < frames:
            await track.recv()
        track.stop()

    try:
        asyncio.run(stream(15))
        assert len(engines) == 1 and engines[0].closed
        assert live.engine is None and live.stats().model is None
        live.update(LiveSettings(angles=("left knee",)))  # between streams a settings change loads nothing
        assert live.stats().loading is None

        asyncio.run(stream(45))  # the next stream's first frame loads the model again
        assert len(engines) == 2 and engines[1].closed and live.latest().pose.people == 1
    finally:
        live.close()


def test_a_processor_nobody_holds_any_more_closes_its_model(clip: list[av.VideoFrame]) -> None:
    """A browser session that closes drops its processor: its model must not stay loaded."""
    live = LiveProcessor()
    assert live.wait_until_ready()
    live.process_newest([clip[0]])
    engine = live.engine
    assert engine is not None and not engine.closed
    del live
    gc.collect()
    assert engine.closed


# --- the exercise, the template and monitoring, live ------------------------------------------------------------


def looped(clip: list[av.VideoFrame], loops: int) -> list[av.VideoFrame]:
    """The clip played `loops` times, as Chromium's fake camera loops it: each pass holds two jumping jacks (the
    arms go up and down twice; at the loop's seam they drop from about 120° to 30° in one frame, a return to rest)."""
    return [camera_frame(frame, i) for i, frame in enumerate(clip * loops)]


def test_an_exercise_is_counted_live_on_real_frames_and_shown_on_the_hud(processor: LiveProcessor,
                                                                        clip: list[av.VideoFrame]) -> None:
    processor.update(LiveSettings(exercise="jumping_jack"))
    assert processor.insight().state.count == 0  # shown at once, before any frame
    stages, counts = [], []
    for frame in looped(clip, 3):
        processor.process_newest([frame])
        insight = processor.insight()
        stages.append(insight.state.stage)
        counts.append(insight.state.count)
    state = insight.state
    # 3 passes of 2 jacks; the sixth is counted as soon as the arms are up (concentric to_work), the five before
    # it are measured: up over 120° and back under 60°, at about a jack a second.
    assert state.count == 6 and len(state.reps) == 5 and state.partials == 0, counts[::10]
    assert counts == sorted(counts), "the count went down"
    for rep in state.reps:
        assert rep.extreme_deg > 140 and rep.min_deg < 60 and 0.5 < rep.duration_s < 1.5, rep
        assert rep.depth_ok  # arms all the way up: over the 150° target
    assert {"up", "down"} <= set(stages)
    assert insight.warnings == ()  # filmed from the front, as a jumping jack should be
    assert insight.hud_lines() == [f"Jumping jack  6 reps  {state.stage}"]
    table = rep_table(state.reps)
    assert list(table.columns) == ["rep", "duration (s)", "depth", "ROM (°)", "tempo (s)", "cues"]
    assert table["rep"].tolist() == [5, 4, 3, 2, 1] and table["depth"].str.endswith("✓").all()

    # Another exercise starts from 0; one that needs a side view says the camera sees the man from the front.
    processor.update(LiveSettings(exercise="squat"))
    assert processor.insight().exercise.name == "squat" and processor.insight().state.count == 0
    for frame in looped(clip, 4)[180:240]:
        processor.process_newest([frame])
    insight = processor.insight()
    assert insight.state.count == 0
    assert insight.warnings == ("Squat is counted from the side, but the camera sees you from the front: turn "
                                "side-on to the camera, or the count and depth may be wrong.",)
    processor.update(LiveSettings())
    assert processor.insight().exercise is None and processor.insight().hud_lines() == []


def test_a_template_scores_the_live_pose_and_rings_the_joints_furthest_off(processor: LiveProcessor,
                                                                          clip: list[av.VideoFrame]) -> None:
    frames = looped(clip, 2)
    for frame in frames[:19]:
        processor.process_newest([frame])
    pose = processor.latest().pose  # frame 18: arms up, legs apart
    arms_up = PoseTemplate.from_pose(pose.pixels[0], pose.visibility[0], "star")
    processor.update(LiveSettings(angles=(), template=arms_up))
    matches = {}
    for i, frame in enumerate(frames[19:], start=19):
        shown = processor.process_newest([frame]).to_ndarray(format="rgb24")
        insight = processor.insight()
        matches[i % 60] = insight.match
        if i % 60 == 35:  # arms down: the arms are what is off, ringed on the picture
            assert insight.match < 40, insight.match
            assert set(insight.off[:2]) == {"left_wrist", "right_wrist"}, insight.off
            assert colour_pixels(shown, OFF_COLOUR) > 50
            assert insight.hud_lines() == [f"hold it: {insight.match:.0f} %"]
    assert matches[18] > 90, matches  # the same moment one pass later
    assert max(matches[i] for i in range(48, 56)) > 80, matches  # the top of the next jack
    assert min(matches.values()) < 20


def skeleton_only(pose: FramePose) -> np.ndarray:
    return draw_skeleton_only(mirrored(pose))


def test_monitoring_mode_shows_and_records_nothing_but_the_skeleton(processor: LiveProcessor,
                                                                   clip: list[av.VideoFrame]) -> None:
    """Camera frames with a bright green patch in every corner (where no skeleton goes, one under the HUD):
    what comes out is the skeleton on the blank background, the HUD's box and nothing else; the recording,
    even asked for with video, holds none."""
    settings = LiveSettings(angles=(), monitoring=True)
    assert settings.privacy
    processor.update(settings)
    processor.start_recording(with_video=True)
    for i, frame in enumerate(clip[:20]):
        rgb = frame.to_ndarray(format="rgb24")
        for band in (slice(0, 60), slice(420, 480)):
            for side in (slice(0, 80), slice(560, 640)):
                rgb[band, side] = (0, 255, 0)
        shown = processor.process_newest([camera_frame(rgb, i)]).to_ndarray(format="rgb24").astype(int)
        greenish = shown[..., 1] - np.maximum(shown[..., 0], shown[..., 2]) > 40  # even darkened under the HUD
        assert not greenish.any(), "a camera pixel came through"
        rows, columns = np.nonzero((shown != skeleton_only(processor.latest().pose)).any(axis=-1))
        assert rows.max() < 100 and columns.max() < 300, "something but the HUD was drawn over the skeleton"
    recording = processor.stop_recording()
    assert recording.video is None and recording.result.options.privacy and recording.result.warnings == ()


def test_privacy_coming_on_while_recording_deletes_the_camera_video(processor: LiveProcessor,
                                                                    clip: list[av.VideoFrame]) -> None:
    processor.start_recording(with_video=True)
    for i, frame in enumerate(clip[:10]):
        processor.process_newest([camera_frame(frame, i)])
    processor.update(LiveSettings(monitoring=True))
    for i, frame in enumerate(clip[10:20], start=10):
        processor.process_newest([camera_frame(frame, i)])
    recording = processor.stop_recording()
    assert recording.result.series.frames == 20  # the poses are all kept
    assert recording.video is None and recording.result.options.privacy
    assert recording.result.warnings == ("Privacy mode came on while recording, so the camera video was deleted: "
                                         "the recording holds the skeleton only.",)


def test_a_recording_downloads_the_reps_of_the_exercise_chosen_at_its_end(processor: LiveProcessor,
                                                                         clip: list[av.VideoFrame]) -> None:
    frames = looped(clip, 2)
    processor.start_recording()
    for frame in frames[:60]:
        processor.process_newest([frame])
    processor.update(LiveSettings(exercise="jumping_jack"))  # chosen while recording: it counts the whole recording
    for frame in frames[60:]:
        processor.process_newest([frame])
    recording = processor.stop_recording()
    assert recording.exercise == "jumping_jack"
    files = {name: content for _, content, name, _ in recording.files}
    assert list(files) == ["landmarks.csv", "angles.csv", "summary.json", "reps.csv", "events.csv", "person1.trc",
                           "series.npz"]
    reps = list(csv.DictReader(io.StringIO(files["reps.csv"].decode())))
    assert list(reps[0]) == REP_COLUMNS
    # The offline count over the recording: the jacks seen whole (the first starts with the recording, at rest).
    assert [int(rep["rep"]) for rep in reps] == [1, 2, 3]
    assert all(float(rep["extreme_deg"]) > 140 for rep in reps)
    events = list(csv.reader(io.StringIO(files["events.csv"].decode())))
    assert events[0] == EVENT_COLUMNS
    summary = json.loads(files["summary.json"])
    assert summary["exercise"]["name"] == "jumping_jack" and summary["exercise"]["count"] == 3


def frames_of(series: PoseSeries) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """A synthetic person's frames as the processor hands them to its PersonWatch: time, smoothed angles (here
    exact), pixels and visibility."""
    angles = compute_angles(series.pixels, series.visibility, DEFAULT_VISIBILITY_THRESHOLD)[:, 0]
    return [(float(t), angles[i], series.pixels[i, 0], series.visibility[i, 0]) for i, t in enumerate(series.times_s)]


def test_a_fall_raises_an_alert_that_stays_until_dismissed_and_sitting_down_does_not() -> None:
    t = times(8.0)
    falling = Figure(len(t), pitch=np.clip((t - 2.0) / 0.6, 0, 1) * 90).series("side")  # 2 s: falls flat in 0.6 s
    watch = PersonWatch()
    watch.configure(LiveSettings(monitoring=True))
    raised_at = None
    for time_s, angles, pixels, visibility in frames_of(falling):
        watch.update(time_s, angles, pixels, visibility)
        if raised_at is None and watch.fall_alerts():
            raised_at = time_s
    (alert,) = watch.fall_alerts()  # raised once, and still there long after
    assert alert.event.kind == "fall" and alert.event.start_s == pytest.approx(2.0, abs=0.1)
    assert raised_at - alert.event.end_s == pytest.approx(1.5, abs=0.2)  # once lying still for 1.5 s
    assert abs((datetime.now().astimezone() - alert.at).total_seconds()) < 60
    watch.configure(LiveSettings())  # even with monitoring off
    assert watch.fall_alerts() == (alert,)
    watch.dismiss_falls()
    assert watch.fall_alerts() == ()

    knee = 180 - np.clip((t - 2.0) / 0.8, 0, 1) * 90  # sits down on a chair in 0.8 s: the hips drop, the trunk
    sitting = Figure(len(t), knee=knee, hip_flexion=180 - knee).series("side")  # stays upright
    watch = PersonWatch()
    watch.configure(LiveSettings(monitoring=True))
    for time_s, angles, pixels, visibility in frames_of(sitting):
        watch.update(time_s, angles, pixels, visibility)
    assert watch.fall_alerts() == ()


def test_joints_out_of_view_are_said_live() -> None:
    """A squat filmed side-on, its ankles and knees out of the picture (NaN, visibility 0)."""
    t = times(4.0)
    series = Figure(len(t), knee=cycles(90, 175, t, 2.0)).series("side")
    watch = PersonWatch()
    watch.configure(LiveSettings(exercise="squat"))
    legs = [INDEX[f"{side}_{joint}"] for side in ("left", "right") for joint in ("knee", "ankle", "heel",
                                                                                  "foot_index")]
    for time_s, angles, pixels, visibility in frames_of(series):
        pixels, visibility = pixels.copy(), visibility.copy()
        pixels[legs], visibility[legs] = np.nan, 0.0
        insight = watch.update(time_s, angles, pixels, visibility)
    assert insight.warnings == ("The ankle, hip, knee that squat needs are mostly out of view: step back so that "
                                "your whole body is in the picture.",)


def test_a_hold_is_timed_live() -> None:
    """A plank seen side-on: lying face down, body straight, for 4 s after 1 s standing."""
    t = times(5.0)
    series = Figure(len(t), pitch=np.where(t < 1.0, 0.0, 90.0)).series("side")
    watch = PersonWatch()
    watch.configure(LiveSettings(exercise="plank"))
    for time_s, angles, pixels, visibility in frames_of(series):
        insight = watch.update(time_s, angles, pixels, visibility)
    state = insight.state
    assert state.holding and state.held_s == pytest.approx(4.0, abs=0.1) and state.good_s == pytest.approx(4.0, abs=0.1)
    assert insight.hud_lines() == ["Plank  held 4 s, 4 s good"] and insight.warnings == ()


def test_the_fall_banner_is_a_red_band_across_the_bottom() -> None:
    scene = np.zeros((480, 640, 3), np.uint8)
    BannerAnnotator().annotate(scene, "FALL")
    assert colour_pixels(scene[-20:], ALARM_COLOUR, 2) > 0.9 * 20 * 640 and colour_pixels(scene, HUD_COLOUR) > 200
    assert not scene[:380].any()
