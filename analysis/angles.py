"""Joint and segment angles, defined as a table and evaluated in one vectorised pass.

Adding an angle is one entry in ANGLES; `compute_angles` reads the table. The same table serves
image-plane landmarks (2D, pixels) and world landmarks (3D, metres). Both coordinate systems have
y pointing down, so "up" is -y in each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from analysis.landmarks import INDEX, LANDMARK_COUNT

# Points that are the middle of two landmarks, named so that the table can use them.
MIDPOINTS: dict[str, tuple[str, str]] = {
    "mid_hip": ("left_hip", "right_hip"),
    "mid_shoulder": ("left_shoulder", "right_shoulder"),
    "mid_ear": ("left_ear", "right_ear"),
}

Kind = Literal["joint", "from_vertical", "segment"]


@dataclass(frozen=True)
class AngleDefinition:
    """One angle.

    joint: the angle at points[1] between the rays to points[0] and points[2], 0° to 180°.
    from_vertical: the angle between the direction points[0] → points[1] and straight up, 0° to 180°.
    segment: the direction points[0] → points[1] against the horizontal, counter-clockwise as seen
        in the image, -180° to 180° in 2D; in 3D the elevation above the horizontal plane, -90° to 90°.
    `meaning` says in words what the numbers mean.
    """

    name: str
    kind: Kind
    points: tuple[str, ...]
    meaning: str


def _sides(name: str, kind: Kind, points: tuple[str, ...], meaning: str) -> list[AngleDefinition]:
    return [AngleDefinition(f"{side} {name}", kind, tuple(p.format(side=side) for p in points), meaning)
            for side in ("left", "right")]


JOINT_ANGLES: list[AngleDefinition] = [
    *_sides("elbow", "joint", ("{side}_shoulder", "{side}_elbow", "{side}_wrist"),
            "180° arm straight; smaller as the elbow bends (about 40° fully bent)"),
    *_sides("shoulder", "joint", ("{side}_hip", "{side}_shoulder", "{side}_elbow"),
            "0° arm along the trunk; 90° arm out level with the shoulder; 180° arm straight overhead"),
    *_sides("hip", "joint", ("{side}_shoulder", "{side}_hip", "{side}_knee"),
            "180° standing straight; 90° thigh at right angles to the trunk (seated); smaller in deep flexion"),
    *_sides("knee", "joint", ("{side}_hip", "{side}_knee", "{side}_ankle"),
            "180° leg straight; 90° knee bent at right angles; smaller in deep squats"),
    *_sides("ankle", "joint", ("{side}_knee", "{side}_ankle", "{side}_foot_index"),
            "about 90° foot at right angles to the shin; larger pointing the toes, smaller pulling them up"),
    *_sides("wrist", "joint", ("{side}_elbow", "{side}_wrist", "{side}_index"),
            "180° hand in line with the forearm; smaller as the wrist bends either way"),
    AngleDefinition("trunk lean", "from_vertical", ("mid_hip", "mid_shoulder"),
                    "0° trunk upright; 90° trunk horizontal; either direction"),
    AngleDefinition("neck flexion", "joint", ("mid_hip", "mid_shoulder", "mid_ear"),
                    "180° head in line with the trunk; smaller as the head tilts forward or back"),
]

SEGMENT_ANGLES: list[AngleDefinition] = [
    *_sides("foot", "segment", ("{side}_heel", "{side}_foot_index"), "heel → toes against the horizontal"),
    *_sides("shank", "segment", ("{side}_ankle", "{side}_knee"), "ankle → knee against the horizontal; 90° vertical"),
    *_sides("thigh", "segment", ("{side}_knee", "{side}_hip"), "knee → hip against the horizontal; 90° vertical"),
    AngleDefinition("pelvis", "segment", ("right_hip", "left_hip"), "right hip → left hip against the horizontal"),
    AngleDefinition("trunk", "segment", ("mid_hip", "mid_shoulder"), "hips → shoulders against the horizontal; 90° upright"),
    AngleDefinition("shoulder line", "segment", ("right_shoulder", "left_shoulder"),
                    "right → left shoulder against the horizontal"),
    AngleDefinition("head", "segment", ("mid_shoulder", "mid_ear"), "shoulders → ears against the horizontal; 90° upright"),
    *_sides("arm", "segment", ("{side}_shoulder", "{side}_elbow"), "shoulder → elbow against the horizontal; -90° hanging"),
    *_sides("forearm", "segment", ("{side}_elbow", "{side}_wrist"), "elbow → wrist against the horizontal"),
]

ANGLES: list[AngleDefinition] = JOINT_ANGLES + SEGMENT_ANGLES
ANGLE_NAMES: tuple[str, ...] = tuple(a.name for a in ANGLES)
DEFAULT_VISIBILITY_THRESHOLD = 0.5

# Every point the table can name: the 33 landmarks, then the midpoints, as weights over landmarks.
_POINT_NAMES = (*INDEX, *MIDPOINTS)
_POINT_INDEX = {name: i for i, name in enumerate(_POINT_NAMES)}
_POINT_WEIGHTS = np.zeros((len(_POINT_NAMES), LANDMARK_COUNT), np.float32)
_POINT_WEIGHTS[np.arange(LANDMARK_COUNT), np.arange(LANDMARK_COUNT)] = 1.0
for _row, (_a, _b) in enumerate(MIDPOINTS.values(), start=LANDMARK_COUNT):
    _POINT_WEIGHTS[_row, [INDEX[_a], INDEX[_b]]] = 0.5
_POINT_MEMBERS = _POINT_WEIGHTS > 0


def _indices(kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    """Column positions in ANGLES of one kind, and their point indices (n, points)."""
    columns = [i for i, a in enumerate(ANGLES) if a.kind == kind]
    points = np.array([[_POINT_INDEX[p] for p in ANGLES[i].points] for i in columns], np.intp)
    return np.array(columns, np.intp), points


_BY_KIND = {kind: _indices(kind) for kind in ("joint", "from_vertical", "segment")}


def angle_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unsigned angle in degrees between vectors on the last axis; NaN if either has no length."""
    if u.shape[-1] == 2:
        cross_norm = np.abs(u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0])
    else:
        cross_norm = np.linalg.norm(np.cross(u, v), axis=-1)
    degrees = np.degrees(np.arctan2(cross_norm, np.sum(u * v, axis=-1)))
    zero = (np.linalg.norm(u, axis=-1) == 0) | (np.linalg.norm(v, axis=-1) == 0)
    return np.where(zero, np.nan, degrees)


