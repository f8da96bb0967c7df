"""Exercises on real footage (tests/media: registry demo clips), analysed by the real model.

jacks5.mp4 is five real jumping jacks: source frames 41–78 of the Sports2D demo, one full jack from arms down to
arms down, written five times in a row (tests/media/fetch_media.py), so its count is known: 5. demo.mp4 is the
whole demo: two full jumping jacks (tops at frames 24 and 59, by eye), then the man walks along the box, raises
one arm into a tree and flips off it, landing with both arms up: traps for a counter. balance.mp4 (Pose2Sim's
single-person demo) holds no exercise at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.coaching import AUTO, coach
from analysis.engine import PoseSettings
from analysis.exercises import load_catalogue
from analysis.result import ClipOptions, ClipResult
from analysis.series import Kinematics, Smoothing, kinematics
from analysis.video import analyse_video

CATALOGUE = load_catalogue()


@pytest.fixture(scope="module")
def clips(media: Path) -> dict[str, tuple[ClipResult, Kinematics]]:
    out = {}
    for name in ("jacks5.mp4", "demo.mp4", "balance.mp4"):
        result = analyse_video(media / name, PoseSettings(), ClipOptions(), name=name)
        out[name] = (result, kinematics(result.series, Smoothing()))
    return out


def test_five_looped_real_jumping_jacks_count_five_at_their_tops(clips) -> None:
    result, motion = clips["jacks5.mp4"]
    analysis = coach(result, motion, CATALOGUE, "jumping_jack").exercise
    assert analysis.count() == 5 and not analysis.partials
    tops_s = np.array([18, 56, 94, 132, 170]) / 30  # by eye: the arms highest in each loop
    assert [r.extreme_s for r in analysis.reps] == pytest.approx(tops_s, abs=0.12)
    assert all(r.depth_ok for r in analysis.reps) and all(r.rom_deg > 120 for r in analysis.reps)
    suggestion = coach(result, motion, CATALOGUE, AUTO).suggestion
    assert suggestion.name == "jumping_jack" and suggestion.confidence > 0.8


def test_the_whole_demo_counts_its_two_jumping_jacks_and_not_the_traps_after(clips) -> None:
    result, motion = clips["demo.mp4"]
    analysis = coach(result, motion, CATALOGUE, "jumping_jack").exercise
    assert analysis.count() == 2
    assert [r.extreme_s for r in analysis.reps] == pytest.approx(np.array([24, 59]) / 30, abs=0.15)
    assert coach(result, motion, CATALOGUE, AUTO).suggestion.name == "jumping_jack"


def test_a_clip_without_an_exercise_counts_nothing_it_is_not(clips) -> None:
    result, motion = clips["balance.mp4"]
    everything = coach(result, motion, CATALOGUE, AUTO)
    assert everything.suggestion.name is None and everything.exercise is None
    for name, exercise in CATALOGUE.exercises.items():
        analysis = coach(result, motion, CATALOGUE, name).exercise
        assert (analysis.count() if exercise.kind == "reps" else len(analysis.holds)) == 0, name
    assert not [e for e in everything.events if e.kind == "fall"]
