"""Counting, per-rep figures, form cues, holds and the exercise suggestion, on synthetic people whose joint angles
are known exactly (tests/synthetic.py), and the exercise catalogue with a user's own file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from analysis.exercises import ExerciseError, load_catalogue, parse_catalogue
from analysis.landmarks import LANDMARK_NAMES
from analysis.reps import CueBoard, Cue, LiveCoach, analyse_exercise, suggest_exercise
from analysis.series import PoseSeries, Smoothing, kinematics
from synthetic import Figure, cycles, times

CATALOGUE = load_catalogue()
SECONDS = 14.0
T = times(SECONDS)
N = len(T)


def five(low: float, high: float, period_s: float = 2.0, start_s: float = 1.0) -> np.ndarray:
    """Five cycles from high to low and back, after 1 s at rest, then rest again to the end."""
    return cycles(low, high, T, period_s, start_s, count=5)


# Each exercise performed five times by a synthetic person, seen from the view it needs.
PERFORMANCES = {
    "squat": (Figure(N, knee=five(80, 175), trunk_lean=20), "side"),
    "push_up": (Figure(N, pitch=80, shoulder_flexion=80, elbow=five(85, 175)), "side"),
    "biceps_curl": (Figure(N, elbow=five(45, 170)), "side"),
    "shoulder_press": (Figure(N, shoulder_abduction=260 - five(90, 170), elbow=255 - five(80, 175),
                              elbow_plane="abduction"), "front"),
    "jumping_jack": (Figure(N, shoulder_abduction=185 - five(15, 170, 1.5), leg_abduction=19 - five(4, 15, 1.5)),
                     "front"),
    "sit_up": (Figure(N, pitch=-90, hip_flexion=45, knee=90, trunk_lean=180 - five(100, 180)), "side"),
    "glute_bridge": (Figure(N, pitch=-90, hip_flexion=five(0, 60), knee=90), "side"),
}


def analysed(figure: Figure, view: str, exercise: str):
    series = figure.series(view)
    motion = kinematics(series, Smoothing())
    return series, motion, analyse_exercise(CATALOGUE.get(exercise), CATALOGUE, series, motion)


def with_landmarks(series: PoseSeries, landmarks: np.ndarray) -> PoseSeries:
    return dataclasses.replace(series, landmarks=landmarks.astype(np.float32))


@pytest.mark.parametrize("name", list(PERFORMANCES))
def test_each_exercise_counts_exactly_five_and_auto_finds_it(name: str) -> None:
    figure, view = PERFORMANCES[name]
    series, motion, analysis = analysed(figure, view, name)
    assert analysis.count() == 5
    assert [r.number for r in analysis.reps] == [1, 2, 3, 4, 5]
    assert not analysis.partials and not analysis.warnings
    period = 1.5 if name == "jumping_jack" else 2.0
    # Each rep is one cycle: it starts and ends near the cycle's boundaries and peaks half-way.
    for k, rep in enumerate(analysis.reps):
        cycle_start = 1.0 + k * period
        assert rep.extreme_s == pytest.approx(cycle_start + period / 2, abs=0.05)
        assert cycle_start - 0.05 <= rep.start_s <= cycle_start + 0.3 * period
        assert cycle_start + 0.7 * period <= rep.end_s <= cycle_start + period + 0.05
        assert rep.eccentric_s + rep.concentric_s == pytest.approx(rep.duration_s)
    suggestion = suggest_exercise(CATALOGUE, series, motion)
    assert suggestion.name == name
    assert suggestion.confidence > 0.5


def test_squat_figures_depth_tempo_and_the_count_moment() -> None:
    # Four reps: 2 s each, down in 1.3 s and up in 0.7 s, the last one only to 100°, which misses the 90° target.
    phase = np.clip(T - 1.0, 0, 8.0)
    cycle, within = np.floor(phase / 2.0), np.mod(phase, 2.0)
    down = np.where(within < 1.3, within / 1.3, 1 - (within - 1.3) / 0.7)
    depth = np.where(cycle == 3, 100.0, 80.0)
    knee = np.where(phase >= 8.0, 175.0, 175 - (175 - depth) * (1 - np.cos(np.pi * down)) / 2)
    _, _, analysis = analysed(Figure(N, knee=knee), "side", "squat")
    assert analysis.count() == 4
    first, last = analysis.reps[0], analysis.reps[-1]
    assert first.extreme_deg == pytest.approx(80, abs=1.5)
    assert first.rom_deg == pytest.approx(95, abs=3)
    assert first.eccentric_s == pytest.approx(1.3, abs=0.2) and first.concentric_s == pytest.approx(0.7, abs=0.2)
    assert first.depth_ok and not last.depth_ok
    assert [c.text for c in last.cues] == ["go deeper"] and not first.cues
    assert last.left_deg == pytest.approx(last.right_deg, abs=0.5) and last.asymmetry_deg < 0.5
    # A squat counts when the person is back up (the end of the concentric phase), not at the bottom.
    assert all(r.counted_s > r.extreme_s + 0.3 for r in analysis.reps)


def test_a_curl_counts_at_the_top_of_the_curl() -> None:
    series, motion, analysis = analysed(*PERFORMANCES["biceps_curl"], "biceps_curl")
    work = CATALOGUE.get("biceps_curl").work
    for rep in analysis.reps:  # as the elbow passes the work threshold on the way up, before the curl's top
        at = int(np.argmin(np.abs(series.times_s - rep.counted_s)))
        assert rep.start_s < rep.counted_s < rep.extreme_s
        assert motion.angles_2d[at, 0, 0] <= work < motion.angles_2d[at - 1, 0, 0]


def test_partial_reps_are_flagged_not_counted() -> None:
    knee = five(80, 175)
    shallow = (T > 3.0) & (T < 5.0)  # the second cycle goes only to 135°
    knee[shallow] = cycles(135, 175, T, 2.0, 3.0)[shallow]
    _, _, analysis = analysed(Figure(N, knee=knee), "side", "squat")
    assert analysis.count() == 4
    assert len(analysis.partials) == 1
    partial = analysis.partials[0]
    assert partial.partial and partial.number == 0 and 3.0 <= partial.start_s < partial.end_s <= 5.1
    assert partial.extreme_deg == pytest.approx(135, abs=2)


def test_standing_still_or_swaying_counts_nothing() -> None:
    rng = np.random.default_rng(1)
    for knee in (np.full(N, 175.0), 165 + 6 * np.sin(T * 5) + rng.normal(0, 2, N)):
        _, _, analysis = analysed(Figure(N, knee=knee), "side", "squat")
        assert analysis.count() == 0 and not analysis.partials
    series = Figure(N).series("side")
    motion = kinematics(series, Smoothing())
    assert suggest_exercise(CATALOGUE, series, motion).name is None


def test_jitter_dropouts_and_left_right_swaps_do_not_change_the_count() -> None:
    series = Figure(N, knee=five(80, 175)).series("side")
    rng = np.random.default_rng(7)
    landmarks = series.landmarks.copy()
    landmarks[..., :2] += rng.normal(0, 3 / 1280, landmarks[..., :2].shape)  # about 3 px of jitter
    landmarks[(T > 2.0) & (T < 2.3)] = np.nan  # the person lost for 0.3 s at the bottom of rep 1
    swapped = (T > 4.5) & (T < 5.5)  # the model swaps left and right through rep 2's bottom
    left = [i for i, n in enumerate(LANDMARK_NAMES) if n.startswith("left_")]
    right = [LANDMARK_NAMES.index(LANDMARK_NAMES[i].replace("left_", "right_")) for i in left]
    landmarks[np.ix_(swapped, [0], left + right)] = landmarks[np.ix_(swapped, [0], right + left)]
    noisy = with_landmarks(series, landmarks)
    motion = kinematics(noisy, Smoothing())
    analysis = analyse_exercise(CATALOGUE.get("squat"), CATALOGUE, noisy, motion)
    assert analysis.count() == 5
    assert not analysis.partials


def test_a_long_gap_drops_the_rep_it_hides() -> None:
    series = Figure(N, knee=five(80, 175)).series("side")
    landmarks = series.landmarks.copy()
    landmarks[(T > 3.3) & (T < 4.8)] = np.nan  # 1.5 s without the person, through rep 2's bottom
    hidden = with_landmarks(series, landmarks)
    analysis = analyse_exercise(CATALOGUE.get("squat"), CATALOGUE, hidden, kinematics(hidden, Smoothing()))
    assert analysis.count() == 4
    assert all(not (r.start_s < 4.0 < r.end_s) for r in analysis.reps)


def test_form_rules_give_cues_at_the_reps_that_need_them() -> None:
    lean = np.where((T > 5.5) & (T < 6.5), 60.0, 15.0)  # rep 3 leans the trunk far forward at the bottom
    _, _, analysis = analysed(Figure(N, knee=five(80, 175), trunk_lean=lean), "side", "squat")
    cues = [[c.text for c in r.cues] for r in analysis.reps]
    assert cues == [[], [], ["keep your chest up"], [], []]
    assert analysis.reps[2].severity == "warning"

    sag = np.where((T > 3.0) & (T < 5.0), 35.0, 0.0)  # push-up 2 with the hips sagging: the body line breaks
    figure = Figure(N, pitch=80, shoulder_flexion=80, elbow=five(85, 175), hip_flexion=-sag, knee=180)
    _, _, analysis = analysed(figure, "side", "push_up")
    assert [[c.text for c in r.cues] for r in analysis.reps] == [[], ["keep your body straight"], [], [], []]


def test_a_front_view_squat_is_warned_about_and_caving_knees_are_cued() -> None:
    knee_in = np.where((T > 1) & (T < 3), 0.12 * (1 - np.cos(2 * np.pi * (T - 1) / 2)) / 2, 0.0)
    figure = Figure(N, knee=five(80, 175), knee_in_m=knee_in, leg_abduction=0)
    square_on = figure.series("front")
    analysis = analyse_exercise(CATALOGUE.get("squat"), CATALOGUE, square_on, kinematics(square_on, Smoothing()))
    assert analysis.views == {0: "front"}
    assert any("measured from the side" in w for w in analysis.warnings)
    # Square on, the knee angle in the picture hardly changes: nothing is counted, and the warning says why.
    assert analysis.count() == 0

    turned = figure.series("front", yaw_deg=40)  # still a front view, turned enough for the knees to show a bend
    analysis = analyse_exercise(CATALOGUE.get("squat"), CATALOGUE, turned, kinematics(turned, Smoothing()))
    assert analysis.views == {0: "front"} and analysis.count() == 5
    assert [[c.text for c in r.cues if c.text == "knees out"] for r in analysis.reps] == [["knees out"], [], [], [], []]
    assert analysis.reps[0].severity == "error"


def test_joints_out_of_view_are_warned_about() -> None:
    series = Figure(N, knee=five(80, 175)).series("side")
    landmarks = series.landmarks.copy()
    legs = [LANDMARK_NAMES.index(f"{s}_{j}") for s in ("left", "right") for j in ("knee", "ankle")]
    landmarks[:, :, legs, 3] = 0.1  # the model sees no knee or ankle: out of frame
    cropped = with_landmarks(series, landmarks)
    analysis = analyse_exercise(CATALOGUE.get("squat"), CATALOGUE, cropped, kinematics(cropped, Smoothing()))
    assert analysis.count() == 0
    assert any("in view in only 0%" in w for w in analysis.warnings)


def test_holds_time_held_and_time_in_good_form() -> None:
    in_plank = (T >= 2.0) & (T < 10.0)
    sag = np.where((T >= 6.0) & (T < 8.0), 25.0, 0.0)  # two seconds with the hips sagging
    figure = Figure(N, pitch=np.where(in_plank, 80.0, 0.0), shoulder_flexion=np.where(in_plank, 80.0, 0.0),
                    elbow=np.where(in_plank, 90.0, 175.0), hip_flexion=-sag, knee=180)
    series, motion, analysis = analysed(figure, "side", "plank")
    assert len(analysis.holds) == 1
    hold = analysis.holds[0]
    assert hold.start_s == pytest.approx(2.0, abs=0.15) and hold.end_s == pytest.approx(10.0, abs=0.15)
    assert hold.held_s == pytest.approx(8.0, abs=0.3)
    assert hold.good_s == pytest.approx(6.0, abs=0.4)
    assert [c.text for c in hold.cues] == ["keep your hips in line"]
    assert suggest_exercise(CATALOGUE, series, motion).name == "plank"


def test_the_live_counter_agrees_with_the_offline_segmentation() -> None:
    for name, (figure, view) in PERFORMANCES.items():
        series, motion, offline = analysed(figure, view, name)
        coach = LiveCoach(CATALOGUE.get(name), CATALOGUE)
        counts = []
        for i in range(series.frames):
            coach.update(float(series.times_s[i]), motion.angles_2d[i, 0], motion.pixels[i, 0])
            counts.append(coach.state().count)
        live = coach.state()
        assert live.count == offline.count() == 5, name
        for a, b in zip(live.reps, offline.reps, strict=True):
            assert (a.start_s, a.extreme_s, a.end_s) == pytest.approx((b.start_s, b.extreme_s, b.end_s), abs=1e-6)
            assert a.rom_deg == pytest.approx(b.rom_deg, abs=1e-3) and a.cues == b.cues
        # The live count goes up one at a time, at the moment each rep counts.
        steps = np.flatnonzero(np.diff(counts)) + 1
        assert np.all(np.diff(counts) >= 0) and len(steps) == 5
        assert series.times_s[steps] == pytest.approx([r.counted_s for r in offline.reps], abs=0.05)


def test_live_holds_and_cues_with_a_cooldown() -> None:
    in_plank = T >= 1.0
    figure = Figure(N, pitch=np.where(in_plank, 80.0, 0.0), shoulder_flexion=np.where(in_plank, 80.0, 0.0),
                    elbow=np.where(in_plank, 90.0, 175.0), hip_flexion=np.where(T > 8.0, -25.0, 0.0), knee=180)
    series = figure.series("side")
    motion = kinematics(series, Smoothing())
    coach = LiveCoach(CATALOGUE.get("plank"), CATALOGUE)
    shown = []
    for i in range(series.frames):
        coach.update(float(series.times_s[i]), motion.angles_2d[i, 0], motion.pixels[i, 0])
        state = coach.state()
        shown.append(state.cue.text if state.cue else "")
    assert state.holding and state.held_s == pytest.approx(SECONDS - 1.0 - 1 / 30, abs=0.2)
    assert state.good_s == pytest.approx(7.0, abs=0.3)
    # The sagging hips from 8 s on break the rule every frame, but the cue shows for 3 s, then rests for the cooldown.
    on = np.array([bool(s) for s in shown])
    assert not on[T < 7.9].any() and on[(T > 8.2) & (T < 10.9)].all() and not on[(T > 11.3) & (T < 13.9)].all()


def test_cue_board_keeps_a_cue_up_and_the_more_severe_one_wins() -> None:
    board = CueBoard(show_s=3.0, cooldown_s=6.0)
    board.offer(Cue("go deeper", "warning", 0.0), 0.0)
    board.offer(Cue("knees out", "error", 0.0), 1.0)
    board.offer(Cue("not so deep", "info", 0.0), 2.0)
    assert board.current(2.0).text == "knees out"
    assert board.current(4.5) is None
    board.offer(Cue("knees out", "error", 0.0), 5.0)  # within its cooldown
    assert board.current(5.0) is None
    board.offer(Cue("knees out", "error", 0.0), 7.5)
    assert board.current(7.5).text == "knees out"


def test_a_user_file_adds_and_overrides_exercises(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text("""
[measures.wrist_reach]
points = ["{side}_hip", "{side}_shoulder", "{side}_wrist"]
[exercises.squat]
title = "Deep squat"
signal = "knee"
rest = 150
work = 100
target = 70
[exercises.front_raise]
title = "Front raise"
signal = "wrist_reach"
direction = "up"
rest = 40
work = 80
concentric = "to_work"
[[exercises.front_raise.rules]]
measure = "trunk_lean"
max = 10
cue = "stand tall"
""", encoding="utf-8")
    catalogue = load_catalogue(user)
    assert catalogue.get("squat").title == "Deep squat" and catalogue.get("squat").target == 70
    assert "push_up" in catalogue.names and "front_raise" in catalogue.names
    raise_ = catalogue.get("Front Raise")
    figure = Figure(N, shoulder_flexion=105 - five(10, 95))
    series = figure.series("side")
    motion = kinematics(series, Smoothing())
    assert analyse_exercise(raise_, catalogue, series, motion).count() == 5


@pytest.mark.parametrize(("text", "message"), [
    ("[exercises.x]\nsignal = \"nope\"\nrest = 1\nwork = 0", "signal must name an angle measure"),
    ("[exercises.x]\nsignal = \"knee\"\nrest = 100\nwork = 150", "work must be below rest"),
    ("[exercises.x\n", "not valid TOML"),
    ("[things.x]\na = 1", "sections it does not know"),
    ("[measures.m]\nangle = \"elbowz\"", "no angle called"),
    ("[measures.m]\nspread = [\"left_ankle\", \"toe\"]", "“toe” is not a landmark"),
    ("[exercises.x]\nsignal = \"knee\"\nrest = 150\nwork = 100\n[[exercises.x.rules]]\nmeasure = \"knee\"\nmax = 9",
     "a rule needs a cue"),
    ("[exercises.x]\nkind = \"hold\"", "a hold needs"),
])
def test_bad_exercise_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    user = tmp_path / "bad.toml"
    user.write_text(text, encoding="utf-8")
    with pytest.raises(ExerciseError, match=message):
        load_catalogue(user)


def test_an_unknown_exercise_lists_the_known_ones() -> None:
    with pytest.raises(ExerciseError) as caught:
        CATALOGUE.get("burpee")
    assert "burpee" in str(caught.value)
    assert all(name in str(caught.value) for name in ("squat", "push_up", "jumping_jack", "plank", "wall_sit"))


def test_the_shipped_catalogue_has_the_exercises_the_issue_asks_for() -> None:
    wanted = {"squat", "push_up", "lunge", "biceps_curl", "shoulder_press", "jumping_jack", "sit_up", "glute_bridge",
              "plank", "wall_sit"}
    assert wanted <= set(CATALOGUE.names)
    assert {CATALOGUE.get(n).kind for n in ("plank", "wall_sit")} == {"hold"}
    assert CATALOGUE.get("squat").target == 90
    assert parse_catalogue([]).names == ()
