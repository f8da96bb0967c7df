"""Several people in a video, found top-down: each person followed by a landmarker of their own on a crop around
them, and new people looked for on the frame with everyone already followed painted out.

Why: asked for several people, MediaPipe's PoseLandmarker misses most of them (upstream google-ai-edge/mediapipe
#4681, #5842). On Pose2Sim's multi-person demo (a man and a woman, partly overlapping; 100 frames per camera) it
found both in 0, 29, 11 and 95 frames of cameras 3, 2, 4 and 1 with up to three people; this finds both in 84, 97,
100 and 97, each keeping one id throughout, at 13-29 frames/s for the two (benchmarks/people_bench.py).

Each frame: every followed person's crop (their last box, squared, with a margin) goes to their own VIDEO-mode
landmarker, with the other followed people's skeletons painted out so that it cannot jump to them; a pose that
jumps away from the person's box is not theirs, nor is one that looks clearly more like another followed person
than like them (their look: the colours of their torso, learnt while they stand apart from the others). A person
unseen for settings.keep_id_s is let go. Two followers that end up on one person are made one: the one the person
looks like keeps them, the other has lost its own (hidden behind, most likely) and looks for them again. Then,
while someone followed is missing (every frame), or there is room for more (every DISCOVER_EVERY frames, and every
frame until the first person is found), an IMAGE-mode landmarker looks at the whole frame with the people found
painted out: someone who looks like, or stands where, a follower lost its person is that person again, anyone else
new takes a free follower.

Each person found has an id (FramePose.ids) that stays theirs while a follower has them, so that the series keeps
them in one slot (analysis.tracking.PersonTracker).
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from analysis.engine import FramePose, Mode, PoseEngine, PoseSettings
from analysis.landmarks import BONES, INDEX, VISIBILITY
from analysis.tracking import box_iou

CROP_MARGIN = 0.25  # on each side, as a share of the box's longer side
DISCOVER_EVERY = 3  # frames between looks for new people while there is room for more
MAX_JUMP = 0.5  # a person's box moves at most this share of its longer side from one frame to the next
SAME_TORSO = 0.25  # two followers whose poses' shoulders and hips are this many torso lengths apart follow one person
NEW_PERSON_IOU = 0.3  # someone found who overlaps a followed person's box less than this is someone new
PAINT = (127, 127, 127)  # what a person painted out is painted with: mid grey, no edges for the detector
BONE_WIDTH = 0.3  # of the torso's length
HEAD_RADIUS = 0.35
MIN_SEEN_LANDMARKS = 4
# A person's look: the hue-saturation histogram of their torso (shoulders to hips), compared by Bhattacharyya
# distance (0 alike, 1 nothing shared). On Pose2Sim's camera 3 the man's bare torso and the woman's white top are
# 0.1-0.5 from their own and 0.7-1.0 from the other's.
LOOK_BINS = [16, 8]
LOOK_LEARNING = 0.2  # the share of a frame's look in a person's, learnt where they stand apart from the others
APART_IOU = 0.1  # apart: their box overlaps no other person's more than this
CLEARLY_OTHER = 0.2  # a pose whose look is this much nearer another followed person's than its own is not its own
SAME_LOOK = 0.5  # someone found whose look is at most this far from a lost person's may be them
MIN_TORSO_PIXELS = 100
_IDS = itertools.count()  # FramePose.ids: unique in the process, so that two finders' (two spans') never meet
_SHOULDERS = [INDEX["left_shoulder"], INDEX["right_shoulder"]]
_HIPS = [INDEX["left_hip"], INDEX["right_hip"]]
_TORSO = _SHOULDERS + _HIPS
_BONES = np.array(BONES, np.intp)


class PeopleFinder:
    """Up to settings.max_people people per video frame, top-down; detect_frame as PoseEngine's in VIDEO mode.
    Holds max_people + 1 landmarkers: close it (or use it in a with block) when done."""

    mode = Mode.VIDEO

    def __init__(self, settings: PoseSettings) -> None:
        self.settings = settings
        one = PoseSettings(settings.complexity, 1, settings.min_detection_confidence,
                           settings.min_presence_confidence, settings.min_tracking_confidence)
        self._followers = [PoseEngine(one, Mode.VIDEO) for _ in range(settings.max_people)]
        self._finder = PoseEngine(settings, Mode.IMAGE)
        self._boxes: list[np.ndarray | None] = [None] * settings.max_people  # x0, y0, x1, y1 in pixels
        self._last: list[tuple[np.ndarray, np.ndarray] | None] = [None] * settings.max_people  # landmarks, world
        self._seen_ms = [-np.inf] * settings.max_people
        self._ids = [-1] * settings.max_people
        self._looks: list[np.ndarray | None] = [None] * settings.max_people
        self._frames = 0
        self.closed = False

    def detect_frame(self, rgb: np.ndarray, timestamp_ms: int) -> FramePose:
        """The people in this frame, in the order of the followers that found them, with their ids."""
        height, width = rgb.shape[:2]
        found: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self._followers)
        for slot, box in enumerate(self._boxes):
            if box is not None:
                found[slot] = self._follow(slot, rgb, box, timestamp_ms)
        self._merge_duplicates(rgb, found)
        for slot, box in enumerate(self._boxes):
            if box is not None and found[slot] is not None:
                self._take(slot, *found[slot], width, height, timestamp_ms)
            elif box is not None and timestamp_ms - self._seen_ms[slot] > self.settings.keep_id_s * 1000:
                self._boxes[slot], self._looks[slot] = None, None
        missing = [slot for slot, box in enumerate(self._boxes) if box is not None and found[slot] is None]
        free = [slot for slot, box in enumerate(self._boxes) if box is None]
        if missing or (free and (self._frames % DISCOVER_EVERY == 0 or len(free) == len(self._boxes))):
            self._discover(rgb, found, missing, free, timestamp_ms)
        self._learn_looks(rgb, found)
        self._frames += 1
        self._last = found
        slots = [slot for slot, person in enumerate(found) if person is not None]
        if not slots:
            return FramePose.empty(width, height)
        return FramePose(np.stack([found[slot][0] for slot in slots]), np.stack([found[slot][1] for slot in slots]),
                         width, height, np.array([self._ids[slot] for slot in slots]))

    def close(self) -> None:
        if not self.closed:
            for engine in (*self._followers, self._finder):
                engine.close()
            self.closed = True

    def __enter__(self) -> PeopleFinder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _follow(self, slot: int, rgb: np.ndarray, box: np.ndarray,
                timestamp_ms: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The slot's person in this frame (landmarks, world), looked for on the crop around their last box; None
        where its landmarker finds no one, or someone else."""
        height, width = rgb.shape[:2]
        x0, y0, x1, y1 = _crop_around(box, width, height)
        crop = rgb[y0:y1, x0:x1].copy()
        for other, last in enumerate(self._last):
            if other != slot and last is not None and self._boxes[other] is not None:
                _paint_out(crop, _pixels(last[0], width, height) - [x0, y0])
        pose = self._followers[slot].detect_frame(crop, timestamp_ms)
        if pose.people:
            landmarks = pose.landmarks[0].copy()
            landmarks[:, 0] = (landmarks[:, 0] * (x1 - x0) + x0) / width
            landmarks[:, 1] = (landmarks[:, 1] * (y1 - y0) + y0) / height
            landmarks[:, 2] *= (x1 - x0) / width  # z is on the scale of x
            moved = _box(_pixels(landmarks, width, height), landmarks[:, VISIBILITY])
            # A jump is not this person: a landmarker that has lost them fits the background nearby. Nor is someone
            # who looks like another followed person: it has slid onto them.
            if (np.linalg.norm((moved[:2] + moved[2:] - box[:2] - box[2:]) / 2) <= MAX_JUMP * max(box[2:] - box[:2])
                    and not self._looks_like_another(slot, _look(rgb, landmarks))):
                return landmarks, pose.world[0]
        return None

    def _discover(self, rgb: np.ndarray, found: list[tuple[np.ndarray, np.ndarray] | None], missing: list[int],
                  free: list[int], timestamp_ms: int) -> None:
        """Look for people on the frame with those found painted out: one who looks like, or else stands where, a
        follower lost its person is that person again (they keep their slot through a short occlusion); anyone else
        new takes a free slot."""
        height, width = rgb.shape[:2]
        painted = rgb.copy()
        followed = []
        for slot, person in enumerate(found):
            if person is not None:
                _paint_out(painted, _pixels(person[0], width, height))
                followed.append(self._boxes[slot])
        pose = self._finder.detect(painted)
        for landmarks, world in zip(pose.landmarks, pose.world):
            box = _box(_pixels(landmarks, width, height), landmarks[:, VISIBILITY])
            if followed and box_iou(box[None], np.array(followed)).max() >= NEW_PERSON_IOU:
                continue  # someone already followed, seen through the paint
            lost = self._lost_one(missing, box, _look(rgb, landmarks))
            if lost is not None:
                slot = lost
                missing.remove(slot)
            elif free:
                slot = free.pop(0)
                self._ids[slot] = next(_IDS)
            else:
                continue
            self._take(slot, landmarks, world, width, height, timestamp_ms)
            found[slot] = landmarks, world
            followed.append(self._boxes[slot])

    def _take(self, slot: int, landmarks: np.ndarray, world: np.ndarray, width: int, height: int,
              timestamp_ms: int) -> None:
        self._boxes[slot] = _box(_pixels(landmarks, width, height), landmarks[:, VISIBILITY])
        self._seen_ms[slot] = timestamp_ms

    def _lost_one(self, missing: list[int], box: np.ndarray, look: np.ndarray | None) -> int | None:
        """The missing slot whose person someone found at `box` is: the one they look like (clearly more than any
        other missing one), else the one whose last box they overlap most; None if neither."""
        distances = np.array([_look_distance(look, self._looks[slot]) for slot in missing])
        if len(distances) and distances.min() <= SAME_LOOK:
            nearest, *others = np.argsort(distances)
            if not others or distances[others[0]] - distances[nearest] >= CLEARLY_OTHER:
                return missing[nearest]
        overlaps = box_iou(box[None], np.array([self._boxes[slot] for slot in missing]).reshape(-1, 4))[0]
        return missing[int(np.argmax(overlaps))] if len(overlaps) and overlaps.max() >= NEW_PERSON_IOU else None

    def _looks_like_another(self, slot: int, look: np.ndarray | None) -> bool:
        own = _look_distance(look, self._looks[slot])
        others = [_look_distance(look, self._looks[other]) for other, box in enumerate(self._boxes)
                  if other != slot and box is not None]
        return np.isfinite(own) and min(others, default=np.inf) + CLEARLY_OTHER < own

    def _merge_duplicates(self, rgb: np.ndarray, found: list[tuple[np.ndarray, np.ndarray] | None]) -> None:
        """Two followers on one person (their shoulders and hips coincide; boxes that overlap do not tell, one
        person can stand right behind another): the pose and follower whose looks are nearest keep the person (a's
        own where no look can tell yet), the other follower has lost its person this frame."""
        for a, b in itertools.combinations(range(len(found)), 2):
            if found[a] is None or found[b] is None:
                continue
            if _torso_gap(found[a][0], found[b][0]) < SAME_TORSO:
                looks = [_look(rgb, found[slot][0]) for slot in (a, b)]
                distances = [[_look_distance(look, self._looks[slot]) for slot in (a, b)] for look in looks]
                pose, slot = divmod(int(np.argmin(np.nan_to_num(distances, posinf=9.0))), 2)
                kept = found[(a, b)[pose]]
                found[a], found[b] = (kept, None) if slot == 0 else (None, kept)

    def _learn_looks(self, rgb: np.ndarray, found: list[tuple[np.ndarray, np.ndarray] | None]) -> None:
        """Each person's look, from the frames where they stand apart (a look taken in an overlap mixes two people);
        a person just found takes theirs from the frame they were found in."""
        slots = [slot for slot, person in enumerate(found) if person is not None]
        boxes = np.array([self._boxes[slot] for slot in slots]).reshape(-1, 4)
        overlaps = box_iou(boxes, boxes) - np.eye(len(slots))
        for slot, overlap in zip(slots, overlaps):
            look = _look(rgb, found[slot][0])
            if look is None or (self._looks[slot] is not None and overlap.max(initial=0.0) > APART_IOU):
                continue
            known = self._looks[slot]
            self._looks[slot] = look if known is None else (1 - LOOK_LEARNING) * known + LOOK_LEARNING * look


