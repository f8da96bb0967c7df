"""The one place a clip's export files are made: CSV, JSON and OpenSim TRC, as text.

Every function takes the clip's one result (ClipResult) and its Kinematics. `clip_files` says which files
a clip has; the pages offer them as downloads and the CLI writes them with `write_all`, so both make the
same files under the same names.

Files:
- landmarks.csv: the raw landmarks, one row per frame, person and landmark (long format), for the people
  found in each frame. `frame` is the frame's number in the source video (after a trim or a stride the
  numbers skip), `time_s` its own timestamp.
- angles.csv: the smoothed angles, one row per frame and person, one column per angle in degrees: first
  the 2D angles from the image (named as in ANGLE_NAMES, e.g. `left knee`), then the same angles from
  world landmarks, named with a ` (3D)` suffix. 2D angles are what the page charts and what a viewer of
  the video sees; 3D ones do not shrink when a limb points towards the camera, but depend on the model's
  depth guess. Rows for a person are present where that person was found or where smoothing filled a
  short gap; an empty cell is an angle that could not be measured (a landmark hidden). Each angle is in
  its defined range (joint angles 0° to 180°, segment angles -180° to 180°), not unwrapped over time
  as Kinematics and the page's charts hold them.
- summary.json: the settings, the video, counts, per person and angle min, max, range and mean, speeds,
  and how long the analysis took. Values that do not exist are null, never NaN.
- person<N>.trc: one person's world landmarks as an OpenSim marker file (see `trc`); N counts people from 1,
  as the Video page names them ("person 1" is slot 0).
- series.npz: the clip itself (ClipResult.to_npz), which the Video page opens again.
- reps.csv (with an exercise): one row per counted rep (REP_COLUMNS), or per hold (HOLD_COLUMNS).
- events.csv: jumps, falls and partial reps, one row each (EVENT_COLUMNS).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.angles import ANGLE_NAMES, ANGLES
from analysis.coaching import Coaching
from analysis.landmarks import LANDMARK_NAMES
from analysis.result import ClipResult
from analysis.series import Kinematics, PoseSeries
from analysis.tables import LANDMARK_COLUMNS, angle_table, landmark_table

ANGLE_3D_SUFFIX = " (3D)"
ANGLE_COLUMNS = ["frame", "time_s", "person", *ANGLE_NAMES, *(f"{name}{ANGLE_3D_SUFFIX}" for name in ANGLE_NAMES)]
SUMMARY_COLUMNS = ["angle", "min", "max", "range", "mean"]
SUMMARY_FORMAT = "posescope-clip-summary/2"
SERIES_FILE = "series.npz"
REP_COLUMNS = ["rep", "start_s", "end_s", "person", "duration_s", "eccentric_s", "concentric_s", "extreme_s",
               "extreme_deg", "min_deg", "max_deg", "rom_deg", "depth_ok", "left_deg", "right_deg", "asymmetry_deg",
               "cues", "severity"]
HOLD_COLUMNS = ["rep", "start_s", "end_s", "person", "held_s", "good_form_s", "good_form_share", "cues"]
EVENT_COLUMNS = ["person", "event", "start_s", "end_s", "duration_s", "flight_s", "height_flight_m", "height_hip_m",
                 "note"]

_CSV = {"index": False, "lineterminator": "\n"}


def landmarks_csv(result: ClipResult) -> str:
    """Columns exactly LANDMARK_COLUMNS; 33 rows for each person found in each frame."""
    series = result.series
    table = landmark_table(series.landmarks, series.world, series.times_s)
    table["frame"] = np.asarray(series.frame_index, np.int64)[table["frame"].to_numpy()]
    return table[LANDMARK_COLUMNS].to_csv(float_format="%.6f", **_CSV)


def angle_frame(result: ClipResult, kinematics: Kinematics) -> pd.DataFrame:
    """The table angles.csv holds: frame, time_s, person, then ANGLE_NAMES (2D) and their ` (3D)` twins,
    each in its defined range (see `wrap_degrees`)."""
    series = result.series
    frames, people = series.frames, series.people
    table = angle_table(wrap_degrees(kinematics.angles_2d), series.times_s)
    three_d = pd.DataFrame(wrap_degrees(kinematics.angles_3d).reshape(frames * people, -1),
                           columns=ANGLE_COLUMNS[3 + len(ANGLE_NAMES):])
    table = pd.concat([table, three_d], axis=1)
    table["frame"] = np.asarray(series.frame_index, np.int64)[table["frame"].to_numpy()]
    measured = np.isfinite(kinematics.angles_2d).any(-1) | np.isfinite(kinematics.angles_3d).any(-1)
    keep = (series.present | measured).ravel()
    return table[keep].reset_index(drop=True)


def angles_csv(result: ClipResult, kinematics: Kinematics) -> str:
    table = angle_frame(result, kinematics)
    return table.round({name: 3 for name in ANGLE_COLUMNS[3:]} | {"time_s": 6}).to_csv(**_CSV)


def wrap_degrees(angles: np.ndarray) -> np.ndarray:
    """Angles back in (-180°, 180°]: Kinematics holds them unwrapped over time (good for charts and
    velocities), which lets a segment angle drift by whole turns when it flips often, e.g. when the
    model swaps left and right. Joint angles (0° to 180°) come back unchanged."""
    angles = np.asarray(angles, np.float64)
    return 180.0 - np.mod(180.0 - angles, 360.0)


def angle_summary(kinematics: Kinematics, person: int, space: Literal["2d", "3d"] = "2d") -> pd.DataFrame:
    """One row per angle: min, max, range (the range of motion) and mean, in degrees, over the frames where
    it was measured; NaN where it never was. From the smoothed angles, as angles.csv holds them.

    Joint angles: plain statistics. Segment angles are directions, so they are summarised on the circle:
    the range is the shortest arc holding every value, min is where that arc starts, in (-180°, 180°],
    and max = min + range, which can pass 180° (a shoulder line rocking between 170° and -170° has
    min 170°, max 190°, range 20°); mean is taken along that arc.
    """
    angles = kinematics.angles_2d if space == "2d" else kinematics.angles_3d
    values = wrap_degrees(angles[:, person])
    rows = [_linear_stats(values[:, i]) if definition.kind != "segment" else _circular_stats(values[:, i])
            for i, definition in enumerate(ANGLES)]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS[1:]).assign(angle=list(ANGLE_NAMES))[SUMMARY_COLUMNS]


def _linear_stats(values: np.ndarray) -> tuple[float, float, float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (np.nan,) * 4
    low, high = float(values.min()), float(values.max())
    return low, high, high - low, float(values.mean())


def _circular_stats(values: np.ndarray) -> tuple[float, float, float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (np.nan,) * 4
    turns = np.sort(np.mod(values, 360.0))
    gaps = np.diff(np.append(turns, turns[0] + 360.0))  # the last gap wraps round from the largest to the smallest
    widest = int(np.argmax(gaps))
    start = float(wrap_degrees(turns[(widest + 1) % len(turns)]))
    spread = 360.0 - float(gaps[widest])
    along = start + np.mod(values - start, 360.0)
    return start, start + spread, spread, float(along.mean())


def reps_frame(coaching: Coaching) -> pd.DataFrame:
    """reps.csv's table: for a reps exercise one row per counted rep (REP_COLUMNS; person from 1, cues joined
    with "; "), for a hold one per hold (HOLD_COLUMNS). Empty (same columns) when nothing was counted."""
    analysis = coaching.exercise
    if analysis is not None and analysis.exercise.kind == "hold":
        rows = [[n, h.start_s, h.end_s, h.person + 1, h.held_s, h.good_s, h.good_s / h.held_s if h.held_s else None,
                 "; ".join(c.text for c in h.cues)] for n, h in enumerate(analysis.holds, start=1)]
        return pd.DataFrame(rows, columns=HOLD_COLUMNS)
    reps = analysis.reps if analysis is not None else ()
    rows = [[r.number, r.start_s, r.end_s, r.person + 1, r.duration_s, r.eccentric_s, r.concentric_s, r.extreme_s,
             r.extreme_deg, r.min_deg, r.max_deg, r.rom_deg, r.depth_ok, r.left_deg, r.right_deg, r.asymmetry_deg,
             "; ".join(c.text for c in r.cues), r.severity] for r in reps]
    return pd.DataFrame(rows, columns=REP_COLUMNS)


def reps_csv(coaching: Coaching) -> str:
    return reps_frame(coaching).round(3).to_csv(**_CSV)


def events_frame(coaching: Coaching) -> pd.DataFrame:
    """events.csv's table: jumps, falls and partial reps in time order (EVENT_COLUMNS, person from 1)."""
    rows = [[e.person + 1, e.kind, e.start_s, e.end_s, e.end_s - e.start_s, e.flight_s, e.height_flight_m,
             e.height_hip_m, e.note] for e in coaching.events]
    analysis = coaching.exercise
    for rep in analysis.partials if analysis is not None else ():
        rows.append([rep.person + 1, "partial rep", rep.start_s, rep.end_s, rep.duration_s, None, None, None,
                     f"reached {rep.extreme_deg:.0f}°, short of the {analysis.exercise.work:.0f}° that counts"])
    table = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    return table.sort_values("start_s", kind="stable").reset_index(drop=True)


