"""The people of a clip as the user knows them: who is shown, two IDs that are one person merged, their names.

The tracker keeps each person's ID (analysis.tracking), but a person out of view for longer than the keep-ID time
comes back as someone new, and a passer-by may not be wanted at all. These edits act on the ClipResult itself, so
that every chart, table, rep count and export that reads it follows them, and a saved pose series keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from analysis.drawing import PrivacyAnnotator, SkeletonAnnotator
from analysis.engine import FramePose
from analysis.landmarks import VISIBILITY
from analysis.result import ClipResult
from analysis.series import PoseSeries
from analysis.video_io import read_frames

THUMBNAIL_PX = 160  # a thumbnail's side: the person's picture fits in it
THUMBNAIL_BACKGROUND = (38, 39, 48)  # around it, the dark theme's panel colour
THUMBNAIL_MARGIN = 0.15  # around the person's landmarks, a share of their box's longer side
MAX_NAME_LENGTH = 40


@dataclass(frozen=True)
class PeopleEdits:
    """What the user did to a clip's people, in the order it is applied: merges (each: the ID kept, the ID merged
    into it), then the people left out, then names (ID, name). IDs are slots, from 0."""

    merges: tuple[tuple[int, int], ...] = ()
    left_out: tuple[int, ...] = ()
    names: tuple[tuple[int, str], ...] = ()

    def apply(self, result: ClipResult) -> ClipResult:
        for kept, merged in self.merges:
            result = merge_people(result, kept, merged)
        result = leave_out(result, self.left_out)
        for person, name in self.names:
            result = rename(result, person, name)
        return result


def people_found(result: ClipResult) -> list[int]:
    """The slots with anyone in them, lowest first."""
    return np.flatnonzero(result.series.present.any(axis=0)).tolist()


def person_label(result: ClipResult, person: int) -> str:
    """How the person is called: their name, or "person N" (N from 1)."""
    names = result.names
    return (names[person] if person < len(names) else "") or f"person {person + 1}"


def merge_people(result: ClipResult, kept: int, merged: int) -> ClipResult:
    """`merged`'s poses given to `kept` in the frames where `kept` was not found (where both were, kept's stay, as
    one person is never in two places), and `merged`'s slot emptied."""
    people = result.series.people
    if not (0 <= kept < people and 0 <= merged < people) or kept == merged:
        raise ValueError(f"cannot merge person {merged + 1} into person {kept + 1} of {people}")
    series = result.series
    landmarks, world = series.landmarks.copy(), series.world.copy()
    takes = ~series.present[:, kept] & series.present[:, merged]
    landmarks[takes, kept], world[takes, kept] = landmarks[takes, merged], world[takes, merged]
    landmarks[:, merged], world[:, merged] = np.nan, np.nan
    return replace(result, series=_with_poses(series, landmarks, world))


def leave_out(result: ClipResult, people: tuple[int, ...] | list[int]) -> ClipResult:
    """The clip without these people: their slots emptied (the others keep their IDs)."""
    if not people:
        return result
    series = result.series
    landmarks, world = series.landmarks.copy(), series.world.copy()
    landmarks[:, list(people)], world[:, list(people)] = np.nan, np.nan
    return replace(result, series=_with_poses(series, landmarks, world))


def rename(result: ClipResult, person: int, name: str) -> ClipResult:
    """The person called `name` (spaces trimmed, at most MAX_NAME_LENGTH characters; "" for "person N" again)."""
    if not 0 <= person < result.series.people:
        raise ValueError(f"there is no person {person + 1} to rename")
    names = list(result.names) + [""] * (result.series.people - len(result.names))
    names[person] = " ".join(name.split())[:MAX_NAME_LENGTH]
    return replace(result, names=tuple(names))


def thumbnails(result: ClipResult, video: Path | None, privacy: bool = False) -> dict[int, np.ndarray]:
    """A picture of each person found, from the frame where they are seen best (most landmarks likely visible, at
    the largest size): cut from the video, or their skeleton on the privacy background without one (or with
    privacy). (THUMBNAIL_PX, THUMBNAIL_PX, 3) uint8 RGB."""
    series = result.series
    seen = np.nan_to_num(series.landmarks[..., VISIBILITY]).mean(axis=-1)  # (frames, people)
    boxes = _boxes(series)
    area = np.nan_to_num(np.prod(boxes[..., 2:] - boxes[..., :2], axis=-1))
    pictures = {}
    for person in people_found(result):
        frame = int(np.argmax(seen[:, person] * np.sqrt(area[:, person])))
        scene = None if privacy or video is None else _frame_at(video, float(series.times_s[frame]), series)
        pose = FramePose(series.landmarks[frame, person][None], series.world[frame, person][None], series.width,
                         series.height)
        if scene is None:
            scene = SkeletonAnnotator().annotate(
                PrivacyAnnotator().annotate(np.empty((series.height, series.width, 3), np.uint8)), pose)
        pictures[person] = _crop(scene, boxes[frame, person])
    return pictures


def _with_poses(series: PoseSeries, landmarks: np.ndarray, world: np.ndarray) -> PoseSeries:
    return PoseSeries(series.times_s, series.frame_index, landmarks, world, series.width, series.height)


def _boxes(series: PoseSeries) -> np.ndarray:
    """(frames, people, 4) x0, y0, x1, y1 in pixels around each person's landmarks; NaN where not found."""
    pixels = series.landmarks[..., :2] * [series.width, series.height]
    boxes = np.full((*pixels.shape[:2], 4), np.nan)
    found = series.present
    boxes[found] = np.concatenate([pixels[found].min(axis=1), pixels[found].max(axis=1)], axis=-1)
    return boxes


def _frame_at(video: Path, time_s: float, series: PoseSeries) -> np.ndarray | None:
    """The video's frame shown at time_s, at the series' size; None if it cannot be read."""
    try:
        frames = read_frames(video, start_s=time_s, end_s=time_s + 1.0)
        _, _, rgb = next(frames)
        frames.close()
    except (StopIteration, ValueError):
        return None
    return cv2.resize(rgb, (series.width, series.height), interpolation=cv2.INTER_AREA)


def _crop(scene: np.ndarray, box: np.ndarray) -> np.ndarray:
    height, width = scene.shape[:2]
    margin = THUMBNAIL_MARGIN * max(box[2] - box[0], box[3] - box[1])
    x0, y0 = (max(0, int(v - margin)) for v in box[:2])
    x1, y1 = min(width, int(box[2] + margin) + 1), min(height, int(box[3] + margin) + 1)
    crop = scene[y0:max(y1, y0 + 2), x0:max(x1, x0 + 2)]
    scale = THUMBNAIL_PX / max(crop.shape[:2])
    width, height = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    picture = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    square = np.full((THUMBNAIL_PX, THUMBNAIL_PX, 3), THUMBNAIL_BACKGROUND, np.uint8)  # one size: a tidy row
    top, left = (THUMBNAIL_PX - height) // 2, (THUMBNAIL_PX - width) // 2
    square[top:top + height, left:left + width] = picture
    return square
