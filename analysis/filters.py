"""Cleaning and differentiating time series of landmarks and angles.

Every series has time on its first axis, (frames, ...), with any trailing shape: (frames, people,
33, 3) landmarks, (frames, people, n_angles) angles. Timestamps are real seconds, (frames,), because
phone and webcam video often has a variable frame rate. NaN marks a missing sample throughout and
stays missing: nothing here invents data except `interpolate_gaps`, within the limit it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import make_interp_spline
from scipy.signal import butter, sosfiltfilt

from analysis.angles import DEFAULT_VISIBILITY_THRESHOLD
from analysis.landmarks import INDEX

# Stature over the image distance from the nose to the mid-heel of someone standing upright. Eye
# level is about 0.936 of stature (Drillis & Contini's proportions), the nose tip about 0.02 below
# that, and BlazePose's heel point about 0.01 above the floor, so nose to heel is about 0.90.
HEIGHT_PER_NOSE_TO_HEEL = 1 / 0.90


def _columns(series: np.ndarray) -> np.ndarray:
    """The series as float64 (frames, K), one column per element, so one code path fits every shape."""
    values = np.asarray(series, np.float64)
    return values.reshape(len(values), math.prod(values.shape[1:]))


def _previous_valid(valid: np.ndarray) -> np.ndarray:
    """For each sample of (frames, K), the frame of the latest valid sample at or before it; -1 if none."""
    frames = np.arange(len(valid))[:, None]
    return np.maximum.accumulate(np.where(valid, frames, -1), axis=0)


def _next_valid(valid: np.ndarray) -> np.ndarray:
    """For each sample of (frames, K), the frame of the earliest valid sample at or after it; frames if none."""
    frames = np.arange(len(valid))[:, None]
    return np.minimum.accumulate(np.where(valid, frames, len(valid))[::-1], axis=0)[::-1]


def interpolate_gaps(series: np.ndarray, times_s: np.ndarray, max_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Fill short NaN runs by linear interpolation in time; returns (filled, interpolated_mask).

    A run is filled when the valid samples either side of it are at most `max_gap_s` apart, so a
    brief dropout of the detector is bridged but a person out of view for a while is not. Leading
    and trailing NaN have only one side and stay NaN. Both outputs have the shape of `series`.
    """
    values = np.asarray(series, np.float64)
    flat = _columns(values)
    t = np.asarray(times_s, np.float64)
    valid = ~np.isnan(flat)
    before, after = _previous_valid(valid), _next_valid(valid)
    last = len(flat) - 1
    before_c, after_c = np.clip(before, 0, last), np.clip(after, 0, last)
    t_before, t_after = t[before_c], t[after_c]
    # The small tolerance forgives rounding in timestamps such as k / 30.
    fill = ~valid & (before >= 0) & (after <= last) & (t_after - t_before <= max_gap_s + 1e-9)
    x_before = np.take_along_axis(flat, before_c, axis=0)
    x_after = np.take_along_axis(flat, after_c, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # valid samples have t_after == t_before
        weight = (t[:, None] - t_before) / (t_after - t_before)
    filled = np.where(fill, x_before + weight * (x_after - x_before), flat)
    return filled.reshape(values.shape), fill.reshape(values.shape)


def _runs(valid: np.ndarray) -> np.ndarray:
    """(runs, 2) start and stop frames of the True runs in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], valid.astype(np.int8), [0]))))
    return edges.reshape(-1, 2)


def butterworth_lowpass(series: np.ndarray, times_s: np.ndarray, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass along time, for offline analysis (it looks ahead).

    Filtering forwards and backwards (sosfiltfilt) cancels the lag a causal filter would add, so
    peaks stay on the frames where they happened. The sample rate is the median frame rate; each run
    is resampled onto a uniform grid at that rate, filtered and resampled back, so that variable
    frame rates filter correctly. Each contiguous non-NaN run of each element is filtered on its own;
    runs too short for the filter's padding are returned unfiltered. A cutoff at or above the
    Nyquist frequency removes nothing, so the input is returned unchanged (as float64).
    """
    if not cutoff_hz > 0:
        raise ValueError(f"cutoff_hz must be greater than 0, got {cutoff_hz}")
    values = np.asarray(series, np.float64)
    t = np.asarray(times_s, np.float64)
    if len(t) < 2:
        return values.copy()
    fs = 1.0 / np.median(np.diff(t))
    if cutoff_hz >= fs / 2 or np.isclose(cutoff_hz, fs / 2):  # isclose: fs carries rounding
        return values.copy()
    sos = butter(order, cutoff_hz, fs=fs, output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    flat = _columns(values)
    out = flat.copy()
    # Elements that are missing on the same frames (x, y, z of a landmark; a whole person) share runs
    # and are filtered together.
    patterns, group = np.unique(~np.isnan(flat).T, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        columns = np.flatnonzero(group.ravel() == g)
        for start, stop in _runs(pattern):
            run_t = t[start:stop]
            n = int(round((run_t[-1] - run_t[0]) * fs)) + 1
            if n <= padlen:
                continue
            grid = np.linspace(run_t[0], run_t[-1], n)
            uniform = make_interp_spline(run_t, flat[start:stop, columns], k=1, axis=0)(grid)
            smoothed = sosfiltfilt(sos, uniform, axis=0, padlen=padlen)
            out[start:stop, columns] = make_interp_spline(grid, smoothed, k=1, axis=0)(run_t)
    return out.reshape(values.shape)


def _smoothing_factor(cutoff_hz: np.ndarray | float, te_s: float) -> np.ndarray | float:
    """Exponential smoothing factor of a first-order low-pass at cutoff_hz over te_s seconds."""
    tau = 1.0 / (2 * np.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / te_s)


@dataclass
class OneEuroFilter:
    """Causal One-Euro filter (Casiez, Roussel & Vogel, CHI 2012) for live streams.

    A low-pass whose cutoff rises with speed: min_cutoff (Hz) removes jitter when still, beta
    (per unit of speed, so it depends on whether values are pixels, metres or degrees) lets fast
    movement through with little lag, d_cutoff (Hz) smooths the speed estimate. Call it with one
    frame's array, of any shape, and its time; it keeps state per element. A NaN element comes out
    NaN and forgets its history, so the next valid sample starts that element afresh. A change of
    shape (people entering or leaving) starts every element afresh. Timestamps must increase.
    """

    min_cutoff: float = 1.0
    beta: float = 0.01
    d_cutoff: float = 1.0
    _x: np.ndarray = field(init=False, repr=False, default_factory=lambda: np.empty(0))
    _dx: np.ndarray = field(init=False, repr=False, default_factory=lambda: np.empty(0))
    _last_t: float = field(init=False, repr=False, default=-np.inf)

    def __call__(self, value: np.ndarray, t_s: float) -> np.ndarray:
        x = np.asarray(value, np.float64)
        if t_s <= self._last_t:
            raise ValueError(f"timestamps must increase: {t_s} s after {self._last_t} s")
        if x.shape != self._x.shape:
            self._x, self._dx = np.full(x.shape, np.nan), np.zeros(x.shape)
        # Every element with history was valid on the previous call, so one interval serves all.
        te = t_s - self._last_t
        self._last_t = t_s
        dx = self._dx + _smoothing_factor(self.d_cutoff, te) * ((x - self._x) / te - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx)
        smoothed = self._x + _smoothing_factor(cutoff, te) * (x - self._x)
        fresh = np.isnan(self._x)
        self._x = np.where(fresh, x, smoothed)
        self._dx = np.where(fresh, 0.0, dx)
        return self._x.copy()


def one_euro(series: np.ndarray, times_s: np.ndarray, min_cutoff: float = 1.0, beta: float = 0.01,
             d_cutoff: float = 1.0) -> np.ndarray:
    """A whole series through a fresh OneEuroFilter, to preview offline what live smoothing does."""
    values = np.asarray(series, np.float64)
    one_euro_filter = OneEuroFilter(min_cutoff, beta, d_cutoff)
    out = np.empty_like(values)
    for i, t in enumerate(np.asarray(times_s, np.float64)):
        out[i] = one_euro_filter(values[i], float(t))
    return out


def unwrap_degrees(series: np.ndarray) -> np.ndarray:
    """Angles in degrees made continuous along time: no step between samples exceeds 270°.

    Angles that wrap (segment angles at ±180°) otherwise jump by 360°, which spikes charts and
    velocities. A run after a NaN gap continues from the last valid angle before it, so the gap does
    not reintroduce a jump either; the first valid sample keeps its value. NaN stays NaN.
    """
    values = np.asarray(series, np.float64)
    flat = _columns(values)
    valid = ~np.isnan(flat)
    # Carry the last valid angle through gaps (and the first one back over leading NaN), so that
    # np.unwrap sees no NaN in a column that has any valid sample.
    source = _previous_valid(valid)
    source = np.minimum(np.where(source < 0, _next_valid(valid), source), len(flat) - 1)
    carried = np.take_along_axis(flat, source, axis=0)
    # Only steps over 270° are wraps: a step near 180° is MediaPipe swapping left and right for a frame,
    # and unwrapping it would leave the series a whole turn off once the swap ends.
    unwrapped = np.where(valid, np.unwrap(carried, discont=270.0, period=360.0, axis=0), np.nan)
    return unwrapped.reshape(values.shape)


def _time_derivative(series: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """d/dt along the first axis with real timestamps (second-order central differences)."""
    values = np.asarray(series, np.float64)
    if len(values) < 2:
        return np.full(values.shape, np.nan)
    return np.gradient(values, np.asarray(times_s, np.float64), axis=0)


def speed(positions: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Speed (units of positions per second) of points whose coordinates are on the last axis.

    (frames, ..., dims) → (frames, ...). NaN where the sample or a neighbour in time is NaN.
    """
    return np.linalg.norm(_time_derivative(positions, times_s), axis=-1)


def angular_velocity(angles_deg: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Rate of change of angles in deg/s, after unwrapping so that ±180° crossings are not spikes."""
    return _time_derivative(unwrap_degrees(angles_deg), times_s)


def metres_per_pixel(pixels: np.ndarray, visibility: np.ndarray, height_m: float,
                     threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """Image scale of each person from their known height, for speeds and distances in metres.

    pixels: (frames, people, 33, 2); visibility: (frames, people, 33). Uses the median over frames of
    the nose to mid-heel distance times HEIGHT_PER_NOSE_TO_HEEL, so it assumes the person stands
    upright in most frames and roughly parallel to the image plane. Frames where the nose or either
    heel has visibility below `threshold` are left out. Returns (people,); NaN for a person with no
    usable frame.
    """
    pixels = np.asarray(pixels, np.float64)
    used = [INDEX["nose"], INDEX["left_heel"], INDEX["right_heel"]]
    mid_heel = pixels[..., used[1:], :].mean(axis=-2)
    distance = np.linalg.norm(pixels[..., INDEX["nose"], :] - mid_heel, axis=-1)
    usable = (np.asarray(visibility)[..., used] >= threshold).all(axis=-1) & (distance > 0)
    typical = np.ma.median(np.ma.masked_array(distance, ~usable), axis=0)
    return height_m / (HEIGHT_PER_NOSE_TO_HEEL * np.ma.filled(typical, np.nan))
