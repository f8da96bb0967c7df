"""Exercises and the measures they read, as data: analysis/exercises.toml, plus a user file that adds or overrides.

The file format is described at the top of exercises.toml. `load_catalogue` reads the shipped file and, when
given, the user's (by `--exercises FILE`, or the POSESCOPE_EXERCISES environment variable), and checks every
entry, so that a typo in a user file is a sentence naming the entry, not a KeyError mid-analysis.
"""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from analysis.angles import ANGLE_NAMES
from analysis.landmarks import INDEX

SHIPPED = Path(__file__).with_name("exercises.toml")
USER_FILE_VARIABLE = "POSESCOPE_EXERCISES"
MAX_USER_FILE_BYTES = 256 << 10

Sides = Literal["mean", "min", "max", "both", "left", "right"]
SIDES = ("mean", "min", "max", "both", "left", "right")
SEVERITIES = ("info", "warning", "error")
VIEWS = ("side", "front", "any")


class ExerciseError(ValueError):
    """An exercise file or name that cannot be used; the message is for the user."""


@dataclass(frozen=True)
class Measure:
    """A number per frame and side: kind "angle" (points: three landmarks, or an angle's name in `angle`),
    "spread" (two landmarks, distance in torso lengths) or "ratio" (distance of points[0:2] over points[2:4]).

    points hold "{side}" where the measure has a left and a right value.
    """

    name: str
    kind: Literal["angle", "spread", "ratio"]
    points: tuple[str, ...] = ()
    angle: str | None = None
    sides: Sides = "mean"
    meaning: str = ""

    @property
    def unit(self) -> str:
        return "°" if self.kind == "angle" else "×"

    @property
    def two_sided(self) -> bool:
        if self.angle is not None:
            return f"left {self.angle}" in ANGLE_NAMES
        return any("{side}" in p for p in self.points)


@dataclass(frozen=True)
class Condition:
    """A measure within bounds. at: where it is checked ("rep", "work", "rest", "hold"; see exercises.toml)."""

    measure: str
    min: float | None = None
    max: float | None = None
    at: str = "rep"
    cue: str = ""
    severity: str = "warning"
    view: str = "any"
    tolerance: float = 0.2

    def holds(self, value: float) -> bool:
        """True when the value is within bounds; a value that could not be measured breaks no rule."""
        if value != value:  # NaN
            return True
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    kind: Literal["reps", "hold"]
    about: str = ""
    signal: str | None = None
    direction: Literal["down", "up"] = "down"
    rest: float = 0.0
    work: float = 0.0
    partial: float = 0.0
    target: float | None = None
    target_cue: str = ""
    concentric: Literal["to_work", "to_rest"] = "to_rest"
    min_rep_s: float = 0.5
    min_hold_s: float = 1.0
    view: str = "any"
    joints: tuple[str, ...] = ()
    rules: tuple[Condition, ...] = ()
    signature: tuple[Condition, ...] = ()
    position: tuple[Condition, ...] = ()

    def beyond(self, value: float, threshold: float) -> bool:
        """Past the threshold towards the working position (below it for direction "down")."""
        return value <= threshold if self.direction == "down" else value >= threshold

    def reached_target(self, extreme: float) -> bool | None:
        if self.target is None or extreme != extreme:
            return None
        return self.beyond(extreme, self.target)


@dataclass(frozen=True)
class Catalogue:
    """Every known measure and exercise; `measures_of` says which measures an exercise reads."""

    measures: dict[str, Measure]
    exercises: dict[str, Exercise] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.exercises)

    def get(self, name: str) -> Exercise:
        """The exercise called `name` (case and spaces forgiven); ExerciseError listing the known ones if none."""
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        if key not in self.exercises:
            raise ExerciseError(f"There is no exercise called “{name}”. Known exercises: {', '.join(self.names)}.")
        return self.exercises[key]

    def measures_of(self, exercise: Exercise) -> dict[str, Measure]:
        names = {exercise.signal} if exercise.signal else set()
        names |= {c.measure for c in (*exercise.rules, *exercise.signature, *exercise.position)}
        return {name: self.measures[name] for name in sorted(names)}


def current_catalogue() -> Catalogue:
    """The catalogue the app uses: the shipped file and POSESCOPE_EXERCISES' file, read again only when that
    file changes (so an edited user file shows without a restart). ExerciseError for a bad user file."""
    user = os.environ.get(USER_FILE_VARIABLE)
    stamp = None
    if user:
        try:
            stamp = Path(user).stat().st_mtime_ns
        except OSError:
            stamp = -1
    return _cached_catalogue(user, stamp)


