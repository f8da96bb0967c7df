"""Jumps and falls (analysis/events.py): synthetic people with known answers, and the real test clip."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from analysis.engine import PoseSettings
from analysis.events import Event, FallMonitor, FallSettings, find_falls, find_jumps
from analysis.filters import HEIGHT_PER_NOSE_TO_HEEL
from analysis.landmarks import INDEX
from analysis.result import ClipOptions
from analysis.series import PoseSeries, Smoothing, kinematics
from analysis.video import analyse_video
from synthetic import Figure, cycles, times, walk

G = 9.81
PX_PER_M = 300.0  # Figure.series' default metres_to_px


def calibrated_height(figure: Figure) -> float:
    """The stature that analysis.filters.metres_per_pixel assumes for this figure standing in a side view: its
    nose to mid-heel distance in the image plane (z across, y up), times HEIGHT_PER_NOSE_TO_HEEL."""
    standing = dataclasses.replace(figure, frames=1, knee=180.0, hip_flexion=None, trunk_lean=0.0, pitch=0.0,
                                   lift_m=0.0).scene()[0]
    heel = standing[[INDEX["left_heel"], INDEX["right_heel"]]].mean(axis=0)
    nose = standing[INDEX["nose"]]
    return float(np.hypot(nose[2] - heel[2], nose[1] - heel[1]) * HEIGHT_PER_NOSE_TO_HEEL)


def ballistic(t: np.ndarray, takeoff_s: float, speed_m_s: float) -> np.ndarray:
    """Height of a body thrown up at speed_m_s at takeoff_s, on the floor before and after its flight."""
    dt = t - takeoff_s
    return np.where((dt > 0) & (dt < 2 * speed_m_s / G), speed_m_s * dt - G * dt**2 / 2, 0.0)


def with_landmarks(series: PoseSeries, landmarks: np.ndarray, world: np.ndarray | None = None) -> PoseSeries:
    world = series.world if world is None else world
    return PoseSeries(series.times_s, series.frame_index, landmarks.astype(np.float32), world,
                      series.width, series.height)


def jittered(series: PoseSeries, px: float, seed: int = 0) -> PoseSeries:
    """Gaussian noise of px pixels (standard deviation) on every landmark's x and y."""
    landmarks = series.landmarks.copy()
    noise = np.random.default_rng(seed).normal(0.0, px, landmarks[..., :2].shape)
    landmarks[..., :2] += noise / np.array([series.width, series.height])
    return with_landmarks(series, landmarks)


def dropped(series: PoseSeries, start_s: float, seconds: float) -> PoseSeries:
    """The person not found (NaN) from start_s for `seconds`."""
    landmarks = series.landmarks.copy()
    landmarks[(series.times_s >= start_s) & (series.times_s < start_s + seconds)] = np.nan
    return with_landmarks(series, landmarks)


def live(series: PoseSeries, pixels: np.ndarray, person: int = 0) -> list[Event]:
    """A FallMonitor fed the frames one by one, and the events it returned."""
    monitor = FallMonitor(person=person)
    events = [monitor.update(t, frame) for t, frame in zip(series.times_s, pixels[:, person], strict=True)]
    return [e for e in events if e is not None]


def smooth_step(t: np.ndarray, start_s: float, seconds: float) -> np.ndarray:
    """0 before start_s, 1 after start_s + seconds, a half cosine in between."""
    x = np.clip((t - start_s) / seconds, 0.0, 1.0)
    return (1 - np.cos(np.pi * x)) / 2


def accelerating(t: np.ndarray, start_s: float, seconds: float) -> np.ndarray:
    """0 before start_s, then growing as the square of the time (a topple, gathering speed), 1 at impact."""
    return np.clip((t - start_s) / seconds, 0.0, 1.0) ** 2


# --- jumps ---

