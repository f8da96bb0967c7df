"""An athlete's performance against a reference's: where, in degrees and at which moment, the movements differ.

Two steps. First a time offset: one signal of each (the hips' vertical speed by default, or an angle), resampled to
SYNC_RATE_HZ on its own clock and cross-correlated, as Pose2Sim synchronises its cameras, with the peak refined
between samples (a parabola through it and its neighbours), so the offset is known to a fraction of a frame
whatever the two frame rates. Then, from where both have begun (once shifted) to each one's own end, dynamic time
warping (dtaidistance) of the chosen joint angles lines the phases up when one moves faster than the other; the
per-joint differences are taken along that warping path.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from dtaidistance import dtw_ndim
from scipy import signal as scipy_signal

from analysis.angles import ANGLE_NAMES
from analysis.landmarks import INDEX
from analysis.result import ClipResult
from analysis.series import Kinematics, Smoothing, kinematics

HIP_SPEED = "vertical hip speed"
SIGNALS: tuple[str, ...] = (HIP_SPEED, *ANGLE_NAMES)
DEFAULT_JOINTS: tuple[str, ...] = ("left shoulder", "right shoulder", "left elbow", "right elbow",
                                   "left hip", "right hip", "left knee", "right knee")
SYNC_RATE_HZ = 240.0  # finer than any video's frames: the peak is refined below this too
MIN_OVERLAP = 0.5  # an offset must leave at least this share of the shorter performance overlapping the other
DTW_RATE_HZ = 30.0  # the curves are warped at this rate at most ...
DTW_MAX_STEPS = 3000  # ... and in at most this many samples each, so the cost matrix stays under 80 MB
FILES = ("comparison.json", "aligned.csv", "comparison.png")
_HIPS = [INDEX["left_hip"], INDEX["right_hip"]]
_SHOULDERS = [INDEX["left_shoulder"], INDEX["right_shoulder"]]


class ComparisonError(ValueError):
    """Two performances that cannot be compared; the message is one sentence for the user."""


@dataclass(frozen=True)
class Performance:
    """One person of one analysed clip, as compared: frame times from the video's start, smoothed 2D angles
    (frames, len(ANGLE_NAMES)) in degrees, the hips' vertical speed (frames,) in px/s and the cleaned landmark
    positions (frames, 33, 2) in pixels; NaN where unknown."""

    name: str
    person: int
    times_s: np.ndarray
    angles: np.ndarray
    hip_speed: np.ndarray
    pixels: np.ndarray

    @classmethod
    def of(cls, result: ClipResult, person: int = 0, smoothing: Smoothing = Smoothing(),
           motion: Kinematics | None = None) -> Performance:
        """motion: the result's kinematics, if already computed (a page's cached one); else made with smoothing."""
        if not 0 <= person < result.series.people:
            raise ComparisonError(f"{result.source.name} has {result.series.people} person slot(s); there is no "
                                  f"person {person + 1}.")
        if result.series.frames < 2:
            raise ComparisonError(f"{result.source.name} has fewer than two frames: there is no movement to compare.")
        moving = motion or kinematics(result.series, smoothing)
        times = result.series.times_s
        hip_y = moving.pixels[:, person, _HIPS, 1].mean(axis=1)
        return cls(result.source.name, person, times, moving.angles_2d[:, person], np.gradient(hip_y, times),
                   moving.pixels[:, person])

    def signal(self, name: str) -> np.ndarray:
        """(frames,) the named signal: HIP_SPEED or one of ANGLE_NAMES."""
        if name == HIP_SPEED:
            return self.hip_speed
        if name not in ANGLE_NAMES:
            raise ComparisonError(f"There is no signal called “{name}”. Choose {HIP_SPEED} or an angle.")
        return self.angles[:, ANGLE_NAMES.index(name)]

    def pose_at(self, time_s: float) -> np.ndarray:
        """(33, 2) the pose of the frame nearest time_s, normalised: centred on the hips, one torso (hips to
        shoulders) long, y up, so that two people of any size, anywhere in their pictures, can be drawn over each
        other. NaN where unknown."""
        pose = self.pixels[int(np.argmin(np.abs(self.times_s - time_s)))]
        hips, shoulders = pose[_HIPS].mean(axis=0), pose[_SHOULDERS].mean(axis=0)
        torso = float(np.linalg.norm(shoulders - hips))
        if not torso > 0:
            return np.full_like(pose, np.nan)
        return (pose - hips) / torso * [1, -1]

    def curves_at(self, times_s: np.ndarray, joints: tuple[str, ...]) -> np.ndarray:
        """(len(times_s), len(joints)) the joints' angles at these times of this clip, linearly interpolated."""
        return np.stack([_interpolate(self.times_s, self.signal(joint), times_s, f"The {joint} angle", self.name)
                         for joint in joints], axis=1)


