"""One person tracker for a video's series and the live chart: its rules on hip positions, then two real people
through the real model (the test clip's man twice, side by side), offline and live."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.landmarks import INDEX
from analysis.live import LiveProcessor, LiveSettings
from analysis.series import SeriesBuilder
from analysis.tracking import FORGET_S, SWAPPABLE_LIMBS, PersonTracker, unswap_left_right
from analysis.video_io import read_frames

HIPS = [INDEX["left_hip"], INDEX["right_hip"]]
COVERED = range(20, 26)  # frames in which one of the two men is covered
TWO = PoseSettings(complexity="lite", max_people=2)
TIME_BASE = Fraction(1, 90_000)
WIDTH, HEIGHT, FPS = 1280, 720, 30


@pytest.fixture(scope="module")
def standing(media: Path) -> np.ndarray:
    """(33, 5) the real model's landmarks of the man in bus.jpg, in pixels (x, y), his hips' centre at (0, 0) and
    his height (top to bottom of his landmarks) 1, with the model's visibility and presence."""
    rgb = cv2.cvtColor(cv2.imread(str(media / "bus.jpg")), cv2.COLOR_BGR2RGB)
    with PoseEngine(PoseSettings(), Mode.IMAGE) as engine:
        pose = engine.detect(rgb)
    landmarks = pose.landmarks[0].copy()
    pixels = pose.pixels[0]
    centre = pixels[HIPS].mean(axis=0)
    landmarks[:, :2] = (pixels - centre) / np.ptp(pixels[:, 1])
    return landmarks


def frame_of(standing: np.ndarray, people: list[tuple[float, float, float]]) -> FramePose:
    """People (hip centre x, y in pixels, height in pixels) of the standing pose, in a WIDTH x HEIGHT frame."""
    return shuffled_frame_of(standing, people)[0]


def shuffled_frame_of(standing: np.ndarray, people: list[tuple[float, float, float]],
                      rng: np.random.Generator | None = None, jitter_px: float = 0.0) -> tuple[FramePose, np.ndarray]:
    """frame_of's people with jitter_px of noise, in a random order (MediaPipe's is not kept from frame to frame)
    with rng; and the order (the index in `people` of each person in the frame)."""
    landmarks = np.repeat(standing[None], len(people), axis=0)
    for person, (x, y, height) in zip(landmarks, people):
        person[:, :2] = person[:, :2] * height + [x, y]
    order = np.arange(len(people))
    if rng is not None:
        landmarks[:, :, :2] += rng.normal(0, jitter_px, landmarks[:, :, :2].shape)
        order = rng.permutation(len(people))
    landmarks = landmarks[order]
    landmarks[:, :, 0] /= WIDTH
    landmarks[:, :, 1] /= HEIGHT
    return FramePose(landmarks.astype(np.float32), np.zeros((len(people), 33, 3), np.float32), WIDTH, HEIGHT), order


def test_people_keep_their_slots_when_mediapipe_lists_them_the_other_way_round(standing: np.ndarray) -> None:
    tracker = PersonTracker(2)
    assert list(tracker.assign(frame_of(standing, [(300, 400, 300), (900, 400, 300)]), 0.0)) == [0, 1]
    assert list(tracker.assign(frame_of(standing, [(905, 400, 300), (305, 400, 300)]), 0.033)) == [1, 0]
    assert list(tracker.assign(frame_of(standing, [(910, 400, 300)]), 0.067)) == [1]


def test_someone_who_appears_far_from_everyone_takes_a_free_slot_not_a_neighbours(standing: np.ndarray) -> None:
    tracker = PersonTracker(3)
    tracker.assign(frame_of(standing, [(300, 400, 300), (900, 400, 300)]), 0.0)
    assert list(tracker.assign(frame_of(standing, [(600, 400, 300)]), 0.033)) == [2]  # 0 and 1 are someone else's
    assert list(tracker.assign(frame_of(standing, [(905, 400, 300), (600, 400, 300), (295, 400, 300)]),
                               0.067)) == [1, 2, 0]


