"""What a clip says about the exercise done in it: the reps or holds, the suggestion behind `auto`, and the events
(jumps, falls, partial reps). One Coaching per clip, computed from its ClipResult and Kinematics, read by the
pages, the CLI and the exports (reps.csv, events.csv, the exercise in summary.json).
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.events import Event, find_falls, find_jumps
from analysis.exercises import Catalogue
from analysis.reps import ExerciseAnalysis, Suggestion, analyse_exercise, suggest_exercise
from analysis.result import ClipResult
from analysis.series import Kinematics

AUTO = "auto"


@dataclass(frozen=True)
class Coaching:
    """exercise: the chosen (or suggested) exercise's analysis, None when none was asked for or none fits.
    suggestion: what `auto` found (None when an exercise was named). events: jumps and falls, in time order."""

    exercise: ExerciseAnalysis | None
    suggestion: Suggestion | None
    events: tuple[Event, ...]


def coach(result: ClipResult, kinematics: Kinematics, catalogue: Catalogue, exercise: str | None) -> Coaching:
    """exercise: an exercise's name, "auto" to suggest one, or None for events only. ExerciseError for an
    unknown name (its message lists the known ones)."""
    series = result.series
    suggestion = None
    chosen = None
    if exercise == AUTO:
        suggestion = suggest_exercise(catalogue, series, kinematics)
        if suggestion.name is not None:
            chosen = catalogue.get(suggestion.name)
    elif exercise:
        chosen = catalogue.get(exercise)
    analysis = analyse_exercise(chosen, catalogue, series, kinematics) if chosen else None
    events = sorted([*find_jumps(series, kinematics), *find_falls(series, kinematics)], key=lambda e: e.start_s)
    return Coaching(analysis, suggestion, tuple(events))