def events_csv(coaching: Coaching) -> str:
    return events_frame(coaching).round(3).to_csv(**_CSV)


def exercise_summary(coaching: Coaching) -> dict[str, Any] | None:
    """summary.json's "exercise": the exercise, the count per person, the per-rep figures (or holds), partial
    reps, the warnings, and for `auto` the suggestion and how sure it is."""
    analysis, suggestion = coaching.exercise, coaching.suggestion
    if analysis is None and suggestion is None:
        return None
    out: dict[str, Any] = {"name": None, "count": 0}
    if suggestion is not None:
        out["suggested"] = {"name": suggestion.name, "confidence": suggestion.confidence, "scores": suggestion.scores}
    if analysis is None:
        return out
    exercise = analysis.exercise
    table = reps_frame(coaching)
    people = analysis.people()
    out |= {
        "name": exercise.name, "title": exercise.title, "kind": exercise.kind,
        "count": len(analysis.holds) if exercise.kind == "hold" else analysis.count(),
        "count_by_person": {str(p + 1): analysis.count(p) for p in people} if exercise.kind == "reps" else None,
        "partial_reps": len(analysis.partials),
        "views": {str(p + 1): view for p, view in analysis.views.items()},
        "reps" if exercise.kind == "reps" else "holds": table.to_dict(orient="records"),
        "warnings": list(analysis.warnings),
    }
    return out