@pytest.mark.parametrize("speed_m_s, fps", [(2.0, 30.0), (1.4, 30.0), (2.6, 60.0)])
def test_a_jump_gives_its_flight_time_and_height_both_ways(speed_m_s: float, fps: float) -> None:
    t = times(4.0, fps)
    takeoff = 1.5 + 0.37 / fps  # between frames
    flight = 2 * speed_m_s / G
    # A countermovement before take-off and a landing that bends the knees, both with the feet down.
    knee = cycles(130.0, 180.0, t, 0.6, start_s=takeoff - 0.6, count=1)
    knee = np.minimum(knee, cycles(130.0, 180.0, t, 0.6, start_s=takeoff + flight, count=1))
    figure = Figure(len(t), knee=knee, lift_m=ballistic(t, takeoff, speed_m_s))
    series = figure.series(fps=fps, metres_to_px=PX_PER_M)
    events = find_jumps(series, kinematics(series, Smoothing(), calibrated_height(figure)))
    assert [e.kind for e in events] == ["jump"]
    jump = events[0]
    assert jump.person == 0
    assert jump.start_s == pytest.approx(takeoff, abs=0.01)
    assert jump.end_s == pytest.approx(takeoff + flight, abs=0.01)
    assert jump.flight_s == pytest.approx(flight, abs=0.01)
    height = speed_m_s**2 / (2 * G)  # = g·flight²/8
    assert jump.height_flight_m == pytest.approx(height, rel=0.05)
    assert jump.height_hip_m == pytest.approx(height, rel=0.05, abs=0.005)
    assert f"{flight:.2f} s" in jump.note or f"{jump.flight_s:.2f} s" in jump.note


def test_without_a_height_the_hip_rise_is_not_given() -> None:
    t = times(3.0)
    figure = Figure(len(t), lift_m=ballistic(t, 1.0, 2.0))
    series = figure.series()
    (jump,) = find_jumps(series, kinematics(series, Smoothing()))
    assert jump.height_hip_m is None and jump.height_flight_m == pytest.approx(2.0**2 / (2 * G), rel=0.05)
    assert "hips" not in jump.note


def test_jumps_in_a_row_are_each_found() -> None:
    t = times(6.0)
    speed, contact = 1.6, 0.3
    flight = 2 * speed / G
    takeoffs = 1.0 + np.arange(6) * (flight + contact)
    lift = sum(ballistic(t, start, speed) for start in takeoffs)
    figure = Figure(len(t), lift_m=lift, leg_abduction=cycles(4.0, 30.0, t, flight + contact, start_s=1.0))
    series = figure.series(view="front")
    events = find_jumps(series, kinematics(series, Smoothing()))
    assert len(events) == 6
    np.testing.assert_allclose([e.start_s for e in events], takeoffs, atol=0.02)
    np.testing.assert_allclose([e.flight_s for e in events], flight, atol=0.02)


def test_a_jump_survives_jitter_and_a_short_dropout() -> None:
    t = times(4.0)
    figure = Figure(len(t), lift_m=ballistic(t, 1.5, 2.0))
    flight = 2 * 2.0 / G
    series = dropped(jittered(figure.series(), px=3.0, seed=1), start_s=0.8, seconds=0.2)
    events = find_jumps(series, kinematics(series, Smoothing(), calibrated_height(figure)))
    assert len(events) == 1
    assert events[0].start_s == pytest.approx(1.5, abs=0.03)
    assert events[0].flight_s == pytest.approx(flight, abs=0.03)
    assert events[0].height_hip_m == pytest.approx(2.0**2 / (2 * G), rel=0.15)


def test_a_jump_cut_by_the_end_of_the_clip_is_not_counted() -> None:
    t = times(2.0)
    series = Figure(len(t), lift_m=ballistic(t, 1.8, 2.0)).series()
    assert find_jumps(series, kinematics(series, Smoothing())) == []


@pytest.mark.parametrize("jitter_px", [0.0, 3.0])
def test_standing_squatting_and_walking_are_no_jumps(jitter_px: float) -> None:
    t = times(6.0)
    standing = Figure(len(t)).series()
    squats = Figure(len(t), knee=cycles(90.0, 180.0, t, 1.5)).series()
    walking = walk(6.0).series()
    for series in (standing, squats, walking):
        series = jittered(series, jitter_px, seed=2)
        assert find_jumps(series, kinematics(series, Smoothing())) == []