def video_engine(settings: PoseSettings) -> PoseEngine | PeopleFinder:
    """What follows the people of a video: MediaPipe's own VIDEO-mode tracking for one person, a PeopleFinder for
    several."""
    return PoseEngine(settings, Mode.VIDEO) if settings.max_people == 1 else PeopleFinder(settings)


def people_in_view(engine: PoseEngine, rgb: np.ndarray, most: int) -> int:
    """How many people an image shows, up to `most`: a one-person IMAGE-mode landmarker asked again with each one it
    finds painted out. Why not one landmarker asked for `most`: that one misses most of them (see above)."""
    height, width = rgb.shape[:2]
    painted = rgb.copy()
    boxes: list[np.ndarray] = []
    while len(boxes) < most:
        pose = engine.detect(painted)
        if not pose.people:
            break
        landmarks = pose.landmarks[0]
        pixels = _pixels(landmarks, width, height)
        box = _box(pixels, landmarks[:, VISIBILITY])
        if boxes and box_iou(box[None], np.array(boxes)).max() >= NEW_PERSON_IOU:
            break  # someone already counted, seen through the paint
        boxes.append(box)
        _paint_out(painted, pixels)
    return len(boxes)


def same_people(a: FramePose, b: FramePose) -> bool:
    """Whether two finds in one frame are of the same people: as many, each with shoulders and hips within
    SAME_TORSO torso lengths of one of the other's (no one found in either counts as the same)."""
    return a.people == b.people and all(min(_torso_gap(p, q) for q in b.landmarks) < SAME_TORSO
                                        for p in a.landmarks)