def test_where_the_engine_knows_who_is_who_its_ids_decide(standing: np.ndarray) -> None:
    """Two people of one size, one passing behind the other: keypoints cannot tell which is which as they part, the
    engine's ids can (analysis.people follows each with a landmarker of their own, and by their look)."""
    tracker = PersonTracker(3)

    def assign(people: list[tuple[float, float, float]], ids: list[int] | None, time_s: float) -> list[int]:
        pose = frame_of(standing, people)
        return list(tracker.assign(pose if ids is None else dataclasses.replace(pose, ids=np.array(ids)), time_s))

    left, right = (480, 400, 300), (720, 400, 300)
    assert assign([(500, 400, 300), (700, 400, 300)], [7, 8], 0.0) == [0, 1]
    # They part each on the other's side: the ids keep them, in whatever order they are listed.
    assert assign([right, left], [7, 8], 0.033) == [0, 1]
    assert assign([left, right], [8, 7], 0.067) == [1, 0]
    for step in range(3, 9):  # standing still
        assert assign([right, left], [7, 8], step / 30) == [0, 1]
    # An id the tracker has not seen (the engine found someone again) is matched by keypoints, then followed;
    # without ids, keypoints decide.
    assert assign([right, left], [7, 9], 0.3) == [0, 1]
    assert assign([left, right], [9, 7], 0.333) == [1, 0]
    assert assign([left, right], None, 0.367) == [1, 0]


@pytest.mark.parametrize("keep_s", [0.5, FORGET_S, 3.0])
def test_a_slot_is_kept_for_the_keep_id_time_then_free_again_and_the_lowest_free_slot_goes_first(
        standing: np.ndarray, keep_s: float) -> None:
    recent, forgotten = PersonTracker(2, keep_s), PersonTracker(2, keep_s)
    for tracker in (recent, forgotten):
        assert list(tracker.assign(frame_of(standing, [(300, 400, 300)]), 0.0)) == [0]
    assert list(recent.assign(frame_of(standing, [(900, 400, 300)]), keep_s * 0.9)) == [1]  # 0 is still the first's
    assert list(forgotten.assign(frame_of(standing, [(900, 400, 300)]), keep_s * 1.1)) == [0]


def test_a_person_back_after_a_gap_shorter_than_the_keep_id_time_keeps_their_slot(standing: np.ndarray) -> None:
    # Two people; the right one walks on out of sight (behind a pillar) for 0.8 s and comes back further on, where
    # his pace puts him; meanwhile someone new comes in on the left, in the free slot.
    tracker = PersonTracker(3, 1.0)
    for i in range(10):
        assert list(tracker.assign(frame_of(standing, [(200, 400, 300), (600 + 10 * i, 400, 300)]), i / FPS)) == [0, 1]
    assert list(tracker.assign(frame_of(standing, [(200, 400, 300), (50, 400, 300)]), 20 / FPS)) == [0, 2]
    back = frame_of(standing, [(690 + 10 * 24, 400, 300), (200, 400, 300), (50, 400, 300)])
    assert list(tracker.assign(back, 34 / FPS)) == [1, 0, 2]


def test_someone_new_with_every_slot_held_takes_the_one_unseen_longest(standing: np.ndarray) -> None:
    tracker = PersonTracker(2)
    tracker.assign(frame_of(standing, [(200, 400, 300), (600, 400, 300)]), 0.0)
    tracker.assign(frame_of(standing, [(600, 400, 300)]), 0.5)  # the left one out of view since 0 s
    assert list(tracker.assign(frame_of(standing, [(1100, 400, 300)]), 0.6)) == [0]