def summary(result: ClipResult, kinematics: Kinematics, files: list[str] | None = None,
            coaching: Coaching | None = None) -> dict[str, Any]:
    """What summary.json holds, as a dict (NaN still NaN: `summary_json` turns it into null)."""
    series = result.series
    present = series.present
    interpolated = kinematics.interpolated.any(axis=-1)  # (frames, people)
    frame_index = np.asarray(series.frame_index, np.int64)
    people = []
    for p in np.flatnonzero(present.any(axis=0) | interpolated.any(axis=0)):
        seen = np.flatnonzero(present[:, p])
        people.append({
            "person": int(p) + 1,
            "name": result.names[p] if p < len(result.names) and result.names[p] else None,
            "frames_found": int(present[:, p].sum()),
            "frames_interpolated": int((interpolated[:, p] & ~present[:, p]).sum()),
            "first_frame": int(frame_index[seen[0]]) if len(seen) else None,
            "last_frame": int(frame_index[seen[-1]]) if len(seen) else None,
            "angles_deg": _by_angle(angle_summary(kinematics, p, "2d")),
            "angles_3d_deg": _by_angle(angle_summary(kinematics, p, "3d")),
            "speed": _speeds(kinematics, p),
        })
    video = asdict(result.source.video) if result.source.video else {"codec": None, "fps": None}
    return {
        "format": SUMMARY_FORMAT,
        "source": {"name": result.source.name, "kind": "camera" if result.source.is_camera else "file"},
        "settings": {
            "pose": asdict(result.settings),
            "clip": asdict(result.options),
            "smoothing": asdict(kinematics.smoothing),
            "height_m": kinematics.height_m,
        },
        "video": {**video, "analysed_width": series.width, "analysed_height": series.height,
                  "capture_fps": result.capture_fps},
        "counts": {
            "frames": series.frames,
            "people": len(people),
            "frames_with_no_person": int((~present.any(axis=1)).sum()),
            "frames_with_interpolation": int(interpolated.any(axis=1).sum()),
        },
        "people": people,
        # A camera recording's elapsed time is its summed per-frame processing, not the time it lasted.
        "timing": {"elapsed_s": result.elapsed_s, "frames_per_s": result.frames_per_s},
        "warnings": list(result.warnings),
        "exercise": exercise_summary(coaching) if coaching else None,
        "events": events_frame(coaching).to_dict(orient="records") if coaching else None,
        "files": files,
    }


