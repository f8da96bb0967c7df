"""Who is who from frame to frame, and which side is which: the rules a video's pose series and the live chart follow.

MediaPipe does not promise the order of people between frames, so each frame's people are matched to numbered
slots with SciPy's optimal assignment (Hungarian) on an OKS-like keypoint similarity (COCO's object keypoint
similarity: each landmark's distance over the person's size, with COCO's per-landmark tolerances):
- each slot's person is predicted where their last seen landmarks would be now at their body's last speed, so two
  people who cross, one hidden behind the other a moment, come out each on their own way;
- the tolerance grows with the time a slot's person has been unseen (they may have moved further), and a slot
  unseen for more than `forget_s` (the keep-ID time, 1 s unless set) is free again;
- where fewer than MIN_SHARED_LANDMARKS landmarks are likely seen in both, boxes are compared instead (overlap);
- a person too unlike every held slot's is someone new: they take a free slot (lowest first, in the order
  MediaPipe lists them) before a held one, and a held one only when none is free (the longest unseen first);
- where the engine knows who is who (FramePose.ids: analysis.people follows each person with a landmarker of their
  own, and tells them apart by their look too), a person it says was a held slot's is that slot's again.

Left and right within one person: for a few frames, MediaPipe sometimes labels a person's legs (or arms) the other
way round (in 31 of jacks5.mp4's 190 frames, the man facing the camera). unswap_left_right puts them back where the
labels jump to the other side and back again soon after, in all of the landmarks' fields, world coordinates
included; SeriesBuilder does it to every series.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from analysis.engine import FramePose
from analysis.landmarks import INDEX, LANDMARK_NAMES

FORGET_S = 1.0
SEEN = 0.5  # a landmark with at least this visibility counts as seen
MIN_SHARED_LANDMARKS = 4
MIN_SIMILARITY = 0.2  # below this keypoint (or box) similarity, a person is not the slot's
TOLERANCE_GROWTH_PER_S = 2.0  # an unseen person's tolerance doubles in half a second
UNSEEN_COST_PER_S = 0.5
SPEED_SMOOTHING = 0.5  # the share of the newest step in a slot's speed
_FREE_COST = 2.0  # a free slot costs more than any match (cost = 1 - similarity), a held one more still
_HELD_COST = 3.0

# COCO's per-keypoint sigmas (Ronchi & Perona 2017), for the 17 it defines; the other BlazePose landmarks take their
# nearest COCO neighbour's.
_COCO_SIGMAS = {"nose": 0.026, "eye": 0.025, "ear": 0.035, "shoulder": 0.079, "elbow": 0.072, "wrist": 0.062,
                "hip": 0.107, "knee": 0.087, "ankle": 0.089}
_NEAREST_COCO = {"eye_inner": "eye", "eye_outer": "eye", "mouth": "nose", "pinky": "wrist", "index": "wrist",
                 "thumb": "wrist", "heel": "ankle", "foot_index": "ankle"}


def _sigma(name: str) -> float:
    part = name.removeprefix("left_").removeprefix("right_").removesuffix("_left").removesuffix("_right")
    return _COCO_SIGMAS[_NEAREST_COCO.get(part, part)]


_KAPPA = 2 * np.array([_sigma(name) for name in LANDMARK_NAMES])  # COCO's k_i = 2 sigma_i
_TORSO = [INDEX[name] for name in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]

# The limbs MediaPipe can give the wrong side within one person, as data: each side's landmarks of them.
SWAPPABLE_LIMBS: dict[str, tuple[str, ...]] = {"arms": ("elbow", "wrist", "pinky", "index", "thumb"),
                                               "legs": ("knee", "ankle", "heel", "foot_index")}
SWAP_FIT = 0.5  # a limb's labels jumped when, swapped, they fit the frame before at least twice as well
MIN_SWAP_JUMP = 0.2  # and, as they are, moved more than this many torso lengths (per landmark, on average)
MAX_SWAP_GAP_S = 0.2  # no jump is seen between frames further apart
MAX_SWAP_S = 1.0  # the longest swap undone
ANATOMY_VETO = 0.7  # none where the labels' own first bones are shorter than this times the other side's, on average
_ROOTS = [(INDEX["left_shoulder"], INDEX["right_shoulder"]), (INDEX["left_hip"], INDEX["right_hip"])]
_SIDES = [(np.array([INDEX[f"left_{part}"] for part in parts]), np.array([INDEX[f"right_{part}"] for part in parts]))
          for parts in SWAPPABLE_LIMBS.values()]


class PersonTracker:
    """Gives each person of each frame a slot in 0..slots-1 that stays theirs while they stay in view, or are out of
    view for at most forget_s."""

    def __init__(self, slots: int, forget_s: float = FORGET_S) -> None:
        if slots < 1:
            raise ValueError(f"a tracker needs at least one slot, got {slots}")
        if not forget_s >= 0:
            raise ValueError(f"the time to keep an unseen person's slot must be 0 s or more, got {forget_s}")
        self.slots, self.forget_s = slots, forget_s
        self._points = np.full((slots, len(LANDMARK_NAMES), 2), np.nan)  # last seen, in pixels
        self._seen = np.zeros((slots, len(LANDMARK_NAMES)), bool)
        self._velocity = np.zeros((slots, 2))  # pixels per second, of the body as a whole
        self._seen_s = np.full(slots, -np.inf)
        self._engine_ids = np.full(slots, -1)  # the engine's id of each slot's person, where it gave one

    def assign(self, pose: FramePose, time_s: float) -> np.ndarray:
        """(n,) int: the slot of each of the pose's first n = min(people, slots) people, all different."""
        points = pose.pixels[: self.slots].astype(np.float64)
        seen = pose.visibility[: self.slots] >= SEEN
        unseen_s = time_s - self._seen_s
        free = unseen_s > self.forget_s
        predicted = self._points + (self._velocity * np.where(free, 0.0, unseen_s)[:, None])[:, None]
        similarity = keypoint_similarity(points, seen, predicted, self._seen,
                                         1 + TOLERANCE_GROWTH_PER_S * np.where(free, 0.0, unseen_s))
        # Someone new: a free slot, else the held slot unseen longest.
        unlike = np.where(free, _FREE_COST, _HELD_COST + 1 - np.clip(unseen_s, 0, self.forget_s) / (self.forget_s or 1))
        # A slot's person unseen for a while is less sure to be where predicted: of two equally like, the one seen
        # last frame is the match.
        doubt = UNSEEN_COST_PER_S * np.where(free, 0.0, unseen_s)
        cost = np.where((similarity >= MIN_SIMILARITY) & ~free[None], 1 - similarity + doubt[None], unlike[None])
        people = len(points)
        ids = np.full(people, -1) if pose.ids is None else pose.ids[:people]
        cost = np.where((ids[:, None] == self._engine_ids[None]) & (ids[:, None] >= 0) & ~free[None], -1.0, cost)
        # Ties (several free slots) go the same way every time: people in MediaPipe's order, lowest slot first.
        cost += 1e-9 * np.arange(self.slots)[None] * (people - np.arange(people))[:, None]
        _, slots = linear_sum_assignment(cost)  # rows come back in order: slots[i] is person i's
        self._remember(slots, points, seen, time_s, free)
        self._engine_ids[np.isin(self._engine_ids, ids[ids >= 0])] = -1
        self._engine_ids[slots] = ids
        return slots

    def _remember(self, slots: np.ndarray, points: np.ndarray, seen: np.ndarray, time_s: float,
                  free: np.ndarray) -> None:
        for slot, person_points, person_seen in zip(slots, points, seen):
            step_s = time_s - self._seen_s[slot]
            if free[slot] or step_s <= 0:
                self._velocity[slot] = 0.0
            else:
                moved = _centre(person_points, person_seen) - _centre(self._points[slot], self._seen[slot])
                if np.isfinite(moved).all():
                    self._velocity[slot] = (SPEED_SMOOTHING * moved / step_s
                                            + (1 - SPEED_SMOOTHING) * self._velocity[slot])
            self._points[slot], self._seen[slot], self._seen_s[slot] = person_points, person_seen, time_s


