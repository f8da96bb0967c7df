"""Comparing two performances: synchronisation, time warping and per-joint differences, on real footage analysed by
the real model, and `python -m analysis compare` as a user runs it.

The copies are made from the test clips' own frames with VideoWriter: a time-shifted one at another frame rate
(each of its frames the source frame nearest its time + the shift), and a slowed one (every frame, its time × 1.5).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.angles import ANGLE_NAMES
from analysis.compare import (
    DEFAULT_JOINTS,
    FILES,
    HIP_SPEED,
    ComparisonError,
    Performance,
    compare,
    synchronise,
    write_comparison,
)
from analysis.engine import PoseSettings
from analysis.video import analyse_video
from analysis.video_io import VideoWriter, read_frames

ROOT = Path(__file__).resolve().parent.parent
SLOWER = 1.5


def shifted_copy(source: Path, out: Path, shift_s: float, fps: float) -> Path:
    """The source from shift_s on, at fps: its frame k is the source frame nearest shift_s + k / fps."""
    frames = [(time_s, rgb) for _, time_s, rgb in read_frames(source)]
    times = np.array([time_s for time_s, _ in frames])
    with VideoWriter(out, fps=fps) as writer:
        for k in range(int((times[-1] - shift_s) * fps)):
            writer.write(frames[int(np.argmin(np.abs(times - (shift_s + k / fps))))][1], k / fps)
    return out


def slowed_copy(source: Path, out: Path, fps: float) -> Path:
    """Every frame of the source at SLOWER times its time: the same movement, 1.5 times slower."""
    with VideoWriter(out, fps=fps) as writer:
        for _, time_s, rgb in read_frames(source):
            writer.write(rgb, time_s * SLOWER)
    return out


def performance(path: Path) -> Performance:
    return Performance.of(analyse_video(path, PoseSettings(), annotated_path=None, name=path.name))


@pytest.fixture(scope="module")
def copies(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("copies")
    shifted_copy(media / "jacks5.mp4", folder / "jacks5_from_0.8s_25fps.mp4", 0.8, 25)
    shifted_copy(media / "balance.mp4", folder / "balance_from_0.3s_25fps.mp4", 0.3, 25)
    slowed_copy(media / "jacks5.mp4", folder / "jacks5_slower.mp4", 30 / SLOWER)
    return folder


@pytest.fixture(scope="module")
def jacks5(media: Path) -> Performance:
    return performance(media / "jacks5.mp4")


@pytest.mark.parametrize(("clip", "copy", "shift_s"), [
    ("balance.mp4", "balance_from_0.3s_25fps.mp4", 0.3),  # one balance move, 60 frames/s against 25
    ("jacks5.mp4", "jacks5_from_0.8s_25fps.mp4", 0.8),  # five jumping jacks, 30 frames/s against 25
])
def test_synchronisation_finds_a_known_offset_to_a_fraction_of_a_frame(
        media: Path, copies: Path, clip: str, copy: str, shift_s: float) -> None:
    reference, athlete = performance(media / clip), performance(copies / copy)
    sync = synchronise(reference, athlete, HIP_SPEED)
    reference_frame_s = float(np.median(np.diff(reference.times_s)))
    assert abs(sync.offset_s - shift_s) < 0.75 * reference_frame_s, sync  # and under half the copy's 40 ms frame
    assert sync.correlation is not None and sync.correlation > 0.8, sync
    # An angle synchronises too, less sharply than the hips (balance: 38 ms off, 2.3 of its frames).
    by_shoulder = synchronise(reference, athlete, "right shoulder")
    assert abs(by_shoulder.offset_s - shift_s) < 0.06, by_shoulder


def test_time_warping_lines_up_a_slower_copy(jacks5: Performance, copies: Path) -> None:
    slower = performance(copies / "jacks5_slower.mp4")
    comparison = compare(jacks5, slower, offset_s=0.0)
    # Each step pairs reference time t with the copy's t × 1.5, to about a frame.
    error = np.abs(comparison.athlete_times_s - SLOWER * comparison.reference_times_s)
    assert np.median(error) < 1 / 30 and np.percentile(error, 95) < 3 / 30, np.percentile(error, [50, 95, 100])
    warped = np.array([difference.mean_abs_deg for difference in comparison.differences])
    # Without warping, the same reference times in each clip are different moments of the movement.
    clock = comparison.reference_times_s
    unwarped = np.abs(slower.curves_at(clock, DEFAULT_JOINTS) - jacks5.curves_at(clock, DEFAULT_JOINTS)).mean(axis=0)
    # (4.5 times here alone, 3.96 in one full run: the model's poses vary a little from run to run, and limbs put
    # back from a left/right swap in one clip and not in the other add a few degrees.)
    assert warped.max() < 8 and np.median(unwarped) > 3 * np.median(warped), (warped, unwarped)


def test_a_known_difference_is_found_in_degrees_and_where_it_is(jacks5: Performance) -> None:
    """The athlete is the reference with the left knee 20° more open over the middle fifth of the clip."""
    knee = ANGLE_NAMES.index("left knee")
    angles = jacks5.angles.copy()
    middle = slice(int(0.4 * len(angles)), int(0.6 * len(angles)))
    angles[middle, knee] += 20
    athlete = dataclasses.replace(jacks5, name="athlete", angles=angles)
    comparison = compare(jacks5, athlete)
    assert comparison.sync.offset_s == pytest.approx(0.0, abs=1e-6)  # the hips move exactly alike
    found = {difference.joint: difference for difference in comparison.differences}
    knee_difference = found["left knee"]
    assert knee_difference.max_abs_deg == pytest.approx(20, abs=0.5)
    assert knee_difference.mean_deg == pytest.approx(knee_difference.mean_abs_deg)  # always more open, never less
    assert 40 <= knee_difference.max_at_percent <= 60, knee_difference
    middle_s = jacks5.times_s[middle]
    assert middle_s[0] <= knee_difference.max_at_reference_s <= middle_s[-1], knee_difference
    assert 3 < knee_difference.mean_abs_deg < 5, knee_difference  # 20° over a fifth of the movement
    assert all(found[joint].max_abs_deg < 1.0 for joint in DEFAULT_JOINTS if joint != "left knee"), found


def test_the_files_hold_the_offset_the_path_and_the_differences(jacks5: Performance, tmp_path: Path) -> None:
    athlete = dataclasses.replace(jacks5, name="later.mp4", times_s=jacks5.times_s + 0.5)  # starts 0.5 s later
    comparison = compare(jacks5, athlete)
    assert comparison.sync.offset_s == pytest.approx(-0.5, abs=0.01)  # its video starts 0.5 s before the reference
    paths = write_comparison(comparison, tmp_path / "out")
    assert [path.name for path in paths] == list(FILES)
    saved = json.loads(paths[0].read_text())
    assert saved["offset_s"] == pytest.approx(-0.5, abs=0.01)
    assert saved["sync"] == {"signal": HIP_SPEED, "automatic": True, "correlation": pytest.approx(1, abs=0.05)}
    path = saved["warping_path"]
    assert len(path["reference_s"]) == len(path["athlete_s"]) == len(comparison.reference_times_s)
    assert np.all(np.diff(path["reference_s"]) >= 0) and np.all(np.diff(path["athlete_s"]) >= 0)
    assert [row["joint"] for row in saved["differences"]] == list(DEFAULT_JOINTS)
    assert {"mean_abs_deg", "max_abs_deg", "max_at_reference_s", "max_at_athlete_s", "max_at_percent"} <= set(
        saved["differences"][0])
    aligned = pd.read_csv(paths[1])
    assert list(aligned.columns[:3]) == ["step", "reference_time_s", "athlete_time_s"]
    assert "difference left knee" in aligned.columns and len(aligned) == len(path["reference_s"])
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_what_cannot_be_compared_is_said_in_a_sentence(jacks5: Performance) -> None:
    with pytest.raises(ComparisonError, match="do not overlap"):
        compare(jacks5, jacks5, offset_s=100.0)
    with pytest.raises(ComparisonError, match="there is no nose"):
        compare(jacks5, jacks5, joints=("left knee", "nose"))
    still = dataclasses.replace(jacks5, hip_speed=np.zeros_like(jacks5.hip_speed))
    with pytest.raises(ComparisonError, match="does not change"):
        synchronise(jacks5, still)


def posescope(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_compare_command_takes_a_video_and_a_saved_analysis(media: Path, copies: Path, tmp_path: Path) -> None:
    saved = tmp_path / "reference.npz"
    saved.write_bytes(analyse_video(media / "jacks5.mp4", PoseSettings(), annotated_path=None,
                                    name="jacks5.mp4").to_npz())
    done = posescope("compare", saved, copies / "jacks5_from_0.8s_25fps.mp4", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    said = re.search(r"starts at ([\d.]+) s of the reference", done.stdout)
    assert said is not None and float(said.group(1)) == pytest.approx(0.8, abs=1 / 30), done.stdout
    result = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert result["offset_s"] == pytest.approx(0.8, abs=1 / 30)
    assert (result["reference"]["frames_per_s"], result["athlete"]["frames_per_s"]) == (30.0, 25.0)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(FILES)

    missing = posescope("compare", saved, tmp_path / "nothere.mp4", "--out", tmp_path / "bad")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "nothere.mp4" in missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "bad").exists()
    bad_joint = posescope("compare", saved, saved, "--out", tmp_path / "bad", "--joints", "left knee,nose")
    assert bad_joint.returncode == 1 and "there is no nose" in bad_joint.stderr
