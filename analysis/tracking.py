"""Who is who from frame to frame: the one rule a video's pose series and the live chart both follow.

MediaPipe does not promise the order of people between frames, so each frame's people are matched to
numbered slots by their hip centre (normalised image coordinates), with SciPy's optimal assignment:
- a slot whose person was last seen within MAX_STEP (a fraction of the frame) costs that distance;
- a free slot costs more than any such match, so a near person keeps their slot;
- a slot whose person is further away costs most: a person who moved too far is someone new and takes a
  free slot rather than a neighbour's (only when none is free do they take one); new people take the free
  slots in the order MediaPipe lists them, the lowest first;
- a slot unseen for FORGET_S seconds is free again.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from analysis.engine import FramePose
from analysis.landmarks import INDEX

MAX_STEP = 0.15
FORGET_S = 1.0
_HIPS = [INDEX["left_hip"], INDEX["right_hip"]]
_FREE_COST = 2.0  # in units of max_step
_FAR_COST = 4.0


class PersonTracker:
    """Gives each person of each frame a slot in 0..slots-1 that stays theirs while they stay in view."""

    def __init__(self, slots: int, max_step: float = MAX_STEP, forget_s: float = FORGET_S) -> None:
        if slots < 1:
            raise ValueError(f"a tracker needs at least one slot, got {slots}")
        self.slots, self.max_step, self.forget_s = slots, max_step, forget_s
        self._centres = np.full((slots, 2), np.nan)  # each slot's last hip centre; NaN: free
        self._seen_s = np.full(slots, -np.inf)

    def assign(self, pose: FramePose, time_s: float) -> np.ndarray:
        """(n,) int: the slot of each of the pose's first n = min(people, slots) people, all different."""
        centres = pose.landmarks[: self.slots, _HIPS, :2].mean(axis=1)
        self._centres[time_s - self._seen_s > self.forget_s] = np.nan
        distance = np.linalg.norm(centres[:, None] - self._centres[None], axis=-1)
        free = np.isnan(self._centres).any(axis=-1)
        cost = np.where(distance <= self.max_step, distance, np.where(free, _FREE_COST, _FAR_COST) * self.max_step)
        # Ties (several free slots) go the same way every time: people in MediaPipe's order, lowest slot first.
        people = len(centres)
        cost += 1e-9 * np.arange(self.slots)[None] * (people - np.arange(people))[:, None]
        _, slots = linear_sum_assignment(cost)  # rows come back in order: slots[i] is person i's
        self._centres[slots] = centres
        self._seen_s[slots] = time_s
        return slots
