"""The numbers exercises read, per frame and side, from angles and landmark positions (see exercises.toml).

Everything is vectorised over any leading shape: (frames, people) for a clip, (people,) or () for a live frame.
A value is NaN where a landmark it needs is hidden.
"""

from __future__ import annotations

import warnings

import numpy as np

from analysis.angles import ANGLE_NAMES, angle_between
from analysis.exercises import Measure
from analysis.landmarks import INDEX

_SIDES = ("left", "right")


def evaluate(measures: dict[str, Measure], angles: np.ndarray, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Each measure's values, (..., 2) left and right for a two-sided one, else (..., 1).

    angles: (..., len(ANGLE_NAMES)) degrees, as analysis.angles computes them (a clip's smoothed 2D angles, or
    a live frame's). pixels: (..., 33, 2) image positions with NaN where hidden.
    """
    return {name: _values(measure, angles, pixels) for name, measure in measures.items()}


def combine(values: np.ndarray, sides: str) -> np.ndarray:
    """One value per frame from (..., 2) or (..., 1): the mean, min or max of the sides that were measured, the
    min where both were ("both"), or one side. None of these but one side changes when the model swaps left
    and right."""
    if values.shape[-1] == 1 or sides == "left":
        return values[..., 0]
    if sides == "right":
        return values[..., 1]
    if sides == "both":
        return values.min(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames stay NaN
        return {"mean": np.nanmean, "min": np.nanmin, "max": np.nanmax}[sides](values, axis=-1)


def signal(measures: dict[str, Measure], values: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The combined values of one measure, as its `sides` says."""
    return combine(values[name], measures[name].sides)


def torso_length(pixels: np.ndarray) -> np.ndarray:
    """Mid-shoulder to mid-hip in pixels (...,): the body's own unit of length, whatever the image size."""
    shoulders = (pixels[..., INDEX["left_shoulder"], :] + pixels[..., INDEX["right_shoulder"], :]) / 2
    hips = (pixels[..., INDEX["left_hip"], :] + pixels[..., INDEX["right_hip"], :]) / 2
    return np.linalg.norm(shoulders - hips, axis=-1)


def _point(pixels: np.ndarray, name: str, side: str) -> np.ndarray:
    return pixels[..., INDEX[name.replace("{side}", side)], :]


def _values(measure: Measure, angles: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    sides = _SIDES if measure.two_sided else ("left",)
    if measure.angle is not None:
        names = [f"{side} {measure.angle}" for side in sides] if measure.two_sided else [measure.angle]
        return angles[..., [ANGLE_NAMES.index(n) for n in names]].astype(np.float64)
    columns = []
    for side in sides:
        p = [_point(pixels, name, side).astype(np.float64) for name in measure.points]
        if measure.kind == "angle":
            columns.append(angle_between(p[0] - p[1], p[2] - p[1]))
        elif measure.kind == "spread":
            columns.append(np.linalg.norm(p[0] - p[1], axis=-1) / torso_length(pixels))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                columns.append(np.linalg.norm(p[0] - p[1], axis=-1) / np.linalg.norm(p[2] - p[3], axis=-1))
    out = np.stack(columns, axis=-1)
    return np.where(np.isfinite(out), out, np.nan)


def view_of(pixels: np.ndarray) -> np.ndarray:
    """Per frame "front", "side" or "oblique", from the shoulder width against the torso length: about 0.7
    seen from the front, near 0 from the side. Empty string where the shoulders or hips are hidden."""
    width = np.linalg.norm(pixels[..., INDEX["left_shoulder"], :] - pixels[..., INDEX["right_shoulder"], :], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = width / torso_length(pixels)
    return np.select([ratio >= FRONT_RATIO, ratio <= SIDE_RATIO, np.isfinite(ratio)], ["front", "side", "oblique"], "")


FRONT_RATIO = 0.45
SIDE_RATIO = 0.25