def keypoint_similarity(points: np.ndarray, seen: np.ndarray, others: np.ndarray, others_seen: np.ndarray,
                        tolerance: np.ndarray | float = 1.0) -> np.ndarray:
    """(people, others) OKS-like similarity in [0, 1] of people (people, 33, 2 pixels; seen (people, 33)) to others
    (others, 33, 2; seen (others, 33)): the mean over landmarks seen in both of exp(-d² / 2 s² k²), s² the other's
    box area and k COCO's tolerance (times `tolerance`, per other); the boxes' overlap (IoU) where fewer than
    MIN_SHARED_LANDMARKS are seen in both. 0 against an other with no points."""
    shared = seen[:, None] & others_seen[None]
    distance2 = ((points[:, None] - others[None]) ** 2).sum(axis=-1)  # (people, others, 33)
    area = np.prod(_boxes(others)[:, 2:] - _boxes(others)[:, :2], axis=-1)  # (others,)
    scale2 = np.maximum(area, 1.0)[None, :, None] * (np.asarray(tolerance, float).reshape(-1)[None, :, None]
                                                     * _KAPPA) ** 2
    with np.errstate(invalid="ignore"):
        per_landmark = np.where(shared, np.exp(-distance2 / (2 * scale2)), 0.0)
    count = shared.sum(axis=-1)
    oks = per_landmark.sum(axis=-1) / np.maximum(count, 1)
    overlap = box_iou(_boxes(points), _boxes(others))
    return np.nan_to_num(np.where(count >= MIN_SHARED_LANDMARKS, oks, overlap))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) overlap over union of boxes (x0, y0, x1, y1); 0 where either is empty or unknown."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    union = np.prod(a[:, 2:] - a[:, :2], axis=-1)[:, None] + np.prod(b[:, 2:] - b[:, :2], axis=-1)[None] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(np.where(union > 0, inter / union, 0.0))