@dataclass(frozen=True)
class Sync:
    """offset_s: the time in the reference at which the athlete's video starts (athlete time t is reference time
    t + offset_s). correlation: the signals' cross-correlation there, over the shorter one (1: identical; None when
    the offset was given by hand)."""

    offset_s: float
    signal: str
    correlation: float | None


def synchronise(reference: Performance, athlete: Performance, signal: str = HIP_SPEED) -> Sync:
    """The offset at which the athlete's signal best matches the reference's, each overlapping the other by at
    least MIN_OVERLAP of the shorter."""
    ref = _standardised(reference, signal)
    ath = _standardised(athlete, signal)
    full = scipy_signal.correlate(ref, ath, mode="full", method="fft") / min(len(ref), len(ath))
    lags = scipy_signal.correlation_lags(len(ref), len(ath), mode="full")  # ref[n + lag] meets ath[n]
    overlap = np.minimum(len(ath), len(ref) - lags) - np.maximum(0, -lags)
    allowed = overlap >= MIN_OVERLAP * min(len(ref), len(ath))
    scores = np.where(allowed, full, -np.inf)
    best = int(np.argmax(scores))
    shift = float(lags[best])
    if 0 < best < len(scores) - 1 and allowed[best - 1] and allowed[best + 1]:
        before, peak, after = full[best - 1: best + 2]
        curvature = before - 2 * peak + after
        if curvature < 0:
            shift += 0.5 * (before - after) / curvature
    return Sync(shift / SYNC_RATE_HZ + reference.times_s[0] - athlete.times_s[0], signal, float(full[best]))


@dataclass(frozen=True)
class JointDifference:
    """One joint over the aligned movement: athlete minus reference, in degrees. The largest difference is where
    it happens in each video and how far through the compared movement (0–100 %)."""

    joint: str
    mean_abs_deg: float
    mean_deg: float
    max_abs_deg: float
    max_at_reference_s: float
    max_at_athlete_s: float
    max_at_percent: float