@functools.lru_cache(maxsize=4)
def _cached_catalogue(user: str | None, stamp: int | None) -> Catalogue:
    return load_catalogue(Path(user) if user else None)


def load_catalogue(user_file: Path | None = None) -> Catalogue:
    """The shipped exercises, with the user file's entries added or replacing those of the same name.

    user_file: a TOML file in the format of exercises.toml; by default the one POSESCOPE_EXERCISES names, if any.
    """
    tables = [_read(SHIPPED)]
    if user_file is None and os.environ.get(USER_FILE_VARIABLE):
        user_file = Path(os.environ[USER_FILE_VARIABLE])
    if user_file is not None:
        tables.append(_read(user_file))
    return parse_catalogue(tables)


def parse_catalogue(tables: list[dict[str, Any]]) -> Catalogue:
    """Catalogue from parsed TOML tables, later ones adding to or replacing earlier ones' entries."""
    raw_measures: dict[str, Any] = {}
    raw_exercises: dict[str, Any] = {}
    for table in tables:
        unknown = set(table) - {"measures", "exercises"}
        if unknown:
            raise ExerciseError(f"An exercise file has sections it does not know: {', '.join(sorted(unknown))} "
                                "(only [measures.NAME] and [exercises.NAME]).")
        raw_measures |= _table(table.get("measures", {}), "measures")
        raw_exercises |= _table(table.get("exercises", {}), "exercises")
    measures = {name: _measure(name, _table(entry, f"measures.{name}")) for name, entry in raw_measures.items()}
    exercises = {name: _exercise(name, _table(entry, f"exercises.{name}"), measures)
                 for name, entry in raw_exercises.items()}
    return Catalogue(measures, exercises)


