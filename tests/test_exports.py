"""Export files of a clip analysis (CSV, JSON, TRC), on the real clip with the real model."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import exports
from analysis.angles import ANGLE_NAMES
from analysis.engine import PoseSettings
from analysis.landmarks import INDEX, LANDMARK_NAMES
from analysis.series import Kinematics, PoseSeries, Smoothing, kinematics
from analysis.tables import LANDMARK_COLUMNS
from analysis.result import ClipOptions, ClipResult, Source
from analysis.video import analyse_video

SMOOTHING = Smoothing()


@pytest.fixture(scope="module")
def one(media: Path) -> ClipResult:
    """The whole clip, one person: the jumper, found in every frame."""
    return analyse_video(media / "clip.mp4", PoseSettings(max_people=1), name="clip.mp4")


@pytest.fixture(scope="module")
def two(media: Path) -> ClipResult:
    """The whole clip, up to two people: the walker comes in late."""
    return analyse_video(media / "clip.mp4", PoseSettings(max_people=2), name="clip.mp4")


@pytest.fixture(scope="module")
def trimmed(media: Path) -> ClipResult:
    """From 0.2 s to 1.5 s, every second frame: source frames 6, 8, ..., 44.

    (The detector finds the jumper in few frames on its own, mid-jump least; tracking from a frame where it
    does carries him through. From 0.2 s it does; from 0.5 s nobody is found until about frame 33.)"""
    return analyse_video(media / "clip.mp4", PoseSettings(max_people=1), ClipOptions(start_s=0.2, end_s=1.5, stride=2))


def _csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def _jumper(series: PoseSeries) -> int:
    return int(np.argmax(series.present.sum(axis=0)))


# landmarks.csv

@pytest.mark.parametrize("clip", ["one", "two", "trimmed"])
def test_landmarks_csv_has_33_rows_per_person_found_in_each_frame(clip: str, request: pytest.FixtureRequest) -> None:
    series = request.getfixturevalue(clip).series
    table = _csv(exports.landmarks_csv(request.getfixturevalue(clip)))
    assert list(table.columns) == ["frame", "time_s", "person", "landmark", "x", "y", "z", "visibility", "presence",
                                   "world_x", "world_y", "world_z"] == LANDMARK_COLUMNS
    assert len(table) == series.present.sum() * 33 > 0
    for (_, _), rows in table.groupby(["frame", "person"]):
        assert list(rows.landmark) == list(LANDMARK_NAMES)
    assert not table.drop(columns="landmark").isna().any().any()


def test_landmark_frames_are_the_source_frame_numbers_after_a_trim_and_stride(trimmed: ClipResult) -> None:
    series = trimmed.series
    np.testing.assert_array_equal(series.frame_index, np.arange(6, 45, 2))
    found = series.present[:, 0]
    assert found.sum() >= 15
    table = _csv(exports.landmarks_csv(trimmed))
    assert sorted(table.frame.unique()) == series.frame_index[found].tolist()
    np.testing.assert_allclose(table.time_s, table.frame / 30, atol=1e-3)  # a frame's own time, from the video's start
    i = int(np.flatnonzero(found)[-1])
    last = table[(table.frame == series.frame_index[i]) & (table.landmark == "nose")].iloc[0]
    np.testing.assert_allclose(last[["x", "y", "world_x"]].astype(float),
                               [*series.landmarks[i, 0, INDEX["nose"], :2], series.world[i, 0, INDEX["nose"], 0]],
                               atol=1e-5)


# angles.csv and the angle summary

def test_angles_csv_columns_rows_and_frames(two: ClipResult, trimmed: ClipResult) -> None:
    motion = kinematics(two.series, SMOOTHING)
    table = _csv(exports.angles_csv(two, motion))
    assert list(table.columns) == ["frame", "time_s", "person", *ANGLE_NAMES, *(f"{n} (3D)" for n in ANGLE_NAMES)]
    # A row wherever a person was found, and where smoothing bridged a short gap.
    found = {(int(two.series.frame_index[f]), p + 1) for f, p in zip(*np.nonzero(two.series.present))}
    rows = set(zip(table.frame, table.person))
    assert found <= rows and len(rows) == len(table)
    jumper = table[table.person == _jumper(two.series) + 1]
    assert jumper["left knee"].notna().mean() > 0.8 and jumper["left knee (3D)"].notna().mean() > 0.8

    trimmed_table = _csv(exports.angles_csv(trimmed, kinematics(trimmed.series, SMOOTHING)))
    assert trimmed_table.frame.tolist() == list(range(6, 45, 2))


def test_jumping_jack_angles_are_plausible(one: ClipResult) -> None:
    motion = kinematics(one.series, SMOOTHING)
    table = _csv(exports.angles_csv(one, motion))
    jumper = table[table.person == _jumper(one.series) + 1]
    assert len(jumper) == 60
    for side in ("left", "right"):
        shoulder = jumper[f"{side} shoulder"].dropna()
        assert shoulder.max() - shoulder.min() > 60, side  # arms swing from the sides to overhead
        assert shoulder.between(0, 180).all()
        knee = jumper[f"{side} knee"].dropna()
        assert len(knee) > 50 and (knee > 120).mean() > 0.8, side  # legs stay mostly straight
    segments = table[[name for name in ANGLE_NAMES if name.endswith(("foot", "arm", "pelvis", "thigh"))]]
    assert segments.stack().between(-180, 180).all()  # in their defined range, not unwrapped into whole turns


def test_angle_summary_matches_what_the_csv_holds(one: ClipResult) -> None:
    motion = kinematics(one.series, SMOOTHING)
    table = _csv(exports.angles_csv(one, motion))
    summary = exports.angle_summary(motion, 0).set_index("angle")
    assert list(exports.angle_summary(motion, 0).columns) == ["angle", "min", "max", "range", "mean"]
    for name in ("left knee", "right shoulder", "trunk lean", "neck flexion"):
        column = table[name].dropna()
        assert summary.loc[name, "min"] == pytest.approx(column.min(), abs=1e-3)
        assert summary.loc[name, "max"] == pytest.approx(column.max(), abs=1e-3)
        assert summary.loc[name, "range"] == pytest.approx(column.max() - column.min(), abs=2e-3)
        assert summary.loc[name, "mean"] == pytest.approx(column.mean(), abs=1e-3)


def test_segment_angles_are_summarised_on_the_circle() -> None:
    """A shoulder line rocking across ±180° has a range of 20°, not 350°."""
    angles = np.full((4, 1, len(ANGLE_NAMES)), 90.0)
    column = ANGLE_NAMES.index("shoulder line")
    angles[:, 0, column] = [170.0, 180.0, -175.0, 190.0 - 360.0]
    motion = dataclasses.replace(_empty_kinematics(4, 1), angles_2d=angles)
    row = exports.angle_summary(motion, 0).set_index("angle").loc["shoulder line"]
    assert (row["min"], row["max"], row["range"]) == pytest.approx((170.0, 190.0, 20.0))
    assert row["mean"] == pytest.approx((170 + 180 + 185 + 190) / 4)
    knee = exports.angle_summary(motion, 0).set_index("angle").loc["left knee"]
    assert (knee["min"], knee["max"], knee["range"], knee["mean"]) == (90.0, 90.0, 0.0, 90.0)


def _empty_kinematics(frames: int, people: int) -> Kinematics:
    nan = np.full((frames, people, len(ANGLE_NAMES)), np.nan)
    return Kinematics(np.full((frames, people, 33, 2), np.nan), np.full((frames, people, 33, 3), np.nan), nan, nan,
                      nan, np.zeros((frames, people, 33), bool), np.full((frames, people, 33), np.nan), None, nan,
                      SMOOTHING, None)


# summary.json

def test_summary_json_is_strict_json_with_settings_counts_and_per_person_angles(two: ClipResult) -> None:
    series = two.series
    motion = kinematics(series, SMOOTHING, height_m=1.8)
    # An angle never measured (as if the left hand were hidden throughout) must come out null, not NaN.
    angles = motion.angles_2d.copy()
    angles[..., ANGLE_NAMES.index("left wrist")] = np.nan
    motion = dataclasses.replace(motion, angles_2d=angles)
    text = exports.summary_json(two, motion)

    def no_nan(constant: str) -> None:
        raise AssertionError(f"{constant} in summary.json")
    summary = json.loads(text, parse_constant=no_nan)
    assert {"format", "source", "settings", "video", "counts", "people", "timing", "warnings"} <= summary.keys()
    assert summary["settings"]["pose"]["max_people"] == 2 and summary["settings"]["pose"]["complexity"] == "full"
    assert summary["settings"]["clip"]["stride"] == 1 and summary["settings"]["smoothing"]["cutoff_hz"] == 6.0
    assert summary["settings"]["height_m"] == 1.8
    assert summary["video"]["fps"] == pytest.approx(30) and summary["video"]["width"] == 960
    counts = summary["counts"]
    assert counts["frames"] == 60
    assert counts["people"] == len(summary["people"]) == int(series.present.any(axis=0).sum())
    assert counts["frames_with_no_person"] == int((~series.present.any(axis=1)).sum())
    assert 0 <= counts["frames_with_interpolation"] <= 60
    assert sum(p["frames_found"] for p in summary["people"]) == series.present.sum()
    person = summary["people"][0]
    assert person["angles_deg"]["left wrist"] == {"min": None, "max": None, "range": None, "mean": None}
    knee = person["angles_deg"]["left knee"]
    assert knee["min"] <= knee["mean"] <= knee["max"] and knee["range"] == pytest.approx(knee["max"] - knee["min"],
                                                                                         abs=1e-5)
    assert person["angles_3d_deg"]["right knee"]["max"] <= 180
    assert person["speed"]["unit"] == "m/s" and 0 < person["speed"]["landmarks"]["right_wrist"]["max"] < 30
    assert summary["timing"]["elapsed_s"] > 0 and summary["timing"]["frames_per_s"] > 0
    assert summary["warnings"] == []
    assert summary["source"] == {"name": "clip.mp4", "kind": "file"}


def test_a_hidden_hand_leaves_the_other_angles_measurable(one: ClipResult) -> None:
    series = one.series
    landmarks = series.landmarks.copy()
    landmarks[:, :, [INDEX["left_wrist"], INDEX["left_index"]], 3] = 0.0  # visibility 0: hidden throughout
    motion = kinematics(dataclasses.replace(series, landmarks=landmarks), SMOOTHING)
    table = _csv(exports.angles_csv(one, motion))
    assert table["left wrist"].isna().all()
    assert table["left knee"].notna().mean() > 0.8


# person<N>.trc, read back with Pose2Sim's own reader (Pose2Sim.common.read_trc, which Sports2D calls too)
#
# Only the lines marked "# builds the TRC" call the export API; every assertion is on what Pose2Sim reads back,
# compared with the series' own world landmarks and times.

OPENSIM_AXES = np.array([1.0, -1.0, -1.0])  # X = MediaPipe x, Y = -y (up), Z = -z (towards the camera)


@dataclasses.dataclass(frozen=True)
class ReadBack:
    """A TRC file as Pose2Sim's read_trc returns it: header (line 2's names to line 3's values), markers,
    frames (Frame#), times (Time), xyz (rows, markers, 3), and lines (the raw file, for its layout)."""

    header: dict[str, str]
    markers: list[str]
    frames: np.ndarray
    times: np.ndarray
    xyz: np.ndarray
    lines: list[str]


TrcReader = Callable[[Path], ReadBack]


@pytest.fixture(scope="module")
def read_trc() -> TrcReader:
    """Pose2Sim's read_trc, from the pose2sim package itself (.ci/run installs it)."""
    printing = np.get_printoptions()
    try:
        from Pose2Sim.common import read_trc as pose2sim_read_trc
    finally:
        np.set_printoptions(**printing)  # importing Pose2Sim.common sets numpy's printing for the whole process

    def read(path: Path) -> ReadBack:
        coords, frames, times, markers, header = pose2sim_read_trc(str(path))
        assert list(coords.columns) == [marker for marker in markers for _ in "XYZ"]
        names = header[1].rstrip("\n").split("\t")
        values = header[2].rstrip("\n").split("\t")
        assert len(names) == len(values)
        return ReadBack(dict(zip(names, values)), markers, frames.to_numpy(), times.to_numpy(),
                        coords.to_numpy(np.float64).reshape(len(coords), len(markers), 3),
                        path.read_text(encoding="utf-8").split("\n"))
    return read


def _write(tmp_path: Path, text: str, name: str = "person1.trc") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _assert_rows_keep_every_cell(read: ReadBack) -> None:
    """What OpenSim's TRCFileAdapter needs beyond what pandas forgives: a blank line 6, then every row with
    Frame#, Time and 3 cells per marker (empty where missing), the last followed by a tab; a final newline."""
    assert read.lines[5] == "" and read.lines[-1] == ""
    rows = read.lines[6:-1]
    assert len(rows) == len(read.frames)
    cells = [row.split("\t") for row in rows]
    assert all(len(row) == 2 + 3 * len(read.markers) + 1 and row[-1] == "" for row in cells)


def test_trc_reads_back_in_pose2sim_as_our_world_landmarks_in_opensim_axes(one: ClipResult, read_trc: TrcReader,
                                                                           tmp_path: Path) -> None:
    series = one.series
    text = exports.trc(series, 0, rate_hz=30.0)  # builds the TRC
    read = read_trc(_write(tmp_path, text))
    assert read.lines[0] == "PathFileType\t4\t(X/Y/Z)\tperson1.trc"
    assert read.header == {"DataRate": "30", "CameraRate": "30", "NumFrames": "60", "NumMarkers": "33", "Units": "m",
                           "OrigDataRate": "30", "OrigDataStartFrame": "1", "OrigNumFrames": "60"}
    assert read.markers == list(LANDMARK_NAMES)
    np.testing.assert_array_equal(read.frames, np.arange(1, 61))
    np.testing.assert_allclose(read.times, series.times_s, rtol=0, atol=1e-6)
    assert read.xyz.shape == (60, 33, 3) and np.isfinite(read.xyz).all()
    np.testing.assert_allclose(read.xyz, series.world[:, 0] * OPENSIM_AXES, rtol=0, atol=1e-6)  # written to 6 places
    nose, ankles = read.xyz[:, INDEX["nose"]], read.xyz[:, [INDEX["left_ankle"], INDEX["right_ankle"]]]
    assert (nose[:, 1] > ankles[:, :, 1].max(axis=1) + 0.5).all()  # Y is up: the nose well above the ankles
    assert np.abs(read.xyz).max() < 2.0  # metres around the hips
    _assert_rows_keep_every_cell(read)


def test_trc_leaves_missing_markers_empty_and_keeps_every_row_full_length(trimmed: ClipResult, read_trc: TrcReader,
                                                                          tmp_path: Path) -> None:
    series = trimmed.series
    assert series.present[:3, 0].all() and series.present[5, 0]
    world = series.world.astype(np.float64)
    world[3:5, 0] = np.nan  # the person lost for two frames
    world[:, 0, INDEX["right_foot_index"]] = np.nan  # the last marker never seen
    world[:2, 0] = np.nan  # and not yet found in the first two frames: those rows are left out
    text = exports.trc(series, 0, rate_hz=15.0, camera_rate_hz=30.0, world=world, name="walk.trc")  # builds the TRC
    read = read_trc(_write(tmp_path, text, "walk.trc"))
    assert read.lines[0] == "PathFileType\t4\t(X/Y/Z)\twalk.trc"
    rows = series.frames - 2
    assert read.header == {"DataRate": "15", "CameraRate": "30", "NumFrames": str(rows), "NumMarkers": "33",
                           "Units": "m", "OrigDataRate": "30", "OrigDataStartFrame": "11", "OrigNumFrames": str(rows)}
    assert series.frame_index[2] + 1 == 11  # OrigDataStartFrame: the first row's frame in the video, from 1
    assert read.markers == list(LANDMARK_NAMES)
    np.testing.assert_array_equal(read.frames, np.arange(1, rows + 1))
    np.testing.assert_allclose(read.times, series.times_s[2:], rtol=0, atol=1e-6)
    np.testing.assert_allclose(read.xyz, world[2:, 0] * OPENSIM_AXES, rtol=0, atol=1e-6)  # NaN where NaN
    assert np.isnan(read.xyz[1:3]).all() and np.isfinite(read.xyz[0, :32]).all()
    assert np.isnan(read.xyz[:, INDEX["right_foot_index"]]).all()
    _assert_rows_keep_every_cell(read)


def test_write_all_writes_every_file_and_a_trc_per_person_found(two: ClipResult, read_trc: TrcReader,
                                                                tmp_path: Path) -> None:
    motion = kinematics(two.series, SMOOTHING)
    written = exports.write_all(two, motion, tmp_path, tmp_path / "annotated.mp4")  # builds the TRCs
    people = np.flatnonzero(two.series.present.any(axis=0))
    expected = {"landmarks.csv", "angles.csv", "summary.json", *(f"person{p + 1}.trc" for p in people), "series.npz"}
    assert {p.name for p in written} == expected == {p.name for p in tmp_path.iterdir()}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["files"] == ["annotated.mp4", "landmarks.csv", "angles.csv", "summary.json",
                                *(f"person{p + 1}.trc" for p in people), "series.npz"]
    assert summary["source"] == {"name": "clip.mp4", "kind": "file"}
    saved = ClipResult.from_npz((tmp_path / "series.npz").read_bytes())
    np.testing.assert_array_equal(saved.series.landmarks, two.series.landmarks)
    for p in people:
        read = read_trc(tmp_path / f"person{p + 1}.trc")
        # The cleaned (smoothed) world landmarks, from the first to the last frame with any of them.
        cleaned = motion.world[:, p].astype(np.float64) * OPENSIM_AXES
        cleaned[~np.isfinite(cleaned).all(axis=-1)] = np.nan
        seen = np.flatnonzero(np.isfinite(cleaned).all(axis=-1).any(axis=-1))
        first, last = seen[0], seen[-1] + 1
        assert read.header["NumFrames"] == str(last - first) and read.markers == list(LANDMARK_NAMES)
        assert read.header["OrigDataStartFrame"] == str(two.series.frame_index[first] + 1)
        np.testing.assert_array_equal(read.frames, np.arange(1, last - first + 1))
        np.testing.assert_allclose(read.times, two.series.times_s[first:last], rtol=0, atol=1e-6)
        np.testing.assert_allclose(read.xyz, cleaned[first:last], rtol=0, atol=1e-6)


def test_trc_rates_from_a_video_its_stride_and_a_recording(one: ClipResult, trimmed: ClipResult) -> None:
    assert exports.trc_rates(one) == (30.0, 30.0)
    assert exports.trc_rates(trimmed) == (15.0, 30.0)  # every second frame of a 30 fps video
    recorded = ClipResult(trimmed.series, Source("camera"))
    rate, camera = exports.trc_rates(recorded)  # a recording: the rate of its frame times
    assert rate == pytest.approx(15.0, rel=1e-3) and camera is None
    no_rate = dataclasses.replace(one, source=Source("x.avi", dataclasses.replace(one.source.video, fps=0.0)))
    assert exports.trc_rates(no_rate) == (pytest.approx(30.0, rel=1e-3), None)
    assert exports.trc_rates(ClipResult(one.series.select(frames=slice(0, 1)), Source("camera"))) == (30.0, None)


def test_trc_files_count_people_from_1_as_the_page_does(trimmed: ClipResult, read_trc: TrcReader,
                                                        tmp_path: Path) -> None:
    assert [exports.trc_name(p) for p in range(3)] == ["person1.trc", "person2.trc", "person3.trc"]
    motion = kinematics(trimmed.series, SMOOTHING)
    text = exports.person_trc(trimmed, motion, 0)  # builds the TRC
    read = read_trc(_write(tmp_path, text))
    assert read.lines[0] == "PathFileType\t4\t(X/Y/Z)\tperson1.trc"
    assert (read.header["DataRate"], read.header["CameraRate"]) == ("15", "30")
    assert np.isfinite(read.xyz).any()


def test_person_trc_falls_back_to_raw_world_landmarks_when_smoothing_left_none(one: ClipResult) -> None:
    motion = kinematics(one.series, SMOOTHING)
    hidden = dataclasses.replace(motion, world=np.full_like(motion.world, np.nan))
    assert exports.person_trc(one, hidden, 0) == exports.trc(
        one.series, 0, rate_hz=30.0, camera_rate_hz=30.0, name="person1.trc")