def _boxes(points: np.ndarray) -> np.ndarray:
    """(people, 4) x0, y0, x1, y1 around each person's landmarks (all of them: a hidden one is still guessed)."""
    known = np.isfinite(points).all(axis=-1, keepdims=True)
    boxes = np.concatenate([np.where(known, points, np.inf).min(axis=1), np.where(known, points, -np.inf).max(axis=1)],
                           axis=-1)
    boxes[~known.any(axis=(1, 2))] = np.nan
    return boxes


def _centre(points: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Where a person's body is: the mean of their seen torso landmarks (all seen ones if none of those is)."""
    chosen = _TORSO if seen[_TORSO].any() else np.arange(len(points))
    chosen = [i for i in chosen if seen[i]] or list(chosen)
    return points[chosen].mean(axis=0)


def unswap_left_right(landmarks: np.ndarray, world: np.ndarray, times_s: np.ndarray, width: int, height: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmarks (frames, people, 33, 5) and world (frames, people, 33, 3) with each person's limbs given back their
    side where MediaPipe swapped them for a moment, and (frames, people, limbs of SWAPPABLE_LIMBS) bool: where.

    A jump is both sides of a limb landing where the other side was the frame before: their swapped labels fit at
    least 1/SWAP_FIT times better than their own, which moved more than MIN_SWAP_JUMP torso lengths. A swap is a
    brief excursion between two jumps: at most MAX_SWAP_S long, the person in view throughout, and shorter than the
    stretches before and after it (MediaPipe's mistake is the exception, not the rule), where the labels' own first
    bones (upper arms, thighs, from their own shoulder or hip) are not clearly the shorter: an arm seen from the
    front hangs from its own shoulder. A jump not seen (the sides close together) leaves the labels as they are: a
    swap missed rather than one made up."""
    landmarks, world = landmarks.copy(), world.copy()
    pixels = landmarks[..., :2].astype(np.float64) * [width, height]
    previous = np.concatenate([np.full_like(pixels[:1], np.nan), pixels[:-1]])
    close = np.diff(times_s, prepend=-np.inf) <= MAX_SWAP_GAP_S
    in_view = np.isfinite(pixels).all(axis=(2, 3))  # (frames, people)
    swapped = np.zeros((*pixels.shape[:2], len(_SIDES)), bool)
    for limb, ((left, right), roots) in enumerate(zip(_SIDES, _ROOTS)):
        jumps = _jumped(pixels, previous, left, right) & close[:, None]
        own_bones = _first_bones(pixels, left, right, roots)
        crossed_bones = _first_bones(pixels, left, right, roots[::-1])
        for person in range(pixels.shape[1]):
            marks = [0, *np.flatnonzero(jumps[:, person]), len(times_s)]
            # Each two jumps in a row (start, end), with the marks before and after them.
            for before, start, end, after in zip(marks, marks[1:], marks[2:-1], marks[3:]):
                span = slice(start, end)
                brief = times_s[end] - times_s[start] <= MAX_SWAP_S and end - start < min(start - before, after - end)
                anatomical = own_bones[span, person].mean() >= ANATOMY_VETO * crossed_bones[span, person].mean()
                if brief and anatomical and in_view[span, person].all():
                    swapped[span, person, limb] = True
        rows, people = np.nonzero(swapped[..., limb])
        sides, mirrored = np.concatenate([left, right]), np.concatenate([right, left])
        for array in (landmarks, world):
            array[rows[:, None], people[:, None], sides[None]] = array[rows[:, None], people[:, None], mirrored[None]]
    return landmarks, world, swapped


def _first_bones(pixels: np.ndarray, left: np.ndarray, right: np.ndarray, roots: tuple[int, int]) -> np.ndarray:
    """(frames, people): the summed lengths of a limb's two first bones from roots (its left side's, its right's)."""
    return (np.linalg.norm(pixels[..., left[0], :] - pixels[..., roots[0], :], axis=-1)
            + np.linalg.norm(pixels[..., right[0], :] - pixels[..., roots[1], :], axis=-1))


def _jumped(pixels: np.ndarray, previous: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(frames, people): where a limb's two sides jumped to each other's place of the frame before."""
    def gap(side: np.ndarray, other: np.ndarray) -> np.ndarray:
        return np.linalg.norm(pixels[..., side, :] - previous[..., other, :], axis=-1).mean(axis=-1)

    own, crossed = gap(left, left) + gap(right, right), gap(left, right) + gap(right, left)
    torso = np.linalg.norm(pixels[..., _TORSO[:2], :].mean(axis=-2) - pixels[..., _TORSO[2:], :].mean(axis=-2), axis=-1)
    with np.errstate(invalid="ignore"):
        return (crossed < SWAP_FIT * own) & (own / 2 > MIN_SWAP_JUMP * torso)