@dataclass(frozen=True)
class Comparison:
    """The two performances, their synchronisation and the warping path: step k pairs reference time
    reference_times_s[k] with athlete time athlete_times_s[k], where the joints' angles are reference_angles[k]
    and athlete_angles[k] (steps, joints); and the per-joint differences along it."""

    reference: Performance
    athlete: Performance
    sync: Sync
    joints: tuple[str, ...]
    reference_times_s: np.ndarray
    athlete_times_s: np.ndarray
    reference_angles: np.ndarray
    athlete_angles: np.ndarray
    differences: tuple[JointDifference, ...]

    def to_json(self) -> dict[str, object]:
        """comparison.json: both performances, the offset, the warping path (times in each video) and the
        per-joint differences."""
        return {
            "reference": _described(self.reference),
            "athlete": _described(self.athlete),
            "offset_s": round(self.sync.offset_s, 4),
            "sync": {"signal": self.sync.signal, "automatic": self.sync.correlation is not None,
                     "correlation": None if self.sync.correlation is None else round(self.sync.correlation, 4)},
            "joints": list(self.joints),
            "warping_path": {"reference_s": np.round(self.reference_times_s, 4).tolist(),
                             "athlete_s": np.round(self.athlete_times_s, 4).tolist()},
            "differences": [{key: round(value, 3) if isinstance(value, float) else value
                             for key, value in vars(difference).items()} for difference in self.differences],
        }

    def step_at(self, reference_s: float) -> int:
        """The first step of the warping path at (or nearest) this time of the reference."""
        return int(np.argmin(np.abs(self.reference_times_s - reference_s)))

    def difference_table(self) -> pd.DataFrame:
        """The per-joint differences, one row per joint, with units in the column names."""
        return pd.DataFrame([{"joint": d.joint, "mean difference (°)": d.mean_abs_deg,
                              "athlete minus reference, mean (°)": d.mean_deg, "largest difference (°)": d.max_abs_deg,
                              "largest at, reference (s)": d.max_at_reference_s,
                              "largest at, athlete (s)": d.max_at_athlete_s,
                              "largest at, movement (%)": d.max_at_percent} for d in self.differences])

    def aligned_frame(self) -> pd.DataFrame:
        """aligned.csv: one row per step of the warping path, both times and each joint's two angles and their
        difference."""
        columns: dict[str, np.ndarray] = {"step": np.arange(len(self.reference_times_s)),
                                          "reference_time_s": self.reference_times_s,
                                          "athlete_time_s": self.athlete_times_s}
        for j, joint in enumerate(self.joints):
            columns[f"reference {joint}"] = self.reference_angles[:, j]
            columns[f"athlete {joint}"] = self.athlete_angles[:, j]
            columns[f"difference {joint}"] = self.athlete_angles[:, j] - self.reference_angles[:, j]
        return pd.DataFrame(columns)


def compare(reference: Performance, athlete: Performance, joints: tuple[str, ...] = DEFAULT_JOINTS,
            signal: str = HIP_SPEED, offset_s: float | None = None) -> Comparison:
    """Synchronise (unless offset_s is given), then warp the joints' curves over the part both cover."""
    unknown = [joint for joint in joints if joint not in ANGLE_NAMES]
    if not joints or unknown:
        raise ComparisonError(f"Choose the joints to compare among the angles PoseScope measures"
                              f"{': there is no ' + ', '.join(unknown) if unknown else ''}.")
    sync = synchronise(reference, athlete, signal) if offset_s is None else Sync(offset_s, signal, None)
    ref_start = max(reference.times_s[0], athlete.times_s[0] + sync.offset_s)  # where both have begun
    ref_clock = _dtw_clock(ref_start, reference.times_s[-1])
    ath_clock = _dtw_clock(ref_start - sync.offset_s, athlete.times_s[-1])
    if ref_clock is None or ath_clock is None:
        raise ComparisonError(f"With the athlete's video starting at {sync.offset_s:.2f} s of the reference, the "
                              "two do not overlap. Choose another offset.")
    ref_curves = reference.curves_at(ref_clock, joints)
    ath_curves = athlete.curves_at(ath_clock, joints)
    path = np.array(dtw_ndim.warping_path(ref_curves.astype(np.double), ath_curves.astype(np.double), use_c=True))
    ref_at, ath_at = ref_clock[path[:, 0]], ath_clock[path[:, 1]]
    ref_angles, ath_angles = ref_curves[path[:, 0]], ath_curves[path[:, 1]]
    difference = ath_angles - ref_angles
    worst = np.argmax(np.abs(difference), axis=0)
    progress = 100 * np.arange(len(path)) / max(1, len(path) - 1)
    differences = tuple(
        JointDifference(joint, float(np.mean(np.abs(difference[:, j]))), float(np.mean(difference[:, j])),
                        float(abs(difference[worst[j], j])), float(ref_at[worst[j]]), float(ath_at[worst[j]]),
                        float(progress[worst[j]]))
        for j, joint in enumerate(joints))
    return Comparison(reference, athlete, sync, tuple(joints), ref_at, ath_at, ref_angles, ath_angles, differences)


def comparison_file(comparison: Comparison, name: str) -> bytes:
    """One of FILES: comparison.json, aligned.csv or comparison.png (the aligned curves), as bytes."""
    if name == "comparison.json":
        return json.dumps(comparison.to_json(), indent=1).encode()
    if name == "aligned.csv":
        return comparison.aligned_frame().to_csv(index=False, float_format="%.4f").encode()
    if name == "comparison.png":
        chart = io.BytesIO()
        _chart_png(comparison, chart)
        return chart.getvalue()
    raise ValueError(f"a comparison has no file {name!r}; it has {', '.join(FILES)}")


