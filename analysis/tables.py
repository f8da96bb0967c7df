"""Landmarks and angles as tables: what pages show and what CSV exports contain.

One long-format layout for a photo and a clip alike, built with array operations rather than
row by row: frame, time_s, person, landmark, x, y, z, visibility, presence, world_x, world_y, world_z.
People are numbered from 1, as the pages and file names (person1.trc) show them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.angles import ANGLE_NAMES
from analysis.landmarks import FIELDS, LANDMARK_COUNT, LANDMARK_NAMES

LANDMARK_COLUMNS = ["frame", "time_s", "person", "landmark", *FIELDS, "world_x", "world_y", "world_z"]


def landmark_table(landmarks: np.ndarray, world: np.ndarray, times_s: np.ndarray) -> pd.DataFrame:
    """Long table of (frames, people, 33, 5) landmarks and (frames, people, 33, 3) world points.

    A person absent from a frame (all NaN) has no rows there.
    """
    frames, people = landmarks.shape[:2]
    frame, person, landmark = np.meshgrid(np.arange(frames), np.arange(people), np.arange(LANDMARK_COUNT),
                                          indexing="ij")
    table = pd.DataFrame({
        "frame": frame.ravel(),
        "time_s": np.asarray(times_s, np.float64)[frame.ravel()],
        "person": person.ravel() + 1,
        "landmark": pd.Categorical.from_codes(landmark.ravel(), categories=LANDMARK_NAMES),
        **{name: landmarks[..., i].ravel() for i, name in enumerate(FIELDS)},
        **{f"world_{axis}": world[..., i].ravel() for i, axis in enumerate("xyz")},
    })
    present = ~np.isnan(landmarks[..., 0]).all(axis=-1)  # (frames, people)
    return table[np.repeat(present.ravel(), LANDMARK_COUNT)].reset_index(drop=True)


def angle_table(angles: np.ndarray, times_s: np.ndarray) -> pd.DataFrame:
    """Wide table: frame, time_s, person, then one column per angle in degrees, from (frames, people, n)."""
    frames, people = angles.shape[:2]
    frame, person = np.meshgrid(np.arange(frames), np.arange(people), indexing="ij")
    table = pd.DataFrame({"frame": frame.ravel(), "time_s": np.asarray(times_s, np.float64)[frame.ravel()],
                          "person": person.ravel() + 1})
    values = pd.DataFrame(angles.reshape(frames * people, -1), columns=list(ANGLE_NAMES))
    return pd.concat([table, values], axis=1)
