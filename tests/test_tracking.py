"""One person tracker for a video's series and the live chart: its rules on hip positions, then two real people
through the real model (the test clip's man twice, side by side), offline and live."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.landmarks import INDEX
from analysis.live import LiveProcessor, LiveSettings
from analysis.series import SeriesBuilder
from analysis.tracking import FORGET_S, PersonTracker

HIPS = [INDEX["left_hip"], INDEX["right_hip"]]
COVERED = range(20, 26)  # frames in which one of the two men is covered
TWO = PoseSettings(complexity="lite", max_people=2)
TIME_BASE = Fraction(1, 90_000)


def hips_at(*x: float) -> FramePose:
    """People whose every landmark (so their hip centre) is at these x, halfway down the picture."""
    landmarks = np.zeros((len(x), 33, 5), np.float32)
    landmarks[:, :, 0] = np.array(x)[:, None]
    landmarks[:, :, 1] = 0.5
    return FramePose(landmarks, np.zeros((len(x), 33, 3), np.float32), 100, 100)


def test_people_keep_their_slots_when_mediapipe_lists_them_the_other_way_round() -> None:
    tracker = PersonTracker(2)
    assert list(tracker.assign(hips_at(0.2, 0.8), 0.0)) == [0, 1]
    assert list(tracker.assign(hips_at(0.81, 0.21), 0.033)) == [1, 0]
    assert list(tracker.assign(hips_at(0.82), 0.067)) == [1]


def test_someone_who_appears_far_from_everyone_takes_a_free_slot_not_a_neighbours() -> None:
    tracker = PersonTracker(3)
    tracker.assign(hips_at(0.2, 0.8), 0.0)
    assert list(tracker.assign(hips_at(0.5), 0.033)) == [2]  # slots 0 and 1 are someone else's
    assert list(tracker.assign(hips_at(0.81, 0.5, 0.19), 0.067)) == [1, 2, 0]


def test_a_slot_unseen_for_forget_s_is_free_again_and_the_lowest_free_slot_goes_first() -> None:
    recent, forgotten = PersonTracker(2), PersonTracker(2)
    for tracker in (recent, forgotten):
        assert list(tracker.assign(hips_at(0.2), 0.0)) == [0]
    assert list(recent.assign(hips_at(0.8), FORGET_S / 2)) == [1]  # slot 0 is still the first person's
    assert list(forgotten.assign(hips_at(0.8), FORGET_S * 2)) == [0]


def test_a_tracker_takes_no_more_people_than_it_has_slots() -> None:
    assert list(PersonTracker(1).assign(hips_at(0.2, 0.8), 0.0)) == [0]


@pytest.fixture(scope="module")
def two_men(media: Path) -> list[np.ndarray]:
    """680x480 RGB frames: the clip's man twice side by side, the right one mirrored."""
    with av.open(str(media / "clip.y4m")) as container:
        frames = [frame.to_ndarray(format="rgb24")[:, 150:490] for frame in container.decode(video=0)]
    return [np.ascontiguousarray(np.hstack([frame, frame[:, ::-1]])) for frame in frames]


def cover(rgb: np.ndarray, left: bool) -> np.ndarray:
    """A copy with the left or the right man blacked out."""
    covered = rgb.copy()
    covered[:, slice(0, 340) if left else slice(340, None)] = 0
    return covered


def test_two_real_people_keep_their_slots_through_a_clip_and_a_gap(two_men: list[np.ndarray]) -> None:
    builder = SeriesBuilder(2, 680, 480)
    with PoseEngine(TWO, Mode.VIDEO) as engine:  # MediaPipe lists the two in one order before the cover, the
        for i, rgb in enumerate(two_men):       # other after it
            rgb = cover(rgb, left=True) if i in COVERED else rgb
            builder.add(i, i / 30, engine.detect_frame(rgb, i * 33 + 1))
    series = builder.build()
    hips_x = series.landmarks[:, :, HIPS, 0].mean(axis=-1)  # (frames, 2 slots)
    left = int(np.argmin(np.nanmedian(hips_x, axis=0)))
    right = 1 - left
    covered = np.isin(np.arange(series.frames), COVERED)
    assert series.present[:, right].all() and not series.present[covered, left].any()
    assert series.present[~covered, left].all()
    assert (hips_x[~covered, left] < 0.5).all() and (hips_x[:, right] > 0.5).all(), "a slot changed hands"


def test_the_live_chart_follows_the_person_in_the_lowest_slot_as_the_series_would(two_men: list[np.ndarray]) -> None:
    """The man in slot 0 is followed; while he is covered, the other one; when he is back, him again."""
    live = LiveProcessor(LiveSettings(pose=TWO))
    assert live.wait_until_ready()
    people = []
    try:
        for i, rgb in enumerate(two_men[:COVERED.start]):
            live.process_newest([_camera_frame(rgb, i)])
            people.append(live.latest().pose.people)
        followed_left = live.window().landmarks[-1, HIPS, 0].mean() < 0.5
        for i, rgb in enumerate(two_men[COVERED.start:], start=COVERED.start):
            live.process_newest([_camera_frame(cover(rgb, followed_left) if i in COVERED else rgb, i)])
            people.append(live.latest().pose.people)
        on_left = live.window().landmarks[:, HIPS, 0].mean(axis=-1) < 0.5
    finally:
        live.close()
    both = np.array(people) == 2  # MediaPipe may need a frame to find the man again after the cover
    covered = np.isin(np.arange(len(two_men)), COVERED)
    assert len(on_left) == len(two_men) and both.sum() >= 45 and not both[covered].any()
    assert (on_left[both] == followed_left).all(), "with both in view, the chart left the man in slot 0"
    assert (on_left[covered] != followed_left).all(), "with him covered, the chart did not follow the other"


def _camera_frame(rgb: np.ndarray, index: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.pts, frame.time_base = round(index / 30 / TIME_BASE), TIME_BASE
    return frame