@pytest.mark.parametrize("box_m", [0.2, 0.4])
def test_stepping_onto_a_box_and_down_again_is_no_jump(box_m: float) -> None:
    """Both feet come up to a new floor level (stood on for 2 s) and go down again: the floor estimate (over
    3 s) does not follow so short a stay, but a flight of over a second is no jump. (A jump made from such a
    short-lived floor is missed: a known limit, see analysis/events.py.)"""
    t = times(8.0)
    up = box_m * (smooth_step(t, 3.0, 0.4) - smooth_step(t, 5.0, 0.4))
    series = Figure(len(t), lift_m=up).series()
    assert find_jumps(series, kinematics(series, Smoothing())) == []


def test_feet_that_rise_under_still_hips_are_no_jump() -> None:
    """What a landmark glitch looks like (on Pose2Sim's multi-person demo the model took a neighbour's legs for
    the man's): both feet 15 cm up for 0.3 s while the body stays put. The same lift of the whole body is a jump."""
    t = times(4.0)
    standing = Figure(len(t)).series()
    feet = [INDEX[f"{side}_{part}"] for side in ("left", "right") for part in ("ankle", "heel", "foot_index")]
    landmarks = standing.landmarks.copy()
    up = ((t > 2.0) & (t < 2.3)).astype(np.float32) * (0.15 * 300 / standing.height)  # 0.15 m at 300 px/m
    landmarks[:, 0, feet, 1] -= up[:, None]
    glitch = with_landmarks(standing, landmarks)
    assert find_jumps(glitch, kinematics(glitch, Smoothing())) == []
    jump = Figure(len(t), lift_m=ballistic(t, 2.0, 1.5)).series()
    assert len(find_jumps(jump, kinematics(jump, Smoothing()))) == 1


def test_walking_keeps_one_foot_down_but_lifts_the_other() -> None:
    """The walk test above can fail: each foot does leave the floor, only never both at once."""
    scene = walk(6.0).scene()
    left = scene[:, [INDEX["left_heel"], INDEX["left_foot_index"]], 1].max(axis=1)
    right = scene[:, [INDEX["right_heel"], INDEX["right_foot_index"]], 1].max(axis=1)
    assert (-left).max() > 0.08 and (-right).max() > 0.08  # metres above the floor
    assert np.maximum(left, right).min() > -1e-9  # the lower foot is always on the floor


# --- falls ---

def fall(t: np.ndarray, start_s: float, seconds: float, profile=smooth_step, view: str = "side") -> PoseSeries:
    """Standing, then falling forwards to lying face down over `seconds` from start_s (the knees buckle on the
    way), then lying still."""
    x = profile(t, start_s, seconds)
    return Figure(len(t), pitch=90.0 * x, knee=180.0 - 60.0 * np.sin(np.pi * x)).series(view=view)


@pytest.mark.parametrize("profile", [smooth_step, accelerating])
@pytest.mark.parametrize("view", ["side", "front"])
def test_a_fall_is_found_with_its_time(profile, view: str) -> None:
    t = times(6.0)
    series = fall(t, 2.0, 0.7, profile, view)
    kin = kinematics(series, Smoothing())
    events = find_falls(series, kin)
    assert [e.kind for e in events] == ["fall"]
    # Falling towards the camera, the first part of a topple hardly shows: the trunk's image shortens as
    # 1 - cos(angle) rather than moving as the angle does in a side view.
    assert events[0].start_s == pytest.approx(2.0, abs=0.1 if view == "side" else 0.15)
    assert events[0].end_s == pytest.approx(2.7, abs=0.1)
    assert events[0].note.startswith("fall: hips dropped 1.")
    # The live monitor, fed the same frames, raises the same fall, once, 1.5 s after the person came to rest.
    assert live(series, kin.pixels) == events
    # Fed the raw landmarks instead (the webcam has no zero-phase filter), it still finds it, at about that time.
    (raw,) = live(series, series.pixels)
    assert raw.start_s == pytest.approx(events[0].start_s, abs=0.05)
    assert raw.end_s == pytest.approx(events[0].end_s, abs=0.05)