def write_comparison(comparison: Comparison, out: Path) -> list[Path]:
    """The comparison's FILES in the folder out; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in FILES]
    for path in paths:
        path.write_bytes(comparison_file(comparison, path.name))
    return paths


def _dtw_clock(start_s: float, end_s: float) -> np.ndarray | None:
    """Times from start_s to end_s at DTW_RATE_HZ (fewer if that would pass DTW_MAX_STEPS); None if under two."""
    steps = min(DTW_MAX_STEPS, math.ceil((end_s - start_s) * DTW_RATE_HZ) + 1)
    return np.linspace(start_s, end_s, steps) if steps >= 3 else None


def _standardised(performance: Performance, signal: str) -> np.ndarray:
    """The signal on a SYNC_RATE_HZ grid from the clip's first frame, shifted and scaled to mean 0, deviation 1."""
    grid = np.arange(performance.times_s[0], performance.times_s[-1], 1 / SYNC_RATE_HZ)
    values = _interpolate(performance.times_s, performance.signal(signal), grid, f"The {signal}", performance.name)
    spread = float(np.std(values))
    if spread < 1e-6:
        raise ComparisonError(f"The {signal} does not change in {performance.name}, so it cannot synchronise the "
                              "videos. Choose another signal, or set the offset by hand.")
    return (values - values.mean()) / spread


def _interpolate(times_s: np.ndarray, values: np.ndarray, at: np.ndarray, what: str, name: str) -> np.ndarray:
    """values (known at times_s, NaN where not) at the times `at`, linearly, held at the ends."""
    known = np.isfinite(values)
    if known.sum() < 2:
        raise ComparisonError(f"{what} is unknown in almost every frame of {name}: the person is not seen well "
                              "enough to compare.")
    return np.interp(at, times_s[known], values[known])


def _described(performance: Performance) -> dict[str, object]:
    times = performance.times_s
    return {"name": performance.name, "person": performance.person + 1, "frames": len(times),
            "start_s": round(float(times[0]), 4), "end_s": round(float(times[-1]), 4),
            "frames_per_s": round((len(times) - 1) / float(times[-1] - times[0]), 3)}


def _chart_png(comparison: Comparison, out: io.BytesIO) -> None:
    """One panel per joint: the reference's and the athlete's aligned curves against the reference's time."""
    from matplotlib.figure import Figure  # not pyplot: no global state, so pages may draw on several threads

    rows = math.ceil(len(comparison.joints) / 2)
    figure = Figure(figsize=(11, 2.6 * rows))
    axes = figure.subplots(rows, 2 if len(comparison.joints) > 1 else 1, sharex=True, squeeze=False)
    for j, (joint, axis) in enumerate(zip(comparison.joints, axes.flat)):
        axis.plot(comparison.reference_times_s, comparison.reference_angles[:, j], label="reference", color="#1f77b4")
        axis.plot(comparison.reference_times_s, comparison.athlete_angles[:, j], label="athlete", color="#d62728")
        difference = comparison.differences[j]
        axis.axvline(difference.max_at_reference_s, color="grey", linestyle=":", linewidth=1)
        axis.set_title(f"{joint}: mean {difference.mean_abs_deg:.0f}°, max {difference.max_abs_deg:.0f}° "
                       f"at {difference.max_at_reference_s:.2f} s", fontsize=10)
        axis.set_ylabel("Angle (°)")
    for axis in axes.flat[len(comparison.joints):]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel("Reference time (s)")
    axes.flat[0].legend(loc="best", fontsize=8)
    figure.suptitle(f"{comparison.athlete.name} against {comparison.reference.name} (athlete starts at "
                    f"{comparison.sync.offset_s:.2f} s of the reference)", fontsize=11)
    figure.tight_layout()
    figure.savefig(out, format="png", dpi=100)
