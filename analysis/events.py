"""Events in a pose series: jumps (take-off, landing, flight time, height) and falls.

Both work in body units, so that no threshold depends on the image size or the distance to the camera: one
unit is the person's torso length in pixels (mid-shoulder to mid-hip), which a side-view fall does not
shorten. Image y points down throughout, so "up" is -y.

Jumps (offline, `find_jumps`): a person is in the air while the lowest of their foot points (ankles, heels,
toes of both feet) is above the floor by more than `JumpSettings.takeoff_lift`; take-off and landing are the
moments the feet cross the lower `contact_lift`, interpolated between frames. The floor is where the feet
rest, estimated per person over a few seconds around each frame, so that it follows a walk towards the
camera (the floor line moving down the image); a "flight" longer than `max_flight_s` is a new floor level
(a step onto a box), not a jump. One foot on the floor (walking, standing on one leg) is never a flight.
Known limit: the floor is the lowest level the feet rest on for a good part of floor_window_s, so a jump
made from a support stood on for only a second or two (a drop jump off a box, stairs) is not found.

Falls (`find_falls` offline, `FallMonitor` live; they make the same decision on the same frames): the hip
centre drops fast (at least `FallSettings.drop_torso` torso lengths within `drop_window_s`), the trunk is
then near horizontal (over 60° from vertical), and stays so with little trunk motion for `still_s`. Sitting
down drops the hips but keeps the trunk upright; bending to pick something up tilts the trunk but hardly
drops the hips, and the person stands up again within the still window; lying down slowly drops the hips
too slowly. None of them is a fall.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from analysis.filters import interpolate_gaps, metres_per_pixel
from analysis.landmarks import INDEX
from analysis.series import Kinematics, PoseSeries

G = 9.81  # m/s²

_LEFT_FOOT = [INDEX["left_ankle"], INDEX["left_heel"], INDEX["left_foot_index"]]
_RIGHT_FOOT = [INDEX["right_ankle"], INDEX["right_heel"], INDEX["right_foot_index"]]
_HIPS = [INDEX["left_hip"], INDEX["right_hip"]]
_SHOULDERS = [INDEX["left_shoulder"], INDEX["right_shoulder"]]


@dataclass(frozen=True)
class Event:
    """Something that happened to one person, with its times in seconds of the series.

    kind: "jump" or "fall". person: the person's slot in the series, 0-based.
    start_s, end_s: jump: take-off and landing; fall: when the fall began, and when the person came to rest.
    flight_s, height_flight_m (g·t²/8), height_hip_m (the hips' rise, only with a height calibration): jumps.
    note: a short sentence for a table or an alert.
    """

    kind: str
    person: int
    start_s: float
    end_s: float
    flight_s: float | None = None
    height_flight_m: float | None = None
    height_hip_m: float | None = None
    note: str = ""


@dataclass(frozen=True)
class JumpSettings:
    """How a flight is told from standing, in torso lengths (about 0.5 m on an adult).

    takeoff_lift: the feet must be this far above the floor (0.15: about 8 cm, twice the feet's jitter in
        MediaPipe's landmarks on real footage, so the smallest jump found has about 0.25 s of flight).
    contact_lift: take-off and landing are timed where the feet cross this height (about 4 cm: just above
        the jitter of feet on the floor); the flight time is then corrected for the part of the parabola
        below it, so that it is the time from floor to floor.
    min_air_s: shorter spells above takeoff_lift are a landmark glitch (one or two frames), not a jump.
    max_flight_s: longer flights are the feet on a new floor level (a step up onto a box, until the floor
        estimate follows), not a jump: 1 s of flight would be a 1.2 m jump, beyond any athlete's.
    floor_window_s: the floor is estimated over this span centred on each frame; it must be longer than a
        flight and short enough to follow a change of floor level.
    visibility: foot points MediaPipe is less sure of than this are not used (its feet are unreliable at
        lower confidence: when tracking starts, they can float well above the floor).
    hip_share: in the air the hips rise too, by at least this share of the feet's peak lift, from their lowest
        in the push_off_s before take-off (the dip that drives the jump): feet "lifting" under still hips are
        a landmark glitch (a neighbour's limbs taken for one's own, seen on Pose2Sim's multi-person demo).
    """

    takeoff_lift: float = 0.15
    contact_lift: float = 0.08
    min_air_s: float = 0.08
    max_flight_s: float = 1.0
    floor_window_s: float = 3.0
    visibility: float = 0.5
    hip_share: float = 0.3
    push_off_s: float = 0.5


@dataclass(frozen=True)
class FallSettings:
    """What a fall is, in torso lengths and seconds.

    drop_torso, drop_window_s: the hips drop at least 0.7 torso lengths (about 0.35 m, 0.4 of the leg
        length) within 1 s. A fall from standing drops them about 1.6 in 0.5-1 s, a fall from a chair about
        0.8; lying down slowly drops them at most about 0.5 in any second.
    lying_cos: the trunk is near horizontal when the cosine of its angle from vertical is at most 0.5 (60°).
    still_s, still_range_torso: "little motion after": for still_s after coming to rest, the hip centre and
        the shoulder centre each stay within a box of still_range_torso torso lengths, and the trunk stays
        near horizontal. 1.5 s: long enough that someone who bends down and stands up again is not lying
        still, short enough for an alert.
    coverage: at least this share of the frames in the still window must show the person (a short dropout
        is allowed, a person gone out of view is not "still").
    scale_window_s, scale_quantile: the unit at each frame is this quantile of the trunk's image length over
        the window before it: its full length while the person was up, even once it is foreshortened lying
        towards the camera (a fall and its still window take 2.5 s at most, leaving upright frames in 4 s).
    onset_fraction: the fall's start is extrapolated from when the trunk had gone this share and 4 times this
        share of the way from standing to lying (see _fall_event).
    rest_fraction: the person came to rest when the trunk was within this share of the way of its place
        lying (a fall's impact is abrupt, so this is close to it).
    """

    drop_torso: float = 0.7
    drop_window_s: float = 1.0
    lying_cos: float = 0.5
    still_s: float = 1.5
    still_range_torso: float = 0.35
    coverage: float = 0.6
    scale_window_s: float = 4.0
    scale_quantile: float = 0.9
    onset_fraction: float = 0.1
    rest_fraction: float = 0.03

    def __post_init__(self) -> None:
        if self.scale_window_s < self.still_s + self.drop_window_s:
            raise ValueError("scale_window_s must cover the still window and the drop window before it: "
                             f"{self.scale_window_s} s < {self.still_s} s + {self.drop_window_s} s")


# --- window helpers: the same code serves a whole clip (many rows) and the live monitor (one row) ---

def _rows(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """(rows, K, ...) the values[start:stop] of (n, ...) values for each row, padded with NaN; K the longest."""
    width = int((stops - starts).max()) if len(starts) else 0
    index = starts[:, None] + np.arange(max(width, 1))[None]
    inside = index < stops[:, None]
    gathered = values[np.minimum(index, len(values) - 1)]
    return np.where(inside.reshape(inside.shape + (1,) * (values.ndim - 1)), gathered, np.nan)


def _quantile_rows(rows: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of each row's finite values (linear interpolation, as numpy's default); NaN if none.

    Why not np.nanquantile: it loops in Python over rows that hold NaN, which every padded window does.
    """
    ordered = np.sort(rows, axis=1)  # NaN sort last
    count = np.isfinite(rows).sum(axis=1)
    position = q * np.maximum(count - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(count - 1, 0))
    at_low = np.take_along_axis(ordered, low[:, None], axis=1)[:, 0]
    at_high = np.take_along_axis(ordered, high[:, None], axis=1)[:, 0]
    out = at_low + (position - low) * (at_high - at_low)
    return np.where(count > 0, out, np.nan)


def _min_rows(rows: np.ndarray) -> np.ndarray:
    """Minimum along axis 1 of the finite values; NaN where there are none."""
    return np.fmin.reduce(rows, axis=1)


def _max_rows(rows: np.ndarray) -> np.ndarray:
    return np.fmax.reduce(rows, axis=1)


def _crossing(t0: float, v0: float, t1: float, v1: float, level: float) -> float:
    """When a value going from v0 (at t0) to v1 (at t1) crossed level, linearly."""
    if v1 == v0:
        return t1
    return t0 + (level - v0) / (v1 - v0) * (t1 - t0)


def _runs(mask: np.ndarray) -> np.ndarray:
    """(runs, 2) start and stop indices of the True runs of a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return edges.reshape(-1, 2)


def _centre(points: np.ndarray, which: list[int]) -> np.ndarray:
    """(..., 2) mean of some landmarks of (..., 33, 2); NaN unless all of them are known."""
    return points[..., which, :].mean(axis=-2)


def torso_lengths(pixels: np.ndarray) -> np.ndarray:
    """(frames, ...) image length of the trunk (mid-shoulder to mid-hip) of (frames, ..., 33, 2) pixels."""
    return np.linalg.norm(_centre(pixels, _SHOULDERS) - _centre(pixels, _HIPS), axis=-1)


def _metres_per_pixel(series: PoseSeries, kinematics: Kinematics) -> np.ndarray | None:
    if not kinematics.height_m:
        return None
    return metres_per_pixel(series.pixels, series.visibility, kinematics.height_m, kinematics.smoothing.threshold)


# --- jumps ---

def _jump_pixels(series: PoseSeries, kinematics: Kinematics, settings: JumpSettings) -> np.ndarray:
    """(frames, people, 33, 2) positions for timing jumps: the raw landmarks, confident ones only, short gaps filled,
    then a 3-frame running median.

    Why not kinematics.pixels: its low-pass filter rounds the sharp corners of take-off and landing and
    spreads a glitch of a frame or two over its neighbours; a median removes glitches and keeps corners.
    """
    known = series.visibility >= max(settings.visibility, kinematics.smoothing.threshold)
    pixels = np.where(known[..., None], series.pixels.astype(np.float64), np.nan)
    pixels, _ = interpolate_gaps(pixels, series.times_s, kinematics.smoothing.max_gap_s)
    if len(pixels) >= 3:
        stacked = np.stack([pixels[:-2], pixels[1:-1], pixels[2:]])
        middle = np.median(stacked, axis=0)  # NaN if any of the three is
        pixels = np.concatenate([pixels[:1], middle, pixels[-1:]])
    return pixels


def _lowest_foot(pixels: np.ndarray) -> np.ndarray:
    """(frames,) the image y of the lowest foot point of one person, NaN unless both feet are seen.

    The lowest point is the one touching the floor, whichever it is (heel standing, toes at take-off).
    """
    y = pixels[:, :, 1]
    with np.errstate(invalid="ignore"):
        left = np.fmax.reduce(y[:, _LEFT_FOOT], axis=1)
        right = np.fmax.reduce(y[:, _RIGHT_FOOT], axis=1)
    return np.maximum(left, right)  # NaN if a foot is unseen


def _floor(times: np.ndarray, lowest: np.ndarray, unit: float, settings: JumpSettings) -> np.ndarray:
    """(frames,) the floor's image y under a person: where their feet rest, over a window around each frame.

    First guess: a high quantile of the lowest foot point (feet are on the floor most of the time even in
    repeated jumps); then the median of the frames within takeoff_lift of that guess, which removes the
    guess's bias towards the lowest jitter.
    """
    half = settings.floor_window_s / 2
    starts = np.searchsorted(times, times - half, "left")
    stops = np.searchsorted(times, times + half, "right")
    rows = _rows(lowest, starts, stops)
    guess = _quantile_rows(rows, 0.9)
    on_floor = rows >= guess[:, None] - settings.takeoff_lift * unit
    return _quantile_rows(np.where(on_floor, rows, np.nan), 0.5)


def _jumps_of_person(person: int, times: np.ndarray, feet: np.ndarray, hips_y: np.ndarray,
                     scale_m: float | None, settings: JumpSettings) -> list[Event]:
    lengths = torso_lengths(feet)
    unit = float(np.nanmedian(lengths)) if np.isfinite(lengths).any() else math.nan
    lowest = _lowest_foot(feet)
    if not unit > 0 or not np.isfinite(lowest).any():
        return []
    lift = (_floor(times, lowest, unit, settings) - lowest) / unit  # torso lengths above the floor
    contact, takeoff_lift = settings.contact_lift, settings.takeoff_lift
    # Each spell above takeoff_lift, widened to where the feet cross contact_lift; spells that widen to the
    # same flight (a dip in the air that stays above contact_lift) are one flight.
    flights: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for start, stop in _runs(lift > takeoff_lift):
        before, after = start - 1, stop
        while before >= 0 and lift[before] > contact:
            before -= 1
        while after < len(lift) and lift[after] > contact:
            after += 1
        flights.setdefault((before, after), []).append((start, stop))
    events: list[Event] = []
    for (before, after), spells in flights.items():
        # A take-off or landing not seen (the clip's ends, the person out of view) is no measured jump.
        if before < 0 or after >= len(lift) or not np.isfinite(lift[before]) or not np.isfinite(lift[after]):
            continue
        (start, _), (_, stop) = spells[0], spells[-1]
        up = _crossing(times[start - 1], lift[start - 1], times[start], lift[start], takeoff_lift)
        down = _crossing(times[stop - 1], lift[stop - 1], times[stop], lift[stop], takeoff_lift)
        if down - up < settings.min_air_s:
            continue
        takeoff = _crossing(times[before], lift[before], times[before + 1], lift[before + 1], contact)
        landing = _crossing(times[after - 1], lift[after - 1], times[after], lift[after], contact)
        peak = float(np.max(lift[before + 1:after]))
        # A ballistic flight spends a share sqrt(1 - c/H) of its time above height c, H its peak: add the
        # rest, half before the crossing at take-off and half after the one at landing.
        share = math.sqrt(1 - contact / peak)  # peak > takeoff_lift > contact
        margin = (landing - takeoff) * (1 / share - 1) / 2
        # Nor before the feet were last seen on the floor, or after they were next seen on it.
        floor_before = np.flatnonzero(lift[:before + 1] <= 0)
        floor_after = after + np.flatnonzero(lift[after:] <= 0)
        takeoff = max(takeoff - margin, times[floor_before[-1]] if len(floor_before) else -math.inf)
        landing = min(landing + margin, times[floor_after[0]] if len(floor_after) else math.inf)
        flight = landing - takeoff
        if flight > settings.max_flight_s:
            continue
        # The hips' lowest in the half second before take-off (the dip that drives the jump) against their highest
        # in the air.
        crouch = hips_y[np.searchsorted(times, times[before] - settings.push_off_s):before + 1]
        hips_air = hips_y[before + 1:after]
        if np.isfinite(crouch).any() and np.isfinite(hips_air).any() and \
                np.nanmax(crouch) - np.nanmin(hips_air) < settings.hip_share * peak * unit:
            continue
        height = G * flight**2 / 8
        hip_rise = None
        first = int(np.searchsorted(times, takeoff, "right"))  # the first frame in the air
        air = hips_y[first:after]
        if scale_m is not None and np.isfinite(scale_m) and len(air) >= 2 and np.isfinite(air).all():
            # The hips' level at take-off, extrapolated back from the first two frames in the air along a
            # parabola under gravity (g in pixels/s², y down): the body moves freely after take-off, while
            # before it the push from the floor changes its speed.
            gravity = G / scale_m
            gap, back = times[first + 1] - times[first], takeoff - times[first]
            speed = (air[1] - air[0]) / gap - gravity * gap / 2
            at_takeoff = air[0] + speed * back + gravity * back**2 / 2
            hip_rise = float((at_takeoff - air.min()) * scale_m)
        note = f"flight {flight:.2f} s, about {height * 100:.0f} cm"
        if hip_rise is not None:
            note += f"; hips rose {hip_rise * 100:.0f} cm"
        events.append(Event("jump", person, float(takeoff), float(landing), float(flight),
                            float(height), hip_rise, note))
    return events


def find_jumps(series: PoseSeries, kinematics: Kinematics, settings: JumpSettings = JumpSettings()) -> list[Event]:
    """Every complete jump of every person (take-off and landing both seen), in time order.

    end_s is take-off plus the flight time (the corrected landing). height_flight_m = g·t²/8 from the flight
    time; height_hip_m is the rise of the hip centre from take-off to its highest point in the air, in metres
    with kinematics.height_m (None without it): a second estimate that does not assume a ballistic flight,
    and does not grow when the knees are bent at landing.
    """
    feet = _jump_pixels(series, kinematics, settings)
    scale = _metres_per_pixel(series, kinematics)
    hips_y = _centre(feet, _HIPS)[..., 1]  # unfiltered too: a low-pass would lift the take-off level
    events: list[Event] = []
    for person in range(series.people):
        events += _jumps_of_person(person, series.times_s, feet[:, person], hips_y[:, person],
                                   None if scale is None else float(scale[person]), settings)
    return sorted(events, key=lambda e: (e.start_s, e.person))


# --- falls ---

def _trunk(pixels: np.ndarray) -> np.ndarray:
    """(frames, 4) hip centre x, y and shoulder centre x, y of one person's (frames, 33, 2) pixels."""
    return np.concatenate([_centre(pixels, _HIPS), _centre(pixels, _SHOULDERS)], axis=-1)


def _quantile_sorted(ordered: list[float], q: float) -> float:
    """_quantile_rows for one sorted list, in the same arithmetic, for the live monitor."""
    count = len(ordered)
    if count == 0:
        return math.nan
    position = q * (count - 1)
    low = math.floor(position)
    high = min(low + 1, count - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def _trunk_features(times: np.ndarray, trunk: np.ndarray, settings: FallSettings) -> tuple[np.ndarray, np.ndarray]:
    """(unit, upright), each (frames,): the torso unit in pixels at each frame (a quantile of the trunk's length
    over the scale window before it) and whether the trunk is upright (within 60° of vertical).

    Upright means the shoulders are above the hips by more than lying_cos units: in a side view that is the
    trunk's angle from vertical; a trunk lying towards or away from the camera is short in the image, and
    is not upright either, though its image points straight up.
    """
    across, rise = trunk[:, 2] - trunk[:, 0], trunk[:, 1] - trunk[:, 3]
    length = np.sqrt(across * across + rise * rise)
    starts = np.searchsorted(times, times - settings.scale_window_s, "left")
    unit = np.empty(len(times))
    for chunk in np.array_split(np.arange(len(times)), max(1, len(times) // 4096)):
        unit[chunk] = _quantile_rows(_rows(length, starts[chunk], chunk + 1), settings.scale_quantile)
    with np.errstate(invalid="ignore"):
        return unit, rise > settings.lying_cos * unit


def _next_seen(seen: np.ndarray) -> np.ndarray:
    """For each frame, the first frame at or after it in which the person is seen (len(seen) if none)."""
    index = np.where(seen, np.arange(len(seen)), len(seen))
    return np.minimum.accumulate(index[::-1])[::-1]


@dataclass(frozen=True)
class _Candidate:
    frame: int  # the frame at which the fall is confirmed
    rest: int  # the first frame of the still window
    drop_start: int  # the first frame of the drop window
    hips_top: float
    hips_rest: float
    unit: float


def _fall_candidates(times: np.ndarray, trunk: np.ndarray, unit: np.ndarray, upright: np.ndarray,
                     frames: np.ndarray, first_s: float, settings: FallSettings) -> list[_Candidate]:
    """Which of `frames` (indices into times) end a fall's still window: every test but the re-arming.

    times (n,); trunk (n, 4) as _trunk gives; unit, upright (n,) as _trunk_features gives. first_s: the time
    of the first frame ever seen (a live monitor's arrays start later). Vectorised over frames; the live
    monitor calls it with its history and its last frame, so both decide with the same arithmetic.
    """
    s = settings
    seen = np.isfinite(trunk).all(axis=1)
    last_upright = np.maximum.accumulate(np.where(upright, np.arange(len(times)), -1))
    rest = np.searchsorted(times, times[frames] - s.still_s, "left")
    ok = (first_s <= times[frames] - s.still_s) & (last_upright[frames] < rest)
    stop = frames + 1
    count = np.cumsum(np.concatenate(([0], seen)))
    ok &= count[stop] - count[rest] >= s.coverage * (stop - rest)
    frames, rest, stop = frames[ok], rest[ok], stop[ok]
    if len(frames) == 0:
        return []
    drop_start = np.searchsorted(times, times[rest] - s.drop_window_s, "left")
    hips_y = trunk[:, 1]
    top = _min_rows(_rows(hips_y, drop_start, rest + 1))
    resting = _quantile_rows(_rows(hips_y, rest, stop), 0.5)
    # The drop is measured up to the still window's first frame seen, so that the still window's own slow
    # settling (within still_range_torso) does not count as part of a fast drop.
    arrived = hips_y[np.minimum(_next_seen(seen)[rest], len(times) - 1)]
    size = unit[frames]
    window = _rows(trunk, rest, stop)  # (rows, K, 4)
    with np.errstate(invalid="ignore"):
        ok = arrived - top >= s.drop_torso * size
        ok &= (_max_rows(window) - _min_rows(window) <= s.still_range_torso * size[:, None]).all(axis=1)
    columns = (frames[ok], rest[ok], drop_start[ok], top[ok], resting[ok], size[ok])
    return [_Candidate(int(f), int(r), int(d), float(t), float(h), float(u))
            for f, r, d, t, h, u in zip(*columns, strict=True)]


def _fall_event(person: int, times: np.ndarray, trunk: np.ndarray, c: _Candidate, scale_m: float | None,
                settings: FallSettings) -> Event:
    """The fall's start and end times, interpolated between frames, and its sentence.

    Both come from how far the trunk has moved from where it was when the hips were highest: the hip centre's
    and the shoulder centre's distances from their places then, added. (The hips alone start to drop late in
    a topple: their height changes with the square of the angle, the shoulders' place with the angle.)
    """
    drop = c.hips_rest - c.hips_top
    seen = np.arange(c.drop_start, c.frame + 1)
    seen = seen[np.isfinite(trunk[seen]).all(axis=1)]
    before_rest = seen[seen <= c.rest]
    top = before_rest[np.argmin(trunk[before_rest, 1])]
    moved = (np.hypot(*(trunk[:, :2] - trunk[top, :2]).T) + np.hypot(*(trunk[:, 2:] - trunk[top, 2:]).T))
    lying = float(np.median(moved[seen[seen >= c.rest]]))
    after = seen[seen > top]

    def crossing(level: float) -> float:
        """When the trunk had first moved `level` pixels from its place at the top."""
        i = after[np.argmax(moved[after] >= level)]  # there is one: half the still window is at `lying` or more
        previous = seen[seen < i][-1]
        return _crossing(times[previous], moved[previous], times[i], moved[i], level)

    # A fall accelerates from rest, so the trunk's distance from its place grows about as the square of the
    # time since it began: it takes as long to go a share f of the way as from f to 4f. This finds the onset
    # from two distances well above the jitter, where a small threshold would either trip on jitter or lag.
    f = settings.onset_fraction
    reach_f, reach_4f = crossing(f * lying), crossing(4 * f * lying)
    start = min(max(2 * reach_f - reach_4f, float(times[top])), reach_f)
    end = crossing((1 - settings.rest_fraction) * lying)
    if scale_m is not None and np.isfinite(scale_m):
        size = f"{drop * scale_m:.1f} m"
    else:
        size = f"{drop / c.unit:.1f} torso lengths"
    note = f"fall: hips dropped {size} in {end - start:.1f} s, lying still after"
    return Event("fall", person, float(start), float(end), note=note)


def _falls_of_person(person: int, times: np.ndarray, trunk: np.ndarray, scale_m: float | None,
                     settings: FallSettings) -> list[Event]:
    unit, upright = _trunk_features(times, trunk, settings)
    last_upright = np.maximum.accumulate(np.where(upright, np.arange(len(times)), -1))
    # The cheap part of the test first, for all frames at once: not upright for the whole still window.
    lying = np.flatnonzero((last_upright < np.searchsorted(times, times - settings.still_s, "left"))
                           & (times[0] <= times - settings.still_s))
    events: list[Event] = []
    confirmed = -1
    for chunk in np.array_split(lying, max(1, len(lying) // 4096)):
        for c in _fall_candidates(times, trunk, unit, upright, chunk, float(times[0]), settings):
            if confirmed >= 0 and last_upright[c.frame] <= confirmed:
                continue  # one fall is reported once; the person must be up again before the next
            confirmed = c.frame
            events.append(_fall_event(person, times, trunk, c, scale_m, settings))
    return events


def find_falls(series: PoseSeries, kinematics: Kinematics, settings: FallSettings = FallSettings()) -> list[Event]:
    """Every fall of every person in the series, in time order, from the cleaned positions (kinematics.pixels).

    A fall is known once the person has lain still for settings.still_s after it, as live, so a fall in the
    clip's last seconds is not reported. The note gives the drop in metres with kinematics.height_m.
    """
    trunk = _trunk(kinematics.pixels)  # (frames, people, 4)
    scale = _metres_per_pixel(series, kinematics)
    events: list[Event] = []
    for person in range(series.people):
        events += _falls_of_person(person, series.times_s, trunk[:, person],
                                   None if scale is None else float(scale[person]), settings)
    return sorted(events, key=lambda e: (e.start_s, e.person))


class FallMonitor:
    """Falls of one person, frame by frame, for the live webcam: the decision `find_falls` makes, on the frame
    where the still window after the fall is complete (1.5 s after the person came to rest).

    Memory: the last settings.scale_window_s seconds of trunk positions (4 s: 120 frames at 30 frames/s;
    at most `max_frames`, a guard for absurd frame rates). Cost, measured on this project's machine: about
    3 µs a frame while the person is up, 10-15 µs while they lie (the drop test alone, in plain Python), and
    the full test (about 0.3 ms) only on the few frames after a fall's drop, when it decides.
    """

    def __init__(self, settings: FallSettings = FallSettings(), metres_per_pixel: float | None = None,
                 person: int = 0, max_frames: int = 1024) -> None:
        self.settings, self.metres_per_pixel, self.person = settings, metres_per_pixel, person
        # (time, hip x, hip y, shoulder x, shoulder y, unit, upright, torso length) per frame, oldest first
        self._history: deque[tuple[float, float, float, float, float, float, bool, float]] = deque()
        self._max_frames = max_frames
        self._lengths: list[float] = []  # the history's known torso lengths, sorted, for the unit's quantile
        self._first_s = math.nan
        self._last_upright_s = -math.inf
        self._armed = True  # False after a fall, until the person is upright again

    @property
    def frames_kept(self) -> int:
        """How many frames the monitor holds now (its memory is bounded by scale_window_s and max_frames)."""
        return len(self._history)

    def _forget_oldest(self) -> None:
        length = self._history.popleft()[7]
        if not math.isnan(length):
            del self._lengths[bisect.bisect_left(self._lengths, length)]

    def _dropped_enough(self, time_s: float, unit: float) -> bool:
        """The drop test of _fall_candidates alone, in plain Python: cheap enough for every frame of someone
        lying in bed, who fails it, so that only a real drop pays for the full test (which decides)."""
        s, history = self.settings, self._history
        times = [entry[0] for entry in history]
        rest = bisect.bisect_left(times, time_s - s.still_s)
        drop_start = bisect.bisect_left(times, times[rest] - s.drop_window_s)
        before = [entry[2] for entry in itertools.islice(history, drop_start, rest + 1) if not math.isnan(entry[2])]
        arrived = next((entry[2] for entry in itertools.islice(history, rest, None)
                        if not any(math.isnan(v) for v in entry[1:5])), math.nan)
        return bool(before) and arrived - min(before) >= s.drop_torso * unit

    def update(self, time_s: float, pixels: np.ndarray) -> Event | None:
        """Feed one frame: (33, 2) image pixels, NaN where hidden (all NaN: nobody seen). Returns the fall once,
        on the frame that confirms it; otherwise None. Times must increase."""
        s = self.settings
        time_s = float(time_s)
        if self._history and not time_s > self._history[-1][0]:
            raise ValueError(f"times must increase: {time_s} s after {self._history[-1][0]} s")
        p = pixels
        hx, hy = (float(p[23, 0]) + float(p[24, 0])) / 2, (float(p[23, 1]) + float(p[24, 1])) / 2
        sx, sy = (float(p[11, 0]) + float(p[12, 0])) / 2, (float(p[11, 1]) + float(p[12, 1])) / 2
        across, rise = sx - hx, hy - sy
        length = math.sqrt(across * across + rise * rise)
        horizon = time_s - s.scale_window_s
        while self._history and (self._history[0][0] < horizon or len(self._history) >= self._max_frames):
            self._forget_oldest()
        if not math.isnan(length):
            bisect.insort(self._lengths, length)
        unit = _quantile_sorted(self._lengths, s.scale_quantile)
        upright = rise > s.lying_cos * unit  # False with NaN
        self._history.append((time_s, hx, hy, sx, sy, unit, upright, length))
        if math.isnan(self._first_s):
            self._first_s = time_s
        if upright:
            self._last_upright_s, self._armed = time_s, True
            return None
        if not (self._armed and self._last_upright_s < time_s - s.still_s and self._first_s <= time_s - s.still_s):
            return None
        if not self._dropped_enough(time_s, unit):
            return None
        history = np.array(self._history, np.float64)
        times, trunk = history[:, 0], history[:, 1:5]
        found = _fall_candidates(times, trunk, history[:, 5], history[:, 6] > 0, np.array([len(times) - 1]),
                                 self._first_s, s)
        if not found:
            return None
        self._armed = False
        return _fall_event(self.person, times, trunk, found[0], self.metres_per_pixel, s)