def compute_angles(points: np.ndarray, visibility: np.ndarray,
                   threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """Every angle in ANGLES, in degrees, for any number of frames and people.

    points: (..., 33, 2) image coordinates (pixels, so that x and y share a scale) or (..., 33, 3)
        world coordinates in metres. visibility: (..., 33). Returns (..., len(ANGLES)) float32; an
        angle is NaN where a landmark it uses has visibility below `threshold` or is NaN.
    """
    points = np.asarray(points, np.float64)
    dims = points.shape[-1]
    # A missing (NaN) landmark is an unseen one; zero it so that it spoils no midpoint it is not part of.
    known = np.isfinite(points).all(axis=-1)
    visibility = np.where(known, visibility, 0.0)
    named = np.einsum("kl,...ld->...kd", _POINT_WEIGHTS, np.where(known[..., None], points, 0.0))
    named_visibility = np.min(np.where(_POINT_MEMBERS, visibility[..., None, :], np.inf), axis=-1)
    visible = named_visibility >= threshold
    out = np.full((*points.shape[:-2], len(ANGLES)), np.nan)
    up = np.zeros(dims)
    up[1] = -1.0

    columns, idx = _BY_KIND["joint"]
    vertex = named[..., idx[:, 1], :]
    values = angle_between(named[..., idx[:, 0], :] - vertex, named[..., idx[:, 2], :] - vertex)
    out[..., columns] = np.where(visible[..., idx].all(-1), values, np.nan)

    columns, idx = _BY_KIND["from_vertical"]
    direction = named[..., idx[:, 1], :] - named[..., idx[:, 0], :]
    out[..., columns] = np.where(visible[..., idx].all(-1), angle_between(direction, up), np.nan)

    columns, idx = _BY_KIND["segment"]
    d = named[..., idx[:, 1], :] - named[..., idx[:, 0], :]
    horizontal = d[..., 0] if dims == 2 else np.hypot(d[..., 0], d[..., 2])
    values = np.degrees(np.arctan2(0.0 - d[..., 1], horizontal))  # 0.0 - y: no -0.0, so level is 180°, not -180°
    values = np.where(np.linalg.norm(d, axis=-1) == 0, np.nan, values)
    out[..., columns] = np.where(visible[..., idx].all(-1), values, np.nan)
    return out.astype(np.float32)


def angle_anchors(points: np.ndarray) -> np.ndarray:
    """Where each angle in ANGLES is drawn on a picture: a joint angle at its vertex, any other at the middle of
    its segment. points: (..., 33, 2) pixels; returns (..., len(ANGLES), 2), NaN where a point is missing."""
    named = np.einsum("kl,...ld->...kd", _POINT_WEIGHTS, np.asarray(points, np.float64))
    out = np.empty((*named.shape[:-2], len(ANGLES), named.shape[-1]))
    for kind, (columns, idx) in _BY_KIND.items():
        out[..., columns, :] = (named[..., idx[:, 1], :] if kind == "joint"
                                else (named[..., idx[:, 0], :] + named[..., idx[:, 1], :]) / 2)
    return out.astype(np.float32)