def summary_json(result: ClipResult, kinematics: Kinematics, files: list[str] | None = None,
                 coaching: Coaching | None = None) -> str:
    """summary.json: see `summary` for the keys."""
    return json.dumps(_json_safe(summary(result, kinematics, files, coaching)), indent=1, allow_nan=False)


def trc(series: PoseSeries, person: int, *, rate_hz: float, camera_rate_hz: float | None = None,
        world: np.ndarray | None = None, name: str | None = None) -> str:
    """One person's world landmarks as a TRC marker file, the way OpenSim (and Sports2D) read it.

    world: (frames, people, 33, 3) metres, MediaPipe's axes; by default series.world (raw). Coordinates
    are turned to OpenSim's axes: X = MediaPipe x (the camera's right), Y = -y (up), Z = -z (towards the
    camera), which keeps them right-handed. MediaPipe's world origin is the point between the hips in
    every frame, so the file holds the pose, not the path the person walks.
    The rows run from the first to the last frame where the person has any landmark (as Sports2D trims);
    Frame# counts them from 1 and Time is each frame's time in the video. A missing landmark is three
    empty cells, which OpenSim reads as NaN; every row ends in a tab, as OpenSim's own writer does, so
    that a missing last marker still gives the row its full number of cells.
    rate_hz is DataRate (the nominal rate of the rows: the video's fps over the stride); camera_rate_hz
    is CameraRate and OrigDataRate (the video's fps; rate_hz by default).
    """
    points = (series.world if world is None else world)[:, person].astype(np.float64)
    points = points * np.array([1.0, -1.0, -1.0])
    known = np.isfinite(points).all(axis=-1)  # (frames, 33)
    rows = np.flatnonzero(known.any(axis=-1))
    if len(rows) == 0:
        raise ValueError(f"person {person} has no landmark in any frame, so there is nothing to write")
    first, last = rows[0], rows[-1] + 1
    points, known = points[first:last], known[first:last]
    camera_rate_hz = camera_rate_hz or rate_hz
    markers = len(LANDMARK_NAMES)
    lines = [
        "\t".join(["PathFileType", "4", "(X/Y/Z)", name or trc_name(person)]),
        "\t".join(["DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate",
                   "OrigDataStartFrame", "OrigNumFrames"]),
        "\t".join([f"{rate_hz:g}", f"{camera_rate_hz:g}", str(len(points)), str(markers), "m",
                   f"{camera_rate_hz:g}", str(int(series.frame_index[first]) + 1), str(len(points))]),
        "Frame#\tTime\t" + "".join(f"{marker}\t\t\t" for marker in LANDMARK_NAMES),
        "\t\t" + "".join(f"X{i}\tY{i}\tZ{i}\t" for i in range(1, markers + 1)),
        "",
    ]
    points[~known] = np.nan
    data = pd.DataFrame(points.reshape(len(points), -1))
    data.insert(0, "time", series.times_s[first:last])
    data.insert(0, "frame", np.arange(1, len(points) + 1))
    data["end"] = np.nan  # an empty last cell: the trailing tab
    body = data.to_csv(sep="\t", header=False, float_format="%.6f", na_rep="", **_CSV)
    return "\n".join(lines) + "\n" + body


def trc_rates(result: ClipResult) -> tuple[float, float | None]:
    """(DataRate, CameraRate) for a TRC file of this clip, in Hz; CameraRate None means "the same".

    From a video with a frame rate: its fps over the stride, and its fps. From a camera recording, or a
    video whose header gives no frame rate: the median rate of the frame times (30 for a single frame).
    """
    video = result.source.video
    if video is not None and video.fps:
        return video.fps / max(1, result.options.stride), video.fps
    return result.series.median_rate_hz, None