def test_the_fall_is_reported_when_the_still_window_ends() -> None:
    t = times(6.0)
    series = fall(t, 2.0, 0.7)
    monitor = FallMonitor()
    frames = zip(t, series.pixels[:, 0], strict=True)
    confirmed = [ti for ti, frame in frames if monitor.update(ti, frame) is not None]
    assert len(confirmed) == 1 and 2.7 + 1.3 < confirmed[0] < 2.7 + 1.7


def test_with_a_height_the_drop_is_given_in_metres() -> None:
    t = times(6.0)
    x = smooth_step(t, 2.0, 0.7)
    figure = Figure(len(t), pitch=90.0 * x, knee=180.0 - 60.0 * np.sin(np.pi * x))
    series = figure.series()
    (event,) = find_falls(series, kinematics(series, Smoothing(), calibrated_height(figure)))
    hips = figure.scene()[:, [INDEX["left_hip"], INDEX["right_hip"]], 1].mean(axis=1)
    assert event.note == f"fall: hips dropped {hips[-1] - hips[0]:.1f} m in {event.end_s - event.start_s:.1f} s, " \
                         "lying still after"


def test_a_fall_survives_jitter_and_a_dropout() -> None:
    t = times(6.0)
    series = dropped(jittered(fall(t, 2.0, 0.7), px=3.0, seed=3), start_s=3.2, seconds=0.2)
    kin = kinematics(series, Smoothing())
    (event,) = find_falls(series, kin)
    assert event.start_s == pytest.approx(2.0, abs=0.1) and event.end_s == pytest.approx(2.7, abs=0.1)
    assert live(series, kin.pixels) == [event]
    # Raw frames: jitter unfiltered, and the dropout not bridged: the monitor still raises it, once.
    (raw,) = live(series, series.pixels)
    assert raw.start_s == pytest.approx(2.0, abs=0.15)


def test_two_falls_are_two_events_and_lying_on_is_one() -> None:
    t = times(14.0)
    down = smooth_step(t, 2.0, 0.7) - smooth_step(t, 6.0, 1.5) + smooth_step(t, 9.0, 0.7)
    series = Figure(len(t), pitch=90.0 * down).series()
    kin = kinematics(series, Smoothing())
    events = find_falls(series, kin)
    assert [round(e.start_s) for e in events] == [2, 9]
    assert live(series, kin.pixels) == events


def test_a_variable_frame_rate_changes_nothing() -> None:
    """Webcams and phones deliver frames unevenly: frame times 1/30 s apart ± 40 %."""
    steps = np.random.default_rng(5).uniform(0.6, 1.4, 240) / 30
    t = np.cumsum(steps) - steps[0]
    x = smooth_step(t, 2.0, 0.7)
    series = Figure(len(t), pitch=90.0 * x, knee=180.0 - 60.0 * np.sin(np.pi * x)).series(times_s=t)
    kin = kinematics(series, Smoothing())
    (event,) = find_falls(series, kin)
    assert event.start_s == pytest.approx(2.0, abs=0.1) and event.end_s == pytest.approx(2.7, abs=0.1)
    assert live(series, kin.pixels) == [event]
    lift = ballistic(t, 3.0, 2.0)
    series = Figure(len(t), lift_m=lift).series(times_s=t)
    (jump,) = find_jumps(series, kinematics(series, Smoothing()))
    assert jump.start_s == pytest.approx(3.0, abs=0.02) and jump.flight_s == pytest.approx(4.0 / G, abs=0.02)


def test_each_person_is_judged_on_their_own() -> None:
    """Two people in one series: the one in slot 1 falls, the one in slot 0 sits down, then jumps."""
    t = times(8.0)
    sitter = sitting_down(t)
    sitter.lift_m = ballistic(t, 7.0, 1.8)
    faller = fall(t, 3.0, 0.7)
    first = sitter.series()
    landmarks = np.concatenate([first.landmarks, faller.landmarks], axis=1)
    landmarks[:, 1, :, 0] += 0.3  # the second person further right
    series = with_landmarks(first, landmarks, np.concatenate([first.world, faller.world], axis=1))
    kin = kinematics(series, Smoothing())
    (event,) = find_falls(series, kin)
    assert event.person == 1 and event.start_s == pytest.approx(3.0, abs=0.1)
    assert live(series, kin.pixels, person=1) == [event] and live(series, kin.pixels, person=0) == []
    assert [(e.person, round(e.start_s, 1)) for e in find_jumps(series, kin)] == [(0, 7.0)]


