"""Synthetic people with known joint angles, for tests whose answer must be known exactly.

A 3D stick figure is posed from joint angles given per frame (any of them arrays over time), projected
orthographically to the image (a side or a front view) and wrapped as a PoseSeries: MediaPipe's 33 landmarks,
normalised image coordinates, world metres (origin between the hips, y down), visibility 1.

Body axes: x to the person's left, y down, z forward (the way they face). A limb's direction is given as
flexion (from straight down, rotating forwards: 90° points forward, 180° straight up) and abduction (from
straight down, rotating outwards to the side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.landmarks import INDEX, LANDMARK_COUNT
from analysis.series import PoseSeries

LENGTHS_M = {"thigh": 0.45, "shank": 0.43, "trunk": 0.52, "arm": 0.30, "forearm": 0.27, "head": 0.22,
             "hip_half": 0.10, "shoulder_half": 0.19, "foot": 0.2, "heel": 0.06, "hand": 0.08}


def _as(value: float | np.ndarray, frames: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float64), (frames,)).copy()


def _limb(flexion_deg: np.ndarray, abduction_deg: np.ndarray, outwards: float) -> np.ndarray:
    """Unit directions (frames, 3) from flexion and abduction; `outwards` is +1 for the left side, -1 for the right."""
    f, a = np.radians(flexion_deg), np.radians(abduction_deg)
    return np.stack([outwards * np.sin(a), np.cos(a) * np.cos(f), np.cos(a) * np.sin(f)], axis=-1)


@dataclass
class Figure:
    """Joint angles over time, in degrees; scalars or (frames,) arrays. Defaults: standing upright, arms down.

    knee, elbow: joint angles as analysis.angles defines them (180° straight). hip_flexion: the thigh's flexion.
    shoulder_flexion / shoulder_abduction: the upper arm's direction. trunk_lean: forward lean from vertical.
    leg_abduction: each leg out to the side (front-view jumping jacks, knees caving with a negative knee_in).
    pitch: the whole body rotated forwards about the hips (90° lying face down, -90° lying on the back).
    lift_m: the whole body raised off the floor (jumps), in metres.
    elbow_plane: "flexion" bends the elbow forwards (a curl), "abduction" outwards and up (a press seen from the front).
    """

    frames: int
    knee: float | np.ndarray = 180.0
    hip_flexion: float | np.ndarray | None = None
    elbow: float | np.ndarray = 175.0
    shoulder_flexion: float | np.ndarray = 0.0
    shoulder_abduction: float | np.ndarray = 8.0
    trunk_lean: float | np.ndarray = 0.0
    leg_abduction: float | np.ndarray = 4.0
    knee_in_m: float | np.ndarray = 0.0
    pitch: float | np.ndarray = 0.0
    lift_m: float | np.ndarray = 0.0
    elbow_plane: str = "flexion"

    def world(self) -> np.ndarray:
        """(frames, 33, 3) metres, y down, origin between the hips."""
        n = self.frames
        L = LENGTHS_M
        knee = _as(self.knee, n)
        # By default the thigh flexes half of the knee's bend, and the shank leans back the other half (a squat).
        hip_flexion = _as((180.0 - knee) / 2 if self.hip_flexion is None else self.hip_flexion, n)
        shank_flexion = hip_flexion - (180.0 - knee)
        elbow = _as(self.elbow, n)
        shoulder_f, shoulder_a = _as(self.shoulder_flexion, n), _as(self.shoulder_abduction, n)
        leg_a, knee_in = _as(self.leg_abduction, n), _as(self.knee_in_m, n)
        lean = np.radians(_as(self.trunk_lean, n))
        points = np.zeros((n, LANDMARK_COUNT, 3))

        def put(name: str, value: np.ndarray) -> None:
            points[:, INDEX[name]] = value

        trunk_up = np.stack([np.zeros(n), -np.cos(lean), np.sin(lean)], axis=-1)
        mid_shoulder = trunk_up * L["trunk"]
        for side, out in (("left", 1.0), ("right", -1.0)):
            hip = np.array([out * L["hip_half"], 0.0, 0.0]) + np.zeros((n, 3))
            knee_point = hip + _limb(hip_flexion, leg_a, out) * L["thigh"]
            ankle = knee_point + _limb(shank_flexion, leg_a, out) * L["shank"]
            knee_point[:, 0] -= out * knee_in  # the knees cave in over feet that stay put
            put(f"{side}_hip", hip)
            put(f"{side}_knee", knee_point)
            put(f"{side}_ankle", ankle)
            put(f"{side}_heel", ankle + np.array([0.0, 0.04, -L["heel"]]))
            put(f"{side}_foot_index", ankle + np.array([0.0, 0.06, L["foot"] - L["heel"]]))
            shoulder = mid_shoulder + np.array([out * L["shoulder_half"], 0.0, 0.0])
            # The arm hangs in the trunk's frame: flexion is measured from the trunk's downward axis.
            elbow_point = shoulder + _rotate_pitch(_limb(shoulder_f, shoulder_a, out), lean) * L["arm"]
            # The forearm bends at the elbow by 180° - elbow: forwards (curls), or outwards and up (presses).
            if self.elbow_plane == "flexion":
                forearm = _rotate_pitch(_limb(shoulder_f + (180.0 - elbow), shoulder_a, out), lean)
            else:
                forearm = _rotate_pitch(_limb(shoulder_f, shoulder_a + (180.0 - elbow), out), lean)
            wrist = elbow_point + forearm * L["forearm"]
            put(f"{side}_shoulder", shoulder)
            put(f"{side}_elbow", elbow_point)
            put(f"{side}_wrist", wrist)
            for finger, spread in (("index", 0.0), ("pinky", 0.02), ("thumb", -0.02)):
                put(f"{side}_{finger}", wrist + forearm * L["hand"] + np.array([out * spread, 0.0, 0.0]))
        head = mid_shoulder + trunk_up * L["head"]
        face = {"nose": (0.0, 0.0, 0.09), "left_eye_inner": (0.015, -0.03, 0.08), "left_eye": (0.03, -0.03, 0.075),
                "left_eye_outer": (0.045, -0.03, 0.07), "right_eye_inner": (-0.015, -0.03, 0.08),
                "right_eye": (-0.03, -0.03, 0.075), "right_eye_outer": (-0.045, -0.03, 0.07),
                "left_ear": (0.075, -0.02, 0.0), "right_ear": (-0.075, -0.02, 0.0),
                "mouth_left": (0.025, 0.03, 0.08), "mouth_right": (-0.025, 0.03, 0.08)}
        for name, offset in face.items():
            put(name, head + np.array(offset))
        return _rotate_pitch(points, np.radians(_as(self.pitch, n)))

    def scene(self) -> np.ndarray:
        """(frames, 33, 3) metres with the floor at y = 0: the lowest point touches it, unless lifted (a jump)."""
        points = self.world()
        points[..., 1] -= points[..., 1].max(axis=1, keepdims=True)
        points[..., 1] -= _as(self.lift_m, self.frames)[:, None]
        return points

    def series(self, view: str = "side", fps: float = 30.0, size: tuple[int, int] = (1280, 720),
               metres_to_px: float = 300.0, times_s: np.ndarray | None = None, yaw_deg: float = 0.0) -> PoseSeries:
        """The figure seen from its left side (facing image right) or from the front, over a floor line at 90 % of
        the image height. yaw_deg turns the person about the vertical (from the front: towards their left)."""
        world = self.scene()
        if yaw_deg:
            c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
            world = np.stack([c * world[..., 0] + s * world[..., 2], world[..., 1], -s * world[..., 0] + c * world[..., 2]],
                             axis=-1)
        width, height = size
        if view == "side":
            image = np.stack([world[..., 2], world[..., 1]], axis=-1)
            depth = -world[..., 0]
        elif view == "front":
            image = np.stack([-world[..., 0], world[..., 1]], axis=-1)
            depth = -world[..., 2]
        else:
            raise ValueError(view)
        pixels = np.empty_like(image)
        pixels[..., 0] = width / 2 + image[..., 0] * metres_to_px
        pixels[..., 1] = 0.9 * height + image[..., 1] * metres_to_px
        n = self.frames
        landmarks = np.ones((n, 1, LANDMARK_COUNT, 5), np.float32)
        landmarks[:, 0, :, 0] = pixels[..., 0] / width
        landmarks[:, 0, :, 1] = pixels[..., 1] / height
        landmarks[:, 0, :, 2] = depth
        hips = (world[:, INDEX["left_hip"]] + world[:, INDEX["right_hip"]]) / 2
        relative = (world - hips[:, None]).astype(np.float32)[:, None]
        times = np.arange(n) / fps if times_s is None else np.asarray(times_s, np.float64)
        return PoseSeries(times.astype(np.float64), np.arange(n, dtype=np.int64), landmarks, relative, width, height)


def _rotate_pitch(vectors: np.ndarray, pitch_rad: np.ndarray | float) -> np.ndarray:
    """Rotate (frames, ..., 3) vectors forwards about the body's x axis (y down, z forward)."""
    pitch = np.asarray(pitch_rad, np.float64)
    c, s = np.cos(pitch), np.sin(pitch)
    while c.ndim < vectors.ndim - 1:
        c, s = c[..., None], s[..., None]
    y, z = vectors[..., 1], vectors[..., 2]
    out = vectors.copy()
    out[..., 1] = c * y - s * z
    out[..., 2] = s * y + c * z
    return out