def _torso_gap(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two poses' shoulders and hips are, on average, in lengths of the first one's torso."""
    torso = float(np.linalg.norm(a[_SHOULDERS, :2].mean(axis=0) - a[_HIPS, :2].mean(axis=0)))
    gap = float(np.linalg.norm(a[_TORSO, :2] - b[_TORSO, :2], axis=1).mean())
    return gap / torso if torso > 0 else np.inf


def _pixels(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    return landmarks[:, :2] * [width, height]


def _box(pixels: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """x0, y0, x1, y1 around the landmarks likely seen (all of them if fewer than MIN_SEEN_LANDMARKS are)."""
    seen = visibility > 0.3
    points = pixels[seen] if seen.sum() >= MIN_SEEN_LANDMARKS else pixels
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def _crop_around(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The square around box with CROP_MARGIN each side, inside the frame."""
    centre = (box[:2] + box[2:]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * (0.5 + CROP_MARGIN)
    x0, y0 = np.maximum(0, (centre - half).astype(int))
    x1, y1 = int(min(width, centre[0] + half)), int(min(height, centre[1] + half))
    return int(x0), int(y0), max(x1, int(x0) + 2), max(y1, int(y0) + 2)


def _look(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """The hue-saturation histogram (LOOK_BINS, summing to 1) of the torso, the quadrilateral of shoulders and hips;
    None where it is smaller than MIN_TORSO_PIXELS."""
    height, width = rgb.shape[:2]
    corners = _pixels(landmarks[[*_SHOULDERS, *_HIPS[::-1]]], width, height)
    if not np.isfinite(corners).all():
        return None
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [width, height])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, 0, [width, height])
    if x1 <= x0 or y1 <= y0:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(mask, np.round(corners - [x0, y0]).astype(np.int32), 1)
    if mask.sum() < MIN_TORSO_PIXELS:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    histogram = cv2.calcHist([hsv], [0, 1], mask, LOOK_BINS, [0, 180, 0, 256])
    return histogram / histogram.sum()


def _look_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya distance of two looks, inf where either is unknown."""
    if a is None or b is None:
        return np.inf
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def _paint_out(image: np.ndarray, pixels: np.ndarray) -> None:
    """Paint a person's skeleton over with thick grey bones and a disc for the head, in place."""
    torso = float(np.linalg.norm(pixels[_SHOULDERS].mean(axis=0) - pixels[_HIPS].mean(axis=0)))
    if not np.isfinite(torso) or torso <= 0:
        return
    ends = np.round(pixels).astype(np.int32)
    thickness = max(4, int(torso * BONE_WIDTH))
    for a, b in _BONES:
        cv2.line(image, tuple(ends[a]), tuple(ends[b]), PAINT, thickness)
    cv2.circle(image, tuple(ends[INDEX["nose"]]), int(torso * HEAD_RADIUS), PAINT, -1)