def test_no_fall_in_the_clips_first_frames_lying_or_in_its_last_seconds() -> None:
    t = times(4.0)
    lying = Figure(len(t), pitch=90.0).series()  # lying still from the first frame: no drop was seen
    late = fall(t, 3.0, 0.7)  # the still window is not over when the clip ends
    for series in (lying, late):
        kin = kinematics(series, Smoothing())
        assert find_falls(series, kin) == [] and live(series, kin.pixels) == []


def sitting_down(t: np.ndarray) -> Figure:
    """Sitting down on a chair in 0.6 s (knees and hips to 90°, the trunk upright, a little forward on the way
    down), sitting still, then standing up again."""
    x = smooth_step(t, 2.0, 0.6) - smooth_step(t, 6.0, 0.8)
    lean = 25.0 * (cycles(1.0, 0.0, t, 0.6, start_s=2.0, count=1) + cycles(1.0, 0.0, t, 0.8, start_s=6.0, count=1))
    return Figure(len(t), knee=180.0 - 90.0 * x, hip_flexion=90.0 * x, trunk_lean=lean)


def bending_down(t: np.ndarray) -> Figure:
    """Bending to pick something up: the trunk to horizontal and back over 2 s, knees bent a little."""
    x = cycles(1.0, 0.0, t, 2.0, start_s=2.0, count=1)  # 0 → 1 → 0
    return Figure(len(t), trunk_lean=90.0 * x, knee=180.0 - 40.0 * x)


def crouching_to_the_floor(t: np.ndarray) -> Figure:
    """Crouching fast to pick something off the floor (knees to 70°, the hips drop more than in a fall's
    threshold), the trunk near horizontal for 1 s, then standing up."""
    x = smooth_step(t, 2.0, 0.5) - smooth_step(t, 3.5, 0.8)
    return Figure(len(t), knee=180.0 - 110.0 * x, trunk_lean=75.0 * x)


def down_and_straight_up(t: np.ndarray) -> Figure:
    """Down on the floor as fast as a fall, but moving at once: 0.5 s lying, then getting up over 3 s. No alarm
    by the rule (little motion after): the trunk is not upright for 2 s, but never still for 1.5 s of it."""
    x = smooth_step(t, 2.0, 0.7) - smooth_step(t, 3.2, 3.0)
    return Figure(len(t), pitch=90.0 * x, knee=180.0 - 60.0 * np.sin(np.pi * smooth_step(t, 2.0, 0.7)))


def lying_down_slowly(t: np.ndarray) -> Figure:
    """Lying down over 5 s (onto the floor or a bed), then lying still: by our rule not a fall, the hips come
    down too slowly (at most about 0.5 torso lengths in any second)."""
    x = smooth_step(t, 2.0, 5.0)
    return Figure(len(t), pitch=90.0 * x, knee=180.0 - 60.0 * np.sin(np.pi * x))


@pytest.mark.parametrize("motion", [sitting_down, bending_down, crouching_to_the_floor, down_and_straight_up,
                                    lying_down_slowly])
@pytest.mark.parametrize("view", ["side", "front"])
def test_sitting_bending_and_lying_down_slowly_are_no_falls(motion, view: str) -> None:
    t = times(10.0)
    figure = motion(t)
    for series in (figure.series(view=view), jittered(figure.series(view=view), px=3.0, seed=4)):
        kin = kinematics(series, Smoothing())
        assert find_falls(series, kin) == []
        assert live(series, kin.pixels) == [] and live(series, series.pixels) == []


