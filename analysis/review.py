"""What the review player draws and measures: a clip's poses packed for the browser, and the user's measurements.

The browser draws the skeleton over the original video itself, so restyling never needs a new analysis. It
fetches the poses once over HTTP as one little-endian float32 buffer (PoseTrack, blocks in TRACK_BLOCKS order)
and reads any frame's pose from it by index. Measurements are clicks on a paused frame: the browser sends
the points, and their angle or length is worked out here, where the height calibration is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from analysis.angles import ANGLES, DEFAULT_VISIBILITY_THRESHOLD, angle_anchors, angle_between
from analysis.filters import metres_per_pixel
from analysis.landmarks import VISIBILITY, X, Y
from analysis.series import Kinematics, PoseSeries

# The blocks of a PoseTrack, one after another, each C-ordered: (frames,) seconds; (frames,) the frame's number
# in the source video; (frames, people, 33, 3)
# x and y as fractions of the frame and visibility, NaN where nobody was found; (frames, people, angles)
# the smoothed 2D angles in degrees as the page shows them; (frames, people, angles, 2) where each angle's
# label goes, as fractions of the frame.
TRACK_BLOCKS = ("times_s", "frame_index", "landmarks", "angles", "anchors")

MeasurementKind = Literal["angle", "distance"]
POINTS_PER_MEASUREMENT: dict[str, int] = {"angle": 3, "distance": 2}  # the angle is at the second click
MEASUREMENT_COLUMNS = ("frame", "time_s", "kind", "value", "unit", "points_px")


class MeasurementError(ValueError):
    """A measurement the browser sent is not one we can read (a bug or a forged message, never the user's)."""


@dataclass(frozen=True)
class PoseTrack:
    """A clip's poses as the player reads them; `data` is the buffer, the rest its shape."""

    data: bytes
    frames: int
    people: int
    angles: int

    @classmethod
    def of(cls, series: PoseSeries, motion: Kinematics) -> PoseTrack:
        size = np.array([series.width, series.height], np.float32)
        landmarks = series.landmarks[..., [X, Y, VISIBILITY]]
        angles = motion.angles_2d.copy()
        segments = [i for i, angle in enumerate(ANGLES) if angle.kind == "segment"]
        angles[..., segments] = (angles[..., segments] + 180.0) % 360.0 - 180.0  # unwrapped over time: back in range
        anchors = angle_anchors(series.pixels) / size
        blocks = (series.times_s, series.frame_index, landmarks, angles, anchors)
        data = b"".join(np.ascontiguousarray(block, "<f4").tobytes() for block in blocks)
        return cls(data, series.frames, series.people, len(ANGLES))

    @property
    def shape(self) -> dict[str, int]:
        return {"frames": self.frames, "people": self.people, "angles": self.angles}


@dataclass(frozen=True)
class Measurement:
    """An angle (three points, at the middle one) or a distance (two points) the user clicked on one frame.

    frame: the series' frame index; points: (n, 2) pixels of the analysed frame (series.width × height)."""

    frame: int
    kind: MeasurementKind
    points: np.ndarray
    id: str

    @classmethod
    def from_browser(cls, item: Mapping[str, object], series: PoseSeries) -> Measurement:
        """One measurement as the player reports it: {id, frame, kind, points: [[x, y], ...] as fractions}."""
        try:
            kind = str(item["kind"])
            frame = int(item["frame"])  # type: ignore[call-overload]
            points = np.asarray(item["points"], np.float64).reshape(-1, 2)
            ident = str(item["id"])
        except (KeyError, TypeError, ValueError) as error:
            raise MeasurementError(f"unreadable measurement {item!r}") from error
        if POINTS_PER_MEASUREMENT.get(kind) != len(points) or not 0 <= frame < series.frames:
            raise MeasurementError(f"a {kind} with {len(points)} points on frame {frame}")
        if not np.isfinite(points).all():
            raise MeasurementError("a measurement point is not a number")
        return cls(frame, kind, points * [series.width, series.height], ident)  # type: ignore[arg-type]

    def value(self, metres_per_px: float | None = None) -> tuple[float, str]:
        """(value, unit): degrees ("deg") for an angle; metres ("m") once calibrated, else pixels ("px")."""
        if self.kind == "angle":
            return float(angle_between(self.points[0] - self.points[1], self.points[2] - self.points[1])), "deg"
        length = float(np.hypot(*(self.points[1] - self.points[0])))
        return (length * metres_per_px, "m") if metres_per_px else (length, "px")

    def label(self, metres_per_px: float | None = None) -> str:
        value, unit = self.value(metres_per_px)
        return f"{value:.1f}°" if unit == "deg" else f"{value:.2f} m" if unit == "m" else f"{value:.0f} px"


def scale_of(series: PoseSeries, motion: Kinematics, person: int) -> float | None:
    """Metres per pixel of one person from the height calibration, None without one (or when it cannot tell)."""
    if not motion.height_m:
        return None
    scale = float(metres_per_pixel(series.pixels, series.visibility, motion.height_m,
                                   DEFAULT_VISIBILITY_THRESHOLD)[person])
    return scale if np.isfinite(scale) else None


def read_measurements(items: Iterable[Mapping[str, object]], series: PoseSeries) -> list[Measurement]:
    """The player's measurements, skipping (not failing on) any that cannot be read."""
    out = []
    for item in items:
        try:
            out.append(Measurement.from_browser(item, series))
        except MeasurementError:
            continue
    return out


def measurements_frame(measurements: Iterable[Measurement], series: PoseSeries,
                       metres_per_px: float | None = None) -> pd.DataFrame:
    """One row per measurement, as measurements.csv holds it: where (frame number in the video, time), what,
    the value with its unit and the clicked points in pixels of the analysed frame."""
    rows = []
    for measurement in measurements:
        value, unit = measurement.value(metres_per_px)
        rows.append({"frame": int(series.frame_index[measurement.frame]),
                     "time_s": round(float(series.times_s[measurement.frame]), 4),
                     "kind": measurement.kind, "value": round(value, 3), "unit": unit,
                     "points_px": " ".join(f"{x:.1f},{y:.1f}" for x, y in measurement.points)})
    return pd.DataFrame(rows, columns=list(MEASUREMENT_COLUMNS))