def _read(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_USER_FILE_BYTES:
            raise ExerciseError(f"{path.name}: an exercise file is a few kilobytes; this one is too large.")
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ExerciseError(f"{path}: the exercise file could not be read ({error.strerror or error}).") from None
    except UnicodeDecodeError:
        raise ExerciseError(f"{path.name}: the exercise file is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as error:
        raise ExerciseError(f"{path.name}: the exercise file is not valid TOML ({error}).") from None


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ExerciseError(f"[{where}] should be a table of settings.")
    return value


def _measure(name: str, entry: dict[str, Any]) -> Measure:
    kinds = [key for key in ("angle", "points", "spread", "ratio") if key in entry]
    if len(kinds) != 1:
        raise ExerciseError(f"Measure “{name}” needs exactly one of angle, points, spread or ratio.")
    sides = entry.get("sides", "mean")
    if sides not in SIDES:
        raise ExerciseError(f"Measure “{name}”: sides must be one of {', '.join(SIDES)}.")
    meaning = str(entry.get("meaning", ""))
    kind = kinds[0]
    if kind == "angle":
        angle = entry["angle"]
        if f"left {angle}" not in ANGLE_NAMES and angle not in ANGLE_NAMES:
            raise ExerciseError(f"Measure “{name}”: there is no angle called “{angle}”.")
        return Measure(name, "angle", angle=angle, sides=sides, meaning=meaning)
    if kind == "ratio":
        pairs = entry["ratio"]
        if not (isinstance(pairs, list) and len(pairs) == 2 and all(isinstance(p, list) and len(p) == 2 for p in pairs)):
            raise ExerciseError(f"Measure “{name}”: ratio is two pairs of landmarks, [[a, b], [c, d]].")
        points = tuple(pairs[0] + pairs[1])
    else:
        points = tuple(entry[kind])
        expected = 3 if kind == "points" else 2
        if len(points) != expected:
            raise ExerciseError(f"Measure “{name}”: {kind} names {expected} landmarks.")
    for point in points:
        if not isinstance(point, str) or point.replace("{side}", "left") not in INDEX:
            raise ExerciseError(f"Measure “{name}”: “{point}” is not a landmark (see analysis/landmarks.py).")
    return Measure(name, "angle" if kind == "points" else kind, points=points, sides=sides, meaning=meaning)


def _number(entry: dict[str, Any], key: str, where: str, default: float | None = None) -> float | None:
    value = entry.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ExerciseError(f"{where}: {key} must be a number.")
    return float(value)


def _conditions(entry: dict[str, Any], key: str, where: str, measures: dict[str, Measure],
                places: tuple[str, ...]) -> tuple[Condition, ...]:
    items = entry.get(key, [])
    if not isinstance(items, list):
        raise ExerciseError(f"{where}: {key} must be a list of [[{where}.{key}]] tables.")
    conditions = []
    for number, item in enumerate(items, start=1):
        here = f"{where}, {key} {number}"
        item = _table(item, f"{where}.{key}")
        measure = item.get("measure")
        if measure not in measures:
            raise ExerciseError(f"{here}: “{measure}” is not a measure; known: {', '.join(measures)}.")
        low, high = _number(item, "min", here), _number(item, "max", here)
        if low is None and high is None:
            raise ExerciseError(f"{here}: give min, max or both.")
        at = item.get("at", places[0])
        if at not in places:
            raise ExerciseError(f"{here}: at must be one of {', '.join(places)}.")
        severity = item.get("severity", "warning")
        if severity not in SEVERITIES:
            raise ExerciseError(f"{here}: severity must be one of {', '.join(SEVERITIES)}.")
        view = item.get("view", "any")
        if view not in VIEWS:
            raise ExerciseError(f"{here}: view must be one of {', '.join(VIEWS)}.")
        tolerance = _number(item, "tolerance", here, 0.2)
        if key == "rules" and not item.get("cue"):
            raise ExerciseError(f"{here}: a rule needs a cue, the few words the user sees.")
        conditions.append(Condition(measure, low, high, at, str(item.get("cue", "")), severity, view, tolerance))
    return tuple(conditions)


def _exercise(name: str, entry: dict[str, Any], measures: dict[str, Measure]) -> Exercise:
    where = f"Exercise “{name}”"
    kind = entry.get("kind", "reps")
    if kind not in ("reps", "hold"):
        raise ExerciseError(f"{where}: kind must be reps or hold.")
    view = entry.get("view", "any")
    if view not in VIEWS:
        raise ExerciseError(f"{where}: view must be one of {', '.join(VIEWS)}.")
    joints = tuple(entry.get("joints", ()))
    for joint in joints:
        if not isinstance(joint, str) or joint.replace("{side}", "left") not in INDEX:
            raise ExerciseError(f"{where}: “{joint}” in joints is not a landmark.")
    common = {
        "name": name, "title": str(entry.get("title", name.replace("_", " ").capitalize())), "kind": kind,
        "about": str(entry.get("about", "")), "view": view, "joints": joints,
    }
    if kind == "hold":
        position = _conditions(entry, "position", where, measures, ("hold",))
        if not position:
            raise ExerciseError(f"{where}: a hold needs [[exercises.{name}.position]] conditions.")
        return Exercise(**common, position=position, rules=_conditions(entry, "rules", where, measures, ("hold",)),
                        min_hold_s=_number(entry, "min_hold_s", where, 1.0))
    signal = entry.get("signal")
    if signal not in measures or measures[signal].kind != "angle":
        raise ExerciseError(f"{where}: signal must name an angle measure; known: "
                            f"{', '.join(n for n, m in measures.items() if m.kind == 'angle')}.")
    direction = entry.get("direction", "down")
    if direction not in ("down", "up"):
        raise ExerciseError(f"{where}: direction must be down or up.")
    rest, work = _number(entry, "rest", where, None), _number(entry, "work", where, None)
    if rest is None or work is None:
        raise ExerciseError(f"{where}: give the rest and work thresholds.")
    if (work >= rest) if direction == "down" else (work <= rest):
        raise ExerciseError(f"{where}: with direction {direction}, work must be {'below' if direction == 'down' else 'above'}"
                            " rest (the gap between them is the hysteresis).")
    partial = _number(entry, "partial", where, (rest + work) / 2)
    concentric = entry.get("concentric", "to_rest")
    if concentric not in ("to_work", "to_rest"):
        raise ExerciseError(f"{where}: concentric must be to_work or to_rest.")
    min_rep_s = _number(entry, "min_rep_s", where, 0.5)
    if min_rep_s <= 0:
        raise ExerciseError(f"{where}: min_rep_s must be more than 0.")
    return Exercise(**common, signal=signal, direction=direction, rest=rest, work=work, partial=partial,
                    target=_number(entry, "target", where), target_cue=str(entry.get("target_cue", "")),
                    concentric=concentric, min_rep_s=min_rep_s,
                    rules=_conditions(entry, "rules", where, measures, ("rep", "work")),
                    signature=_conditions(entry, "signature", where, measures, ("work", "rest")))