def test_with_few_landmarks_seen_the_boxes_decide(standing: np.ndarray) -> None:
    tracker = PersonTracker(2)
    tracker.assign(frame_of(standing, [(300, 400, 300), (700, 400, 300)]), 0.0)
    hidden = frame_of(standing, [(705, 400, 300), (305, 400, 300)])
    hidden.landmarks[:, 3:, 3] = 0.0  # only the nose and two eye landmarks likely seen: too few to compare
    assert list(tracker.assign(hidden, 0.033)) == [1, 0]


def test_a_tracker_takes_no_more_people_than_it_has_slots(standing: np.ndarray) -> None:
    assert list(PersonTracker(1).assign(frame_of(standing, [(300, 400, 300), (900, 400, 300)]), 0.0)) == [0]


CROSSINGS = {  # (A's and B's speeds in pixels per frame, B's height and the height of his hips, whether B is
    # found while the two overlap, the noise in pixels)
    "B hidden while they overlap": (12, -9, 260, 380, False, 1.0),
    "both found while they overlap": (12, -9, 260, 380, True, 1.0),
    "same size, same line, hidden": (10, -10, 300, 400, False, 2.0),
    "nearly the same size and line, both found": (10, -10, 290, 395, True, 2.0),
    "slow and fast, B far off": (4, -16, 180, 330, False, 1.0),
    "B slower the same way": (14, 5, 280, 390, False, 1.0),
}