def trc_name(person: int) -> str:
    """The file name of slot `person`'s TRC: person1.trc for slot 0, as the page says "person 1"."""
    return f"person{person + 1}.trc"


def person_trc(result: ClipResult, kinematics: Kinematics, person: int) -> str:
    """One person's TRC from the cleaned (smoothed) world landmarks, with `trc_rates` and `trc_name`.

    If smoothing left this person no landmark at all (every one hidden), the raw world landmarks are
    written, where found.
    """
    world: np.ndarray | None = kinematics.world
    if not np.isfinite(kinematics.world[:, person]).all(axis=-1).any():
        world = None
    rate_hz, camera_rate_hz = trc_rates(result)
    return trc(result.series, person, rate_hz=rate_hz, camera_rate_hz=camera_rate_hz, world=world,
               name=trc_name(person))


@dataclass(frozen=True)
class ExportFile:
    """One file a clip exports. name: its name in a results folder (a download prefixes the clip's stem).
    make: builds its content when asked (a click, or the CLI), not before."""

    name: str
    label: str
    mime: str
    make: Callable[[], str | bytes]


def clip_files(result: ClipResult, kinematics: Kinematics, coaching: Coaching | None = None) -> list[ExportFile]:
    """Every file of a clip, in the order they are offered: the pages' downloads and the CLI's folder.

    A TRC file is made for each person found with a world landmark left after cleaning or raw. With coaching,
    events.csv, and reps.csv when an exercise was analysed.
    """
    files = [
        ExportFile("landmarks.csv", "Landmarks CSV", "text/csv", partial(landmarks_csv, result)),
        ExportFile("angles.csv", "Angles CSV", "text/csv", partial(angles_csv, result, kinematics)),
        ExportFile("summary.json", "Summary JSON", "application/json",
                   partial(summary_json, result, kinematics, None, coaching)),
    ]
    if coaching is not None:
        if coaching.exercise is not None:
            files.append(ExportFile("reps.csv", "Reps CSV", "text/csv", partial(reps_csv, coaching)))
        files.append(ExportFile("events.csv", "Events CSV", "text/csv", partial(events_csv, coaching)))
    world = result.series.world
    for person in range(result.series.people):
        if np.isfinite(world[:, person]).all(axis=-1).any():
            files.append(ExportFile(trc_name(person), f"TRC person {person + 1}", "text/plain",
                                    partial(person_trc, result, kinematics, person)))
    files.append(ExportFile(SERIES_FILE, "Pose series (.npz)", "application/octet-stream", result.to_npz))
    return files


def write_all(result: ClipResult, kinematics: Kinematics, out_dir: Path, annotated_video: Path | None = None,
              coaching: Coaching | None = None) -> list[Path]:
    """Write every file of `clip_files` into out_dir; summary.json lists them (and annotated_video, the annotated
    video already written there by analyse_video). Returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = clip_files(result, kinematics, coaching)
    names = [*([annotated_video.name] if annotated_video else []), *(file.name for file in files)]
    written = []
    for file in files:
        content = summary_json(result, kinematics, names, coaching) if file.name == "summary.json" else file.make()
        path = out_dir / file.name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="\n")
        else:
            path.write_bytes(content)
        written.append(path)
    return written


def _by_angle(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {row["angle"]: {key: row[key] for key in SUMMARY_COLUMNS[1:]} for row in table.to_dict(orient="records")}


def _speeds(kinematics: Kinematics, person: int) -> dict[str, Any]:
    """Mean and peak speed of each landmark, in m/s with a height for calibration, else pixels/s."""
    calibrated = kinematics.speed_m is not None
    speeds = kinematics.speed_m if calibrated else kinematics.speed_px
    values = np.ma.masked_invalid(np.asarray(speeds[:, person], np.float64))
    mean, peak = np.ma.filled(values.mean(axis=0), np.nan), np.ma.filled(values.max(axis=0), np.nan)
    return {"unit": "m/s" if calibrated else "px/s",
            "landmarks": {name: {"mean": mean[i], "max": peak[i]} for i, name in enumerate(LANDMARK_NAMES)}}


def _json_safe(value: Any) -> Any:
    """Plain JSON types, with NaN and infinities as None and floats rounded to 6 decimals."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6) if math.isfinite(value) else None
    return value