def cycles(low: float, high: float, times_s: np.ndarray, period_s: float, start_s: float = 0.0,
           count: int | None = None) -> np.ndarray:
    """A smooth movement from `high` down to `low` and back, once every period_s, from start_s on; `count`
    cycles at most (then it rests at `high`). Before start_s it rests at `high`."""
    t = np.asarray(times_s, np.float64) - start_s
    phase = np.clip(t / period_s, 0.0, None if count is None else float(count))
    depth = (1 - np.cos(2 * np.pi * phase)) / 2
    return high - (high - low) * depth


def times(seconds: float, fps: float = 30.0) -> np.ndarray:
    return np.arange(round(seconds * fps)) / fps


_RIGHT_LEG = [INDEX[f"right_{part}"] for part in ("hip", "knee", "ankle", "heel", "foot_index")]


@dataclass
class Walker(Figure):
    """A Figure whose right leg has its own knee and hip flexion (walking, stepping): the left leg, trunk and
    arms follow Figure's fields; None keeps the right leg the same as the left."""

    right_knee: float | np.ndarray | None = None
    right_hip_flexion: float | np.ndarray | None = None

    def world(self) -> np.ndarray:
        points = super().world()
        right = Figure(self.frames, knee=self.knee if self.right_knee is None else self.right_knee,
                       hip_flexion=self.hip_flexion if self.right_hip_flexion is None else self.right_hip_flexion,
                       leg_abduction=self.leg_abduction, knee_in_m=self.knee_in_m, pitch=self.pitch).world()
        points[:, _RIGHT_LEG] = right[:, _RIGHT_LEG]
        return points


def walk(seconds: float, fps: float = 30.0, stride_s: float = 1.1, swing_deg: float = 25.0) -> Walker:
    """A walk on the spot: the thighs swing forwards and back in opposition, and each knee bends up to 60° while
    its leg swings forwards (the first half of its cycle), so one foot is always on the floor."""
    t = times(seconds, fps)
    phase = 2 * np.pi * t / stride_s
    knee = lambda p: 180.0 - 60.0 * np.clip(np.sin(p), 0.0, None) ** 2  # noqa: E731
    return Walker(len(t), knee=knee(phase), hip_flexion=swing_deg * np.sin(phase - np.pi / 4),
                  right_knee=knee(phase + np.pi), right_hip_flexion=swing_deg * np.sin(phase + np.pi - np.pi / 4))