@pytest.mark.parametrize("scenario", CROSSINGS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_people_who_cross_are_never_swapped(standing: np.ndarray, scenario: str, seed: int) -> None:
    """Generated crossings: A from the left, B from the right (or ahead of A, slower, the same way), in 4 s at 30
    frames/s; MediaPipe's order random in each frame (the first frame's gives the slots), with noise; B, further
    off, is hidden (not found) while the two overlap, or found. Each keeps one slot from start to end."""
    speed_a, speed_b, height_b, hips_b, b_found_overlapping, jitter = CROSSINGS[scenario]
    rng = np.random.default_rng(seed)
    tracker = PersonTracker(2)
    start_b = WIDTH - 100 if speed_b < 0 else 450
    slot_of: dict[str, set[int]] = {"A": set(), "B": set()}
    for i in range(4 * FPS):
        a, b = (100 + speed_a * i, 400, 300), (start_b + speed_b * i, hips_b, height_b)
        overlapping = abs(a[0] - b[0]) < 120
        people = {"A": a} | ({"B": b} if b_found_overlapping or not overlapping else {})
        pose, order = shuffled_frame_of(standing, list(people.values()), rng, jitter)
        for name, slot in zip(np.array(list(people))[order], tracker.assign(pose, i / FPS)):
            slot_of[str(name)].add(int(slot))
    assert len(slot_of["A"]) == len(slot_of["B"]) == 1 and slot_of["A"] != slot_of["B"], \
        f"slots changed hands: {slot_of}"


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


@pytest.fixture(scope="module")
def jumping_jacks(media: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """jacks5.mp4 as MediaPipe gives it, limbs uncorrected: landmarks (frames, 1, 33, 5), world, times, width,
    height. The man faces the camera, so his left leg is on the picture's right, but in 31 of the 190 frames
    (around some landings) MediaPipe labels his legs the other way round."""
    landmarks, world, times = [], [], []
    with PoseEngine(PoseSettings(), Mode.VIDEO) as engine:
        for _, time_s, rgb in read_frames(media / "jacks5.mp4", max_side=960):
            pose = engine.detect_frame(rgb, round(time_s * 1000))
            assert pose.people == 1
            landmarks.append(pose.landmarks)
            world.append(pose.world)
            times.append(time_s)
    return np.stack(landmarks), np.stack(world), np.array(times), rgb.shape[1], rgb.shape[0]


def legs_on_the_wrong_side(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Frames in which the left ankle or knee is more than 5 pixels left of the right one in the picture."""
    wrong = [(landmarks[:, 0, INDEX[f"left_{joint}"], 0] - landmarks[:, 0, INDEX[f"right_{joint}"], 0]) * width < -5
             for joint in ("ankle", "knee")]
    return np.flatnonzero(wrong[0] | wrong[1])


def test_legs_that_mediapipe_gives_the_wrong_side_are_put_back(jumping_jacks) -> None:
    landmarks, world, times, width, height = jumping_jacks
    fixed, fixed_world, swapped = unswap_left_right(landmarks, world, times, width, height)
    before, after = legs_on_the_wrong_side(landmarks, width), legs_on_the_wrong_side(fixed, width)
    print(f"legs on the wrong side in {len(before)} frames before, {len(after)} after")
    assert len(before) >= 20 and len(before) - len(after) >= 15
    assert set(after) <= set(before), "a swap was made up"
    assert not swapped[..., list(SWAPPABLE_LIMBS).index("arms")].any(), "seen from the front, arms were swapped"
    legs = [INDEX[f"{side}_{part}"] for side in ("left", "right") for part in SWAPPABLE_LIMBS["legs"]]
    untouched = ~swapped.any(axis=-1)[:, 0]
    np.testing.assert_array_equal(fixed[untouched], landmarks[untouched])
    moved = np.flatnonzero(~untouched)
    np.testing.assert_array_equal(np.sort(fixed[moved][:, 0, legs, 0], axis=-1),
                                  np.sort(landmarks[moved][:, 0, legs, 0], axis=-1))  # the same points, relabelled
    assert np.array_equal(np.isnan(fixed_world), np.isnan(world))


@pytest.mark.parametrize("limb, end", [("legs", "ankle"), ("arms", "wrist")])
def test_a_swap_put_into_real_poses_is_found_and_undone(jumping_jacks, limb: str, end: str) -> None:
    """The corrected poses with a limb's labels swapped for 4 frames where its two sides are far apart and move
    little (a jump is then plain to see), and nothing else changed."""
    landmarks, world, times, width, height = jumping_jacks
    clean, clean_world, _ = unswap_left_right(landmarks, world, times, width, height)
    ends = clean[:, 0, [INDEX[f"left_{end}"], INDEX[f"right_{end}"]], :2] * [width, height]
    apart = np.linalg.norm(ends[:, 0] - ends[:, 1], axis=-1)
    moves = np.r_[0, np.linalg.norm(np.diff(ends, axis=0), axis=-1).max(axis=-1)]
    start = max(range(2, len(apart) - 6), key=lambda s: apart[s:s + 4].min() - 10 * moves[s - 1:s + 6].max())
    frames = slice(start, start + 4)
    spoiled, spoiled_world = clean.copy(), clean_world.copy()
    left = [INDEX[f"left_{part}"] for part in SWAPPABLE_LIMBS[limb]]
    right = [INDEX[f"right_{part}"] for part in SWAPPABLE_LIMBS[limb]]
    for array in (spoiled, spoiled_world):
        array[frames, 0, left + right] = array[frames, 0, right + left]
    fixed, fixed_world, swapped = unswap_left_right(spoiled, spoiled_world, times, width, height)
    assert swapped[frames, 0, list(SWAPPABLE_LIMBS).index(limb)].all(), f"frames {start}-{start + 3}"
    np.testing.assert_array_equal(fixed, clean)
    np.testing.assert_array_equal(fixed_world, clean_world)


@pytest.mark.parametrize("keep_id_s, newcomer_slot", [(0.2, 0), (1.0, 1)])
def test_a_series_keeps_ids_for_its_settings_keep_id_time(standing: np.ndarray, keep_id_s: float,
                                                          newcomer_slot: int) -> None:
    # A is seen, then out of view for half a second, when B comes in elsewhere: B takes A's slot once A is let go.
    builder = SeriesBuilder(2, WIDTH, HEIGHT, keep_id_s)
    builder.add(0, 0.0, frame_of(standing, [(300, 400, 300)]))
    builder.add(15, 0.5, frame_of(standing, [(900, 400, 300)]))
    series = builder.build()
    assert series.present[1, newcomer_slot] and not series.present[1, 1 - newcomer_slot]