def test_the_no_fall_motions_do_move_as_described() -> None:
    """So that the test above can fail: the sit drops the hips more than a fall must, the bend and the crouch
    tilt the trunk past 60°, the slow lie ends lying."""
    t = times(10.0)
    torso = 0.52  # synthetic.LENGTHS_M["trunk"]

    def hips_drop(figure: Figure) -> float:
        hips = figure.scene()[:, [INDEX["left_hip"], INDEX["right_hip"]], 1].mean(axis=1)
        return float(hips.max() - hips[0]) / torso

    assert hips_drop(sitting_down(t)) > FallSettings().drop_torso
    assert hips_drop(crouching_to_the_floor(t)) > FallSettings().drop_torso
    assert bending_down(t).trunk_lean.max() > 60 and crouching_to_the_floor(t).trunk_lean.max() > 60
    assert lying_down_slowly(t).pitch[-1] == pytest.approx(90.0)
    pitch = down_and_straight_up(t).pitch
    not_upright = (pitch > 60).sum() / 30
    assert not_upright > FallSettings().still_s + 0.3 and hips_drop(down_and_straight_up(t)) > 1.5


def test_the_monitor_keeps_a_few_seconds_and_is_cheap() -> None:
    t = times(60.0)
    x = smooth_step(t, 30.0, 0.7)
    series = jittered(Figure(len(t), pitch=90.0 * x, knee=180.0 - 60.0 * np.sin(np.pi * x)).series(), 2.0)
    pixels = series.pixels[:, 0].astype(np.float64)
    monitor = FallMonitor()
    longest = 0
    started = time.perf_counter()
    found = []
    for ti, frame in zip(t, pixels, strict=True):
        event = monitor.update(ti, frame)
        if event is not None:
            found.append(event)
        longest = max(longest, monitor.frames_kept)
    per_frame_ms = (time.perf_counter() - started) / len(t) * 1000
    assert len(found) == 1
    assert longest <= 4.0 * 30 + 1  # scale_window_s of frames
    assert per_frame_ms < 0.2, per_frame_ms


def test_frames_must_come_in_time_order() -> None:
    monitor = FallMonitor()
    frame = np.zeros((33, 2))
    monitor.update(1.0, frame)
    with pytest.raises(ValueError, match="increase"):
        monitor.update(1.0, frame)


def test_settings_must_let_the_unit_see_the_person_up() -> None:
    with pytest.raises(ValueError, match="scale_window_s"):
        FallSettings(scale_window_s=2.0)


# --- real footage ---

@pytest.fixture(scope="module")
def jumper(media: Path):
    """The test clip through the real pipeline, one person: the man doing jumping jacks on a box. His height is
    not known: 1.8 m is assumed, which gives the hip rise's order of magnitude only."""
    series = analyse_video(media / "clip.mp4", PoseSettings(), ClipOptions()).series
    return series, kinematics(series, Smoothing(), 1.8)


def test_the_jumping_jacks_on_the_box_are_three_jumps(jumper) -> None:
    """Seen frame by frame (the feet against the top edge of the box, 30 frames/s): his feet leave the box
    at about frames 5.5, 23.5 and 41 and land at about 15, 31 and 50.5; a fourth take-off starts at frame 58,
    cut by the end of the clip. Flights of about 0.25-0.33 s, so 8-13 cm by g·t²/8."""
    series, kin = jumper
    events = find_jumps(series, kin)
    assert [e.person for e in events] == [0, 0, 0]
    frame = 1 / 30
    np.testing.assert_allclose([e.start_s for e in events], np.array([5.5, 23.5, 41.0]) * frame, atol=2 * frame)
    np.testing.assert_allclose([e.end_s for e in events], np.array([15.0, 31.0, 50.5]) * frame, atol=2 * frame)
    for e in events:
        assert 0.2 < e.flight_s < 0.4 and 0.04 < e.height_flight_m < 0.2
        assert 0.0 < e.height_hip_m < 0.25


def test_nobody_falls_in_the_clip(jumper, media: Path) -> None:
    series, kin = jumper
    assert find_falls(series, kin) == []
    assert live(series, kin.pixels) == [] and live(series, series.pixels) == []
    # With two people the woman walking in from the right is found too (MediaPipe then loses the man for
    # about 0.4 s): no fall for either, and no jump for her.
    both = analyse_video(media / "clip.mp4", PoseSettings(max_people=2), ClipOptions()).series
    kin = kinematics(both, Smoothing(), 1.7)
    assert both.present[:, 1].any()
    assert find_falls(both, kin) == []
    assert all(live(both, kin.pixels, person) == [] for person in range(both.people))
    assert [e for e in find_jumps(both, kin) if e.person == 1] == []
