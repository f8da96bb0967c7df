"""Analysis of one photo: pose, angles in 2D and 3D, the annotated picture, and its exports."""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from PIL import Image

from analysis.angles import ANGLES, DEFAULT_VISIBILITY_THRESHOLD, compute_angles
from analysis.drawing import SkeletonAnnotator, draw_skeleton_only
from analysis.engine import FramePose, PoseEngine, PoseSettings
from analysis.tables import landmark_table


@dataclass(frozen=True)
class PhotoAnalysis:
    """pose: what the model found. angles_2d / angles_3d: (people, len(ANGLES)) degrees from image-plane
    pixels and from world metres. annotated: RGB uint8, the photo (or a blank, in privacy mode) with skeletons."""

    pose: FramePose
    angles_2d: np.ndarray
    angles_3d: np.ndarray
    annotated: np.ndarray

    def landmarks(self) -> pd.DataFrame:
        """33 rows a person: name, normalised x, y, z, visibility, presence, pixels, world metres."""
        table = landmark_table(self.pose.landmarks[None], self.pose.world[None], np.zeros(1))
        pixels = self.pose.pixels.reshape(-1, 2)
        after_presence = table.columns.get_loc("presence") + 1
        table.insert(after_presence, "x_px", pixels[:, 0])
        table.insert(after_presence + 1, "y_px", pixels[:, 1])
        return table.drop(columns=["frame", "time_s"])

    def angles(self, person: int) -> pd.DataFrame:
        return pd.DataFrame({
            "angle": [a.name for a in ANGLES],
            "kind": [a.kind.replace("_", " ") for a in ANGLES],
            "2D (°)": self.angles_2d[person],
            "3D (°)": self.angles_3d[person],
            "what the numbers mean": [a.meaning for a in ANGLES],
        })

    def png(self) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.annotated).save(buffer, "PNG")
        return buffer.getvalue()

    def to_json(self, settings: PoseSettings, source_name: str) -> str:
        """Everything in one document: settings, and per person its landmarks and angles."""
        names = [a.name for a in ANGLES]
        table = self.landmarks().astype({"landmark": str}).round(6)

        def finite(values: np.ndarray) -> list[float | None]:
            return [None if np.isnan(v) else round(float(v), 6) for v in values]
        people = [{
            "person": p + 1,
            "landmarks": table[table.person == p + 1].drop(columns="person").to_dict(orient="records"),
            "angles_2d_deg": dict(zip(names, finite(self.angles_2d[p]))),
            "angles_3d_deg": dict(zip(names, finite(self.angles_3d[p]))),
        } for p in range(self.pose.people)]
        return json.dumps({"source": source_name, "width": self.pose.width, "height": self.pose.height,
                           "settings": asdict(settings), "people": people}, indent=1)


def analyse_photo(engine: PoseEngine, rgb: np.ndarray, privacy: bool = False,
                  threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> PhotoAnalysis:
    pose = engine.detect(rgb)
    if privacy:
        annotated = draw_skeleton_only(pose, threshold)
    else:
        annotated = SkeletonAnnotator(threshold).annotate(rgb.copy(), pose)
    return PhotoAnalysis(pose, compute_angles(pose.pixels, pose.visibility, threshold),
                         compute_angles(pose.world, pose.visibility, threshold), annotated)
