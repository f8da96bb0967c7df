"""BlazePose's 33 landmarks and the skeleton that joins them, as data.

Landmark arrays throughout PoseScope end in (33, FIELDS) with the fields in FIELDS order.
"""

from __future__ import annotations

LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
LANDMARK_COUNT = len(LANDMARK_NAMES)
INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}

# Per-landmark fields of a normalised landmark array: x, y in [0, 1] of the image width and height,
# z the depth relative to the hips in roughly the scale of x, and the model's two confidences.
FIELDS: tuple[str, ...] = ("x", "y", "z", "visibility", "presence")
X, Y, Z, VISIBILITY, PRESENCE = range(len(FIELDS))

_BONES_BY_NAME: tuple[tuple[str, str], ...] = (
    # face
    ("nose", "left_eye_inner"), ("left_eye_inner", "left_eye"), ("left_eye", "left_eye_outer"),
    ("left_eye_outer", "left_ear"), ("nose", "right_eye_inner"), ("right_eye_inner", "right_eye"),
    ("right_eye", "right_eye_outer"), ("right_eye_outer", "right_ear"), ("mouth_left", "mouth_right"),
    # trunk
    ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_hip", "right_hip"),
    # arms and hands
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("left_wrist", "left_pinky"),
    ("left_wrist", "left_index"), ("left_wrist", "left_thumb"), ("left_pinky", "left_index"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("right_wrist", "right_pinky"),
    ("right_wrist", "right_index"), ("right_wrist", "right_thumb"), ("right_pinky", "right_index"),
    # legs and feet
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_ankle", "left_heel"),
    ("left_heel", "left_foot_index"), ("left_ankle", "left_foot_index"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_heel"),
    ("right_heel", "right_foot_index"), ("right_ankle", "right_foot_index"),
)
BONES: tuple[tuple[int, int], ...] = tuple((INDEX[a], INDEX[b]) for a, b in _BONES_BY_NAME)
