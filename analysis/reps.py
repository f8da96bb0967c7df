"""Repetitions, holds and form cues of an exercise, offline over a clip and causally, frame by frame, live.

Both read an exercise's signal (exercises.toml) through the same hysteresis: a rep leaves the rest zone, reaches
the working zone and comes back. Offline, `analyse_exercise` finds the reps' working extremes as peaks with a
prominence (as OpenCap segments squats), which merges a bounce at the bottom into one rep. Live, `RepCounter`
follows the zones as frames arrive. Both measure a rep with the same function (`_measure_rep`) over the same
frames, so they agree on a clean clip; the tests hold them to it.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import find_peaks

from analysis.angles import ANGLE_NAMES, ANGLES
from analysis.exercises import Catalogue, Condition, Exercise
from analysis.landmarks import INDEX
from analysis.measures import combine, evaluate, torso_length, view_of
from analysis.series import Kinematics, PoseSeries

# A gap in the signal longer than this ends whatever rep was under way: the person was not seen doing it.
MAX_GAP_S = 1.0
# A rep's start and end are where the signal settles at rest: within this share of the rest–work span of the
# most-rested value in SETTLE_WINDOW_S before it left (after it came back to) the rest zone.
SETTLE_SHARE = 0.1
SETTLE_WINDOW_S = 1.0
# A hold may be broken for this long (a wobble, a missed frame) and still be one hold.
HOLD_GAP_S = 0.5
SEVERITY_ORDER = {"info": 0, "warning": 1, "error": 2}
MIN_VISIBLE_SHARE = 0.5


@dataclass(frozen=True)
class Cue:
    text: str
    severity: str
    time_s: float


@dataclass(frozen=True)
class Rep:
    """One repetition, counted (number from 1) or a partial attempt (number 0: it never reached the work zone).

    counted_s: the moment the rep counts, at the end of its concentric phase: back at rest (a squat standing up)
    or passing the work threshold (a curl reaching the top).
    Angles in degrees; extreme: the signal at the working extreme (the bottom of a squat). eccentric_s /
    concentric_s: the phases away from and back against the load (a squat's down and up). left_deg / right_deg:
    each side's own extreme; asymmetry_deg their difference. depth_ok: the extreme reached the exercise's target.
    """

    number: int
    person: int
    start_s: float
    end_s: float
    extreme_s: float
    counted_s: float
    eccentric_s: float
    concentric_s: float
    min_deg: float
    max_deg: float
    extreme_deg: float
    left_deg: float
    right_deg: float
    depth_ok: bool | None
    cues: tuple[Cue, ...] = ()

    @property
    def partial(self) -> bool:
        return self.number == 0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def rom_deg(self) -> float:
        return self.max_deg - self.min_deg

    @property
    def asymmetry_deg(self) -> float:
        return abs(self.left_deg - self.right_deg)

    @property
    def severity(self) -> str:
        return max((c.severity for c in self.cues), key=SEVERITY_ORDER.__getitem__, default="")


@dataclass(frozen=True)
class Hold:
    """A time the person held the exercise's position; good_s of it with every hold rule kept."""

    person: int
    start_s: float
    end_s: float
    held_s: float
    good_s: float
    cues: tuple[Cue, ...] = ()


@dataclass(frozen=True)
class ExerciseAnalysis:
    """An exercise over a clip: counted reps, partial attempts, holds, and what limits the analysis (warnings:
    the camera view or unseen joints). views: the view each analysed person was filmed from. signal: the
    exercise's signal, (frames, people) degrees, NaN for holds. joints: the angles (ANGLE_NAMES) it reads, to chart."""

    exercise: Exercise
    reps: tuple[Rep, ...] = ()
    partials: tuple[Rep, ...] = ()
    holds: tuple[Hold, ...] = ()
    warnings: tuple[str, ...] = ()
    views: dict[int, str] = field(default_factory=dict)
    signal: np.ndarray | None = None
    joints: tuple[str, ...] = ()

    def count(self, person: int | None = None) -> int:
        return sum(1 for rep in self.reps if person is None or rep.person == person)

    def reps_of(self, person: int) -> list[Rep]:
        return [rep for rep in self.reps if rep.person == person]

    def tempo(self, person: int) -> tuple[float, float]:
        """Mean (eccentric, concentric) seconds of a person's reps; NaN without reps."""
        reps = self.reps_of(person)
        if not reps:
            return math.nan, math.nan
        return float(np.mean([r.eccentric_s for r in reps])), float(np.mean([r.concentric_s for r in reps]))

    def held(self, person: int) -> tuple[float, float]:
        """(seconds held, seconds of it in good form) over a person's holds."""
        holds = [h for h in self.holds if h.person == person]
        return sum(h.held_s for h in holds), sum(h.good_s for h in holds)

    def depth_reached(self, person: int) -> tuple[int, int]:
        """(reps that reached the target depth, reps with a target to reach) for a person."""
        judged = [r.depth_ok for r in self.reps_of(person) if r.depth_ok is not None]
        return sum(judged), len(judged)

    def people(self) -> list[int]:
        return sorted({r.person for r in (*self.reps, *self.partials)} | {h.person for h in self.holds}
                      | set(self.views))


@dataclass
class _Track:
    """One person's frames as the rules read them: times, the signal (combined and per side) and each
    condition's measure, combined."""

    times: np.ndarray
    signal: np.ndarray
    sides: np.ndarray
    values: dict[str, np.ndarray]


def _combined_values(catalogue: Catalogue, exercise: Exercise, angles: np.ndarray, pixels: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(signal, sides, values by measure) for any leading shape: the exercise's numbers from angles and pixels."""
    measures = catalogue.measures_of(exercise)
    raw = evaluate(measures, angles, pixels)
    values = {name: combine(raw[name], measure.sides) for name, measure in measures.items()}
    if exercise.signal is None:
        return np.full(angles.shape[:-1], np.nan), np.full((*angles.shape[:-1], 2), np.nan), values
    sides = raw[exercise.signal]
    if sides.shape[-1] == 1:
        sides = np.repeat(sides, 2, axis=-1)
    return values[exercise.signal], sides, values


def _applies(condition: Condition, view: str) -> bool:
    return condition.view == "any" or condition.view == view


def _at_extreme(values: np.ndarray, extreme: int) -> float:
    """The value at the working extreme, as the median of the frames around it (one bad frame is not the rep)."""
    around = values[max(0, extreme - 2): extreme + 3]
    around = around[np.isfinite(around)]
    return float(np.median(around)) if len(around) else math.nan


def _broken(condition: Condition, values: np.ndarray) -> bool:
    """Whether a rule over a stretch of frames is broken: outside its bounds for more than its tolerance."""
    measured = values[np.isfinite(values)]
    return bool(len(measured)) and float((~_within(condition, measured)).mean()) > condition.tolerance


def _within(condition: Condition, values: np.ndarray) -> np.ndarray:
    inside = np.ones(values.shape, bool)
    if condition.min is not None:
        inside &= ~(values < condition.min)
    if condition.max is not None:
        inside &= ~(values > condition.max)
    return inside


def _at_rest(exercise: Exercise, signal: np.ndarray) -> np.ndarray:
    """In the rest zone: short of the rest threshold. False where the signal is NaN."""
    return signal > exercise.rest if exercise.direction == "down" else signal < exercise.rest


def _settle(track: _Track, exercise: Exercise, index: int, step: int) -> int:
    """Where a rep starts (step -1) or ends (step +1): from the frame where the signal left (came back to) the
    rest zone, walk away from the rep for up to SETTLE_WINDOW_S, stopping short of another rep (a frame past
    the partial threshold) or a gap; the frame nearest `index` within SETTLE_SHARE of the span of the most
    rested value on that walk."""
    times, signal = track.times, track.signal
    frames = [index]
    while (0 <= frames[-1] + step < len(times) and abs(times[frames[-1] + step] - times[index]) <= SETTLE_WINDOW_S
           and np.isfinite(signal[frames[-1] + step])
           and not exercise.beyond(float(signal[frames[-1] + step]), exercise.partial)):
        frames.append(frames[-1] + step)
    values = signal[frames]
    most = values.max() if exercise.direction == "down" else values.min()
    near = SETTLE_SHARE * abs(exercise.rest - exercise.work)
    return next(f for f, v in zip(frames, values, strict=True) if abs(v - most) <= near)


def _keeps_signature(exercise: Exercise, track: _Track, left_rest: int, extreme: int) -> bool:
    """Whether a movement is this exercise at all: its signature holds at the working extreme and at rest (elbows
    bending while standing are not push-ups). A value that cannot be measured does not veto."""
    return all(condition.holds(_at_extreme(track.values[condition.measure],
                                           extreme if condition.at == "work" else left_rest))
               for condition in exercise.signature)


def _measure_rep(exercise: Exercise, track: _Track, left_rest: int, extreme: int, back: int, number: int,
                 person: int, view: str) -> Rep:
    """One rep's figures and cues (left_rest, back: the last frame at rest before it and the first after; extreme:
    the working extreme). The one definition both the offline and the live counter use."""
    start = _settle(track, exercise, left_rest, -1)
    end = _settle(track, exercise, back, +1)
    times = track.times
    signal = track.signal[start:end + 1]
    pick = np.nanmin if exercise.direction == "down" else np.nanmax
    sides = track.sides[start:end + 1]
    with np.errstate(all="ignore"):
        left, right = (float(pick(sides[:, i])) if np.isfinite(sides[:, i]).any() else math.nan for i in (0, 1))
    extreme_deg = float(track.signal[extreme])
    away_s, back_s = times[extreme] - times[start], times[end] - times[extreme]
    eccentric, concentric = (back_s, away_s) if exercise.concentric == "to_work" else (away_s, back_s)
    depth_ok = exercise.reached_target(extreme_deg) if number else False
    cues = []
    if depth_ok is False and exercise.target_cue:
        cues.append(Cue(exercise.target_cue, "warning", float(times[extreme])))
    for rule in exercise.rules:
        if not _applies(rule, view):
            continue
        values = track.values[rule.measure]
        if rule.at == "work":
            broken = not rule.holds(_at_extreme(values, extreme))
        else:
            broken = _broken(rule, values[start:end + 1])
        if broken:
            cues.append(Cue(rule.cue, rule.severity, float(times[extreme])))
    if exercise.concentric == "to_work":  # counted as the work threshold is passed, the live count's moment
        toward = track.signal[left_rest:extreme + 1]
        passed = np.flatnonzero(toward <= exercise.work if exercise.direction == "down" else toward >= exercise.work)
        counted = times[left_rest + int(passed[0])] if len(passed) else times[extreme]
    else:
        counted = times[back]
    return Rep(number, person, float(times[start]), float(times[end]), float(times[extreme]), float(counted),
               float(eccentric), float(concentric), float(np.nanmin(signal)), float(np.nanmax(signal)), extreme_deg,
               left, right, depth_ok, tuple(cues))


# --- offline ------------------------------------------------------------------------------------------------


def analyse_exercise(exercise: Exercise, catalogue: Catalogue, series: PoseSeries, kinematics: Kinematics
                     ) -> ExerciseAnalysis:
    """Reps (or holds), partial attempts, cues and view warnings for every person found in the clip."""
    signal, sides, values = _combined_values(catalogue, exercise, kinematics.angles_2d, kinematics.pixels)
    views = view_of(kinematics.pixels)
    reps: list[Rep] = []
    partials: list[Rep] = []
    holds: list[Hold] = []
    person_views: dict[int, str] = {}
    warnings: list[tuple[int, str]] = []
    for person in np.flatnonzero(series.present.any(axis=0)):
        person = int(person)
        view = _main_view(views[:, person])
        person_views[person] = view
        track = _Track(series.times_s, signal[:, person], sides[:, person],
                       {name: v[:, person] for name, v in values.items()})
        warnings += [(person, text) for text in _limits(exercise, view, kinematics.pixels[:, person],
                                                        series.present[:, person], person, series.people > 1)]
        if exercise.kind == "hold":
            holds += _find_holds(exercise, track, person, view)
            continue
        found, attempts = _find_reps(exercise, track, person, view)
        reps += found
        partials += attempts
    # Warnings only for who did the exercise (or, when nobody did, the person seen most): not a passer-by.
    active = {r.person for r in (*reps, *partials)} | {h.person for h in holds}
    if not active and person_views:
        active = {int(np.argmax(series.present.sum(axis=0)))}
    warnings = [text for person, text in warnings if person in active]
    return ExerciseAnalysis(exercise, tuple(reps), tuple(partials), tuple(holds), tuple(warnings), person_views,
                            signal.astype(np.float32), _charted_angles(catalogue, exercise))


def _charted_angles(catalogue: Catalogue, exercise: Exercise) -> tuple[str, ...]:
    """The angles of ANGLE_NAMES that an exercise's signal (or, for a hold, its position) is made of."""
    names = [exercise.signal] if exercise.signal else [c.measure for c in exercise.position]
    angles = [catalogue.measures[name].angle for name in names if catalogue.measures[name].angle]
    return tuple(n for angle in angles for n in (f"left {angle}", f"right {angle}", angle) if n in ANGLE_NAMES)


def _main_view(views: np.ndarray) -> str:
    seen = Counter(v for v in views.tolist() if v)
    return seen.most_common(1)[0][0] if seen else ""


def _limits(exercise: Exercise, view: str, pixels: np.ndarray, present: np.ndarray, person: int,
            name_person: bool) -> list[str]:
    """Sentences for what makes this exercise's figures unreliable for this person: the wrong camera view, or
    the joints it needs out of sight in most frames."""
    who = f"Person {person + 1}: " if name_person else ""
    notes = []
    if exercise.view != "any" and view and view != exercise.view:
        seen_as = "from the front" if view == "front" else "from the side" if view == "side" else "at an angle"
        notes.append(f"{who}{exercise.title} is measured from the {exercise.view}, but this clip looks filmed "
                     f"{seen_as}: angles are foreshortened, so depth and counts may be wrong. Film "
                     f"{'side-on' if exercise.view == 'side' else 'facing the camera'} for reliable figures.")
    if exercise.joints and present.any():
        seen = np.zeros(len(pixels), bool)
        for side in ("left", "right"):
            points = [INDEX[j.replace("{side}", side)] for j in exercise.joints]
            seen |= np.isfinite(pixels[:, points, 0]).all(axis=-1)
        share = float(seen[present].mean())
        if share < MIN_VISIBLE_SHARE:
            names = ", ".join(sorted({j.replace("{side}_", "").replace("_", " ") for j in exercise.joints}))
            notes.append(f"{who}the {names} needed for {exercise.title.lower()} are in view in only "
                         f"{share:.0%} of the frames: step back so the whole body is in the picture.")
    return notes


def _filled(signal: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The signal with gaps up to MAX_GAP_S filled linearly (for finding peaks); longer gaps stay NaN."""
    known = np.flatnonzero(np.isfinite(signal))
    if len(known) < 2:
        return signal.copy()
    filled = np.interp(times, times[known], signal[known])
    after = np.searchsorted(known, np.arange(len(signal)))
    before = np.clip(after - 1, 0, len(known) - 1)
    after = np.clip(after, 0, len(known) - 1)
    gap = times[known[after]] - times[known[before]]
    outside = (np.arange(len(signal)) < known[0]) | (np.arange(len(signal)) > known[-1])
    return np.where(np.isfinite(signal) | ((gap <= MAX_GAP_S) & ~outside), filled, np.nan)


def _find_reps(exercise: Exercise, track: _Track, person: int, view: str) -> tuple[list[Rep], list[Rep]]:
    signal = _filled(track.signal, track.times)
    track = _Track(track.times, signal, track.sides, track.values)
    toward_work = -signal if exercise.direction == "down" else signal
    if not np.isfinite(toward_work).any():
        return [], []
    span = abs(exercise.rest - exercise.work)
    # Unseen stretches become troughs, never peaks.
    peaks, _ = find_peaks(np.where(np.isfinite(toward_work), toward_work, np.nanmin(toward_work)),
                          prominence=0.5 * span,
                          height=-exercise.partial if exercise.direction == "down" else exercise.partial)
    rest_frames = np.flatnonzero(_at_rest(exercise, signal))
    excursions: dict[tuple[int, int], int] = {}
    for peak in peaks:
        before = rest_frames[rest_frames < peak]
        after = rest_frames[rest_frames > peak]
        if not len(before) or not len(after):
            continue  # the clip starts or ends mid-rep: it was not seen whole
        left_rest, back = int(before[-1]), int(after[0])
        if not np.isfinite(signal[left_rest:back + 1]).all():
            continue  # a long gap: the person was not seen doing it
        key = (left_rest, back)
        deepest = excursions.get(key)
        if deepest is None or toward_work[peak] > toward_work[deepest]:
            excursions[key] = int(peak)
    reps: list[Rep] = []
    partials: list[Rep] = []
    for (left_rest, back), extreme in sorted(excursions.items()):
        if track.times[back] - track.times[left_rest] < exercise.min_rep_s:
            continue
        if not _keeps_signature(exercise, track, left_rest, extreme):
            continue
        full = exercise.beyond(float(signal[extreme]), exercise.work)
        rep = _measure_rep(exercise, track, left_rest, extreme, back, len(reps) + 1 if full else 0, person, view)
        (reps if full else partials).append(rep)
    return reps, partials


def _find_holds(exercise: Exercise, track: _Track, person: int, view: str) -> list[Hold]:
    inside = np.ones(len(track.times), bool)
    for condition in exercise.position:
        values = track.values[condition.measure]
        inside &= np.isfinite(values) & _within(condition, values)
    good = inside.copy()
    for rule in exercise.rules:
        if _applies(rule, view):
            values = track.values[rule.measure]
            good &= ~np.isfinite(values) | _within(rule, values)
    return [_hold(exercise, track, person, view, first, last, good)
            for first, last in _runs(inside, track.times, HOLD_GAP_S)
            if track.times[last] - track.times[first] >= exercise.min_hold_s]


def _runs(mask: np.ndarray, times: np.ndarray, bridge_s: float) -> list[tuple[int, int]]:
    """(first, last) frames of the runs of True, runs less than bridge_s apart joined."""
    frames = np.flatnonzero(mask)
    if not len(frames):
        return []
    breaks = np.flatnonzero(times[frames[1:]] - times[frames[:-1]] > bridge_s)
    firsts = np.concatenate([[frames[0]], frames[breaks + 1]])
    lasts = np.concatenate([frames[breaks], [frames[-1]]])
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def _frame_durations(times: np.ndarray) -> np.ndarray:
    """How long each frame stands for: the time to the next one, at most HOLD_GAP_S (the last: the median)."""
    steps = np.diff(times)
    last = float(np.median(steps)) if len(steps) else 1 / 30
    return np.minimum(np.append(steps, last), HOLD_GAP_S)


def _hold(exercise: Exercise, track: _Track, person: int, view: str, first: int, last: int, good: np.ndarray
          ) -> Hold:
    durations = _frame_durations(track.times)[first:last + 1]
    cues = tuple(Cue(rule.cue, rule.severity, float(track.times[first])) for rule in exercise.rules
                 if _applies(rule, view) and _broken(rule, track.values[rule.measure][first:last + 1]))
    return Hold(person, float(track.times[first]), float(track.times[last] + durations[-1]), float(durations.sum()),
                float(durations[good[first:last + 1]].sum()), cues)


# --- live ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveExercise:
    """What the webcam shows: the count so far, the stage ("up" / "down", "" before the person is at rest),
    the cue to show now (None: none), the reps measured so far, and for a hold the seconds held and in form."""

    count: int
    stage: str
    cue: Cue | None
    reps: tuple[Rep, ...]
    partials: int
    held_s: float = 0.0
    good_s: float = 0.0
    holding: bool = False


class CueBoard:
    """Which cue to show: each stays up for show_s, and the same cue is not shown again within cooldown_s, so
    that a rule on the edge of its bound does not make the overlay flicker."""

    def __init__(self, show_s: float = 3.0, cooldown_s: float = 6.0) -> None:
        self.show_s, self.cooldown_s = show_s, cooldown_s
        self._shown: Cue | None = None
        self._last_shown: dict[str, float] = {}

    def offer(self, cue: Cue, time_s: float) -> None:
        """Show `cue` if it has not been shown within the cooldown and nothing more severe is up."""
        if time_s - self._last_shown.get(cue.text, -math.inf) < self.cooldown_s:
            return
        current = self.current(time_s)
        if current is not None and SEVERITY_ORDER[current.severity] > SEVERITY_ORDER[cue.severity]:
            return
        self._shown = Cue(cue.text, cue.severity, time_s)
        self._last_shown[cue.text] = time_s

    def current(self, time_s: float) -> Cue | None:
        if self._shown is None or time_s - self._shown.time_s > self.show_s:
            return None
        return self._shown


class RepCounter:
    """The causal counter for one person: frames in, reps out, with the zones and the rep measure of
    `analyse_exercise`. Memory is bounded: it keeps the current rep's frames and SETTLE_WINDOW_S before it."""

    def __init__(self, exercise: Exercise) -> None:
        if exercise.kind != "reps":
            raise ValueError(f"{exercise.title} is a hold, not counted in reps")
        self.exercise = exercise
        self.reps: list[Rep] = []
        self.partials: list[Rep] = []
        self.view = ""
        self._frames: list[tuple[float, float, np.ndarray, dict[str, float]]] = []
        self._state = "unknown"  # unknown, rest, away (left the rest zone), back (returned; the rep is settling)
        self._left_rest = self._back = -1
        self._reached = False
        self._last_seen = -math.inf
        self._stage = ""

    def update(self, time_s: float, signal: float, sides: np.ndarray, values: dict[str, float]) -> Rep | None:
        """One frame's signal, its two sides and the rules' values; returns a rep (or partial) once it is measured."""
        exercise = self.exercise
        if not math.isfinite(signal):
            if self._state in ("away", "back") and time_s - self._last_seen > MAX_GAP_S:
                finished = self._finish() if self._state == "back" else None
                self._reset()
                return finished
            return None
        if time_s - self._last_seen > MAX_GAP_S and self._state != "unknown":
            self._reset()
        self._last_seen = time_s
        at_rest = bool(_at_rest(exercise, np.float64(signal)))
        if at_rest:
            self._stage = "up" if exercise.direction == "down" else "down"
        elif exercise.beyond(signal, exercise.work):
            self._stage = "down" if exercise.direction == "down" else "up"
        finished = None
        if self._state == "back" and (time_s - self._frames[self._back][0] > SETTLE_WINDOW_S
                                      or exercise.beyond(signal, exercise.partial) or not at_rest):
            finished = self._finish()
        self._frames.append((time_s, signal, sides, values))
        newest = len(self._frames) - 1
        if self._state == "unknown" and at_rest:
            self._state = "rest"
        elif self._state == "rest":
            if not at_rest:
                self._state, self._left_rest, self._reached = "away", newest - 1, False
        elif self._state == "away":
            self._reached |= exercise.beyond(signal, exercise.work)
            if at_rest:
                self._state, self._back = "back", newest
        if self._state in ("rest", "unknown"):
            self._keep_since(time_s - SETTLE_WINDOW_S)
        return finished

    @property
    def count(self) -> int:
        """Reps measured, plus the one under way once it has reached the moment the exercise counts it at."""
        pending = self._reached and (self._state == "back" or
                                     (self._state == "away" and self.exercise.concentric == "to_work"))
        return len(self.reps) + int(pending)

    @property
    def stage(self) -> str:
        return self._stage

    def _finish(self) -> Rep | None:
        """Measure the rep that has come back to rest; the frames after it stay for the next one's start."""
        exercise = self.exercise
        times = np.array([f[0] for f in self._frames])
        track = _Track(times, np.array([f[1] for f in self._frames]), np.array([f[2] for f in self._frames]),
                       {name: np.array([f[3][name] for f in self._frames]) for name in self._frames[0][3]})
        left_rest, back = self._left_rest, self._back
        toward_work = -track.signal if exercise.direction == "down" else track.signal
        extreme = left_rest + int(np.nanargmax(toward_work[left_rest:back + 1]))
        rep = None
        if (times[back] - times[left_rest] >= exercise.min_rep_s
                and exercise.beyond(float(track.signal[extreme]), exercise.partial)
                and _keeps_signature(exercise, track, left_rest, extreme)):
            full = exercise.beyond(float(track.signal[extreme]), exercise.work)
            rep = _measure_rep(exercise, track, left_rest, extreme, back, len(self.reps) + 1 if full else 0, 0,
                               self.view)
            (self.reps if full else self.partials).append(rep)
        self._state, self._reached = "rest", False
        self._keep_since(times[-1] - SETTLE_WINDOW_S)
        if self._frames and not _at_rest(exercise, np.float64(self._frames[-1][1])):
            self._state = "unknown"
        return rep

    def _keep_since(self, time_s: float) -> None:
        first = 0
        while first < len(self._frames) - 1 and self._frames[first][0] < time_s:
            first += 1
        if first:
            del self._frames[:first]

    def _reset(self) -> None:
        self._frames.clear()
        self._state, self._reached, self._stage = "unknown", False, ""


class HoldTimer:
    """The causal hold: seconds in position and in good form, the current hold and the finished ones."""

    def __init__(self, exercise: Exercise) -> None:
        self.exercise = exercise
        self.holds: list[Hold] = []
        self.view = ""
        self._start: float | None = None
        self._last_in = -math.inf
        self._last_time: float | None = None
        self._held = self._good = 0.0
        self._broken: dict[str, float] = {}

    def update(self, time_s: float, values: dict[str, float]) -> list[Cue]:
        """One frame; returns the cues of the rules broken in it (the CueBoard decides which to show)."""
        exercise = self.exercise
        inside = all(math.isfinite(values[c.measure]) and c.holds(values[c.measure]) for c in exercise.position)
        step = 0.0 if self._last_time is None else min(time_s - self._last_time, HOLD_GAP_S)
        self._last_time = time_s
        if not inside:
            if self._start is not None and time_s - self._last_in > HOLD_GAP_S:
                self._end()
            return []
        if self._start is None:
            self._start, self._held, self._good, step = time_s, 0.0, 0.0, 0.0
        self._held += step
        self._last_in = time_s
        broken = [rule for rule in exercise.rules if _applies(rule, self.view) and not rule.holds(values[rule.measure])]
        if not broken:
            self._good += step
        return [Cue(rule.cue, rule.severity, time_s) for rule in broken]

    @property
    def holding(self) -> bool:
        return self._start is not None and self._held >= self.exercise.min_hold_s

    @property
    def current(self) -> tuple[float, float]:
        return (self._held, self._good) if self._start is not None else (0.0, 0.0)

    def _end(self) -> None:
        if self._held >= self.exercise.min_hold_s:
            self.holds.append(Hold(0, self._start, self._last_in, self._held, self._good))
        self._start = None


class LiveCoach:
    """An exercise followed live for one person: RepCounter or HoldTimer, the view, and the CueBoard.

    `update` takes a frame's angles (len(ANGLE_NAMES),) and pixels (33, 2) with NaN where hidden.
    """

    VIEW_FRAMES = 60

    def __init__(self, exercise: Exercise, catalogue: Catalogue) -> None:
        self.exercise, self._catalogue = exercise, catalogue
        self.counter = RepCounter(exercise) if exercise.kind == "reps" else None
        self.timer = HoldTimer(exercise) if exercise.kind == "hold" else None
        self.cues = CueBoard()
        self._recent_views: deque[str] = deque(maxlen=self.VIEW_FRAMES)
        self._time = 0.0

    def update(self, time_s: float, angles: np.ndarray, pixels: np.ndarray) -> None:
        self._time = time_s
        signal, sides, values = _combined_values(self._catalogue, self.exercise, angles, pixels)
        view = str(view_of(pixels))
        if view:
            self._recent_views.append(view)
            current = Counter(self._recent_views).most_common(1)[0][0]
            if self.counter:
                self.counter.view = current
            if self.timer:
                self.timer.view = current
        scalars = {name: float(v) for name, v in values.items()}
        if self.counter is not None:
            rep = self.counter.update(time_s, float(signal), np.asarray(sides, np.float64), scalars)
            for cue in rep.cues if rep else ():
                self.cues.offer(cue, time_s)
        else:
            for cue in self.timer.update(time_s, scalars):
                self.cues.offer(cue, time_s)

    def state(self) -> LiveExercise:
        cue = self.cues.current(self._time)
        if self.counter is not None:
            return LiveExercise(self.counter.count, self.counter.stage, cue, tuple(self.counter.reps),
                                len(self.counter.partials))
        held, good = self.timer.current
        return LiveExercise(len(self.timer.holds), "hold" if self.timer.holding else "", cue, (), 0,
                            held, good, self.timer.holding)


# --- which exercise -----------------------------------------------------------------------------------------

# Below this score no exercise is suggested: nothing in the clip moves like one.
MIN_SUGGESTION_SCORE = 0.25
# A hold's joints turn slower than this (degrees per second).
STILL_DEG_PER_S = 30.0
_JOINT_COLUMNS = [i for i, a in enumerate(ANGLES) if a.kind == "joint"]


@dataclass(frozen=True)
class Suggestion:
    """The exercise that best explains the motion, how sure (0–1: its score times its share of all the exercises'
    scores, so both a weak fit and a close rival lower it), and every exercise's score (0–1), best first. name
    None: no exercise fits."""

    name: str | None
    confidence: float
    scores: dict[str, float]


def suggest_exercise(catalogue: Catalogue, series: PoseSeries, kinematics: Kinematics) -> Suggestion:
    """Score each exercise by how well its own counter explains the clip: reps (which keep the exercise's signature,
    e.g. a lunge's feet a stride apart) that are regular in time, done on the spot, rarely partial and filmed
    from its view; a hold by the share of the clip held still."""
    duration = float(series.times_s[-1] - series.times_s[0]) if series.frames > 1 else 0.0
    scores = {}
    for name, exercise in catalogue.exercises.items():
        analysis = analyse_exercise(exercise, catalogue, series, kinematics)
        scores[name] = max((_score(exercise, analysis, series, kinematics, person, duration)
                            for person in analysis.views), default=0.0)
    ranked = dict(sorted(scores.items(), key=lambda item: -item[1]))
    best, best_score = next(iter(ranked.items()))
    if best_score < MIN_SUGGESTION_SCORE:
        return Suggestion(None, 0.0, ranked)
    return Suggestion(best, best_score * best_score / sum(ranked.values()), ranked)


def _score(exercise: Exercise, analysis: ExerciseAnalysis, series: PoseSeries,
           kinematics: Kinematics, person: int, duration: float) -> float:
    view = analysis.views.get(person, "")
    fits_view = 1.0 if exercise.view in ("any", view) else 0.5
    if exercise.kind == "hold":
        holds = [h for h in analysis.holds if h.person == person]
        held = sum(h.held_s for h in holds)
        if not holds:
            return 0.0
        # A hold is still: a push-up keeps a plank's body line but its elbows move.
        during = np.zeros(series.frames, bool)
        for hold in holds:
            during |= (series.times_s >= hold.start_s) & (series.times_s <= hold.end_s)
        joints = np.abs(kinematics.angular_velocity[during, person][:, _JOINT_COLUMNS])
        with np.errstate(invalid="ignore"):
            still = float(np.mean(~(np.nanmax(joints, axis=-1) > STILL_DEG_PER_S))) if during.any() else 0.0
        return fits_view * still * min(1.0, held / max(duration, 1e-9)) * min(1.0, held / 3.0)
    reps = [r for r in analysis.reps if r.person == person]
    if len(reps) < 2:
        return 0.0
    durations = np.array([r.duration_s for r in reps])
    regularity = max(0.0, 1.0 - float(durations.std() / durations.mean()))
    attempts = len(reps) + sum(1 for r in analysis.partials if r.person == person)
    return (fits_view * _in_place(reps, series, kinematics, person) * regularity ** 0.5
            * min(1.0, len(reps) / 3) * len(reps) / attempts)


def _in_place(reps: list[Rep], series: PoseSeries, kinematics: Kinematics, person: int) -> float:
    """The share of reps done on the spot: the hips travel less than a torso length between a rep's start and end.
    Arms bending while someone walks about are not curls."""
    hips = (kinematics.pixels[:, person, INDEX["left_hip"]] + kinematics.pixels[:, person, INDEX["right_hip"]]) / 2
    torso = np.nanmedian(torso_length(kinematics.pixels[:, person]))
    kept = []
    for rep in reps:
        during = (series.times_s >= rep.start_s) & (series.times_s <= rep.end_s)
        path = hips[during]
        path = path[np.isfinite(path).all(axis=-1)]
        kept.append(len(path) > 0 and float(np.ptp(path[:, 0])) <= torso)
    return float(np.mean(kept))
