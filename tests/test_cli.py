"""`python -m analysis`, run as a user runs it: a subprocess, real media, the real model."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from analysis.angles import ANGLE_NAMES
from analysis.video_io import VideoWriter

ROOT = Path(__file__).resolve().parent.parent
# .posescope.json: what the input and the settings were, so that a later run can skip it (tests/test_batch.py).
VIDEO_FILES = {"annotated.mp4", "landmarks.csv", "angles.csv", "summary.json", "series.npz", "events.csv",
               ".posescope.json"}
PHOTO_FILES = {"annotated.png", "landmarks.csv", "pose.json", ".posescope.json"}


def posescope(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(path.read_text()))


@pytest.fixture(scope="module")
def mixed_run(media: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path,
                                                                               Path]:
    """clip.mp4, bus.jpg, a text file named .mp4 and a path that does not exist."""
    work = tmp_path_factory.mktemp("mixed")
    bad = work / "notes.mp4"
    bad.write_text("this is not a video\n")
    out = work / "out"
    run = posescope(media / "clip.mp4", media / "bus.jpg", bad, work / "missing.mp4", "--out", out)
    return run, out, work


def test_unreadable_inputs_are_named_on_stderr_and_the_others_still_done(mixed_run) -> None:
    run, out, work = mixed_run
    assert run.returncode == 1, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 2, run.stderr  # nothing else: no MediaPipe log lines, no progress bar off a terminal
    assert lines[0].startswith(f"posescope: {work / 'notes.mp4'}: ") and "not a video" in lines[0]
    assert lines[1].startswith(f"posescope: {work / 'missing.mp4'}: ") and "no such file" in lines[1].lower()
    assert _files(out) == {"clip", "bus", "batch.csv"}  # nothing for the failures, no staging folder left behind
    assert VIDEO_FILES | {"person1.trc"} == _files(out / "clip")
    assert PHOTO_FILES == _files(out / "bus")
    assert run.stdout.count("\n") == 2 and "clip" in run.stdout and "bus" in run.stdout


def test_the_video_outputs_are_complete(mixed_run) -> None:
    out = mixed_run[1] / "clip"
    with av.open(str(out / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 60
    landmarks = _csv(out / "landmarks.csv")
    assert sorted(landmarks.frame.unique()) == list(range(60))  # the jumper is tracked in every frame
    assert len(landmarks) == 60 * 33
    angles = _csv(out / "angles.csv")
    assert angles.frame.tolist() == list(range(60)) and "left knee (3D)" in angles.columns
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["frames"] == 60 and summary["source"] == {"name": "clip.mp4", "kind": "file"}
    assert summary["settings"]["pose"]["complexity"] == "full" and summary["settings"]["clip"]["stride"] == 1
    trc = (out / "person1.trc").read_text().splitlines()
    assert trc[0] == "PathFileType\t4\t(X/Y/Z)\tperson1.trc" and trc[2].split("\t")[:5] == ["30", "30", "60", "33", "m"]


def test_the_photo_outputs_are_complete(mixed_run) -> None:
    out = mixed_run[1] / "bus"
    assert (out / "annotated.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(_csv(out / "landmarks.csv")) == 33
    pose = json.loads((out / "pose.json").read_text())
    assert pose["source"] == "bus.jpg" and len(pose["people"]) == 1


def test_start_and_stride_change_the_rows_and_a_clean_run_exits_0(media: Path, mixed_run, tmp_path: Path) -> None:
    run = posescope(media / "clip.mp4", "--out", tmp_path, "--stride", "2", "--start", "0.2", "--no-video",
                    "--cutoff", "0", "--height", "1.8")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    out = tmp_path / "clip"
    assert _files(out) == VIDEO_FILES - {"annotated.mp4"} | {"person1.trc"}
    summary = json.loads((out / "summary.json").read_text())
    frames = list(range(6, 60, 2))
    assert summary["counts"]["frames"] == len(frames) == 27
    assert summary["settings"]["smoothing"]["cutoff_hz"] is None and summary["settings"]["clip"]["start_s"] == 0.2
    assert summary["people"][0]["speed"]["unit"] == "m/s"
    landmarks = _csv(out / "landmarks.csv")
    assert set(landmarks.frame) <= set(frames)
    assert len(landmarks) == 33 * sum(p["frames_found"] for p in summary["people"])
    assert len(landmarks) < len(_csv(mixed_run[1] / "clip" / "landmarks.csv"))
    angles = _csv(out / "angles.csv")
    assert angles[angles.person == 1].frame.tolist() == frames


def test_output_folders_are_sanitised_and_kept_apart(media: Path, tmp_path: Path) -> None:
    for folder, name in (("a", "bus.jpg"), ("b", "bus.jpg"), ("c", "Bus.JPG"), ("d", "my photo (1) é.png")):
        (tmp_path / folder).mkdir()
        shutil.copy(media / "bus.jpg", tmp_path / folder / name)
    inputs = [tmp_path / "a" / "bus.jpg", tmp_path / "b" / "bus.jpg", tmp_path / "c" / "Bus.JPG",
              tmp_path / "d" / "my photo (1) é.png"]
    run = posescope(*inputs, "--out", tmp_path / "out", "--model", "lite", "--privacy")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert _files(tmp_path / "out") == {"bus", "bus-2", "Bus-3", "my_photo_1", "batch.csv"}
    for folder in (tmp_path / "out").glob("*/"):
        assert _files(folder) == PHOTO_FILES


def test_a_truncated_video_keeps_what_was_read_and_warns(media: Path, tmp_path: Path) -> None:
    data = (media / "clip.mp4").read_bytes()
    start = data.index(b"mdat")  # the clip is faststart: its index comes first and survives the cut
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: start + (len(data) - start) // 2])
    run = posescope(cut, "--out", tmp_path / "out", "--no-video")
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"posescope: {cut}: warning: ") and "truncated" in lines[0]
    summary = json.loads((tmp_path / "out" / "cut" / "summary.json").read_text())
    assert 0 < summary["counts"]["frames"] < 60 and "truncated" in summary["warnings"][0]


def test_a_video_with_nobody_in_it_is_analysed_without_noise(tmp_path: Path) -> None:
    blank = tmp_path / "blank.mp4"
    with VideoWriter(blank, fps=10) as writer:
        for i in range(10):
            writer.write(np.full((240, 320, 3), 90, np.uint8), i / 10)
    run = posescope(blank, "--out", tmp_path / "out", "--height", "1.7")
    assert run.returncode == 0 and run.stderr == "", run.stderr  # no RuntimeWarning from empty statistics either
    out = tmp_path / "out" / "blank"
    assert _files(out) == VIDEO_FILES  # no person, no .trc
    assert len(_csv(out / "landmarks.csv")) == 0 and len(_csv(out / "angles.csv").columns) == 3 + 2 * len(ANGLE_NAMES)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"frames": 10, "people": 0, "frames_with_no_person": 10,
                                 "frames_with_interpolation": 0}
    assert summary["people"] == []


def test_ctrl_c_removes_the_current_inputs_partial_results_and_exits_130(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # A shell's background jobs ignore SIGINT, and children inherit that; give this one Python's usual handler.
    process = subprocess.Popen([sys.executable, "-m", "analysis", media / "bus.jpg", media / "clip.mp4", "--out", out,
                                "--model", "heavy"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".clip.*/annotated.mp4")):  # the video's analysis has begun
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.02)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.splitlines() == [f"posescope: interrupted; {media / 'clip.mp4'} was not finished and its partial "
                                   "results were removed."]
    assert _files(out) == {"bus", "batch.csv"}  # the finished photo stays; nothing of the video, not its staging
    assert "bus" in stdout and "clip" not in stdout


def test_help_explains_the_options_with_examples() -> None:
    run = posescope("--help", timeout=60)
    assert run.returncode == 0 and run.stderr == ""
    for text in ("usage: python -m analysis", "--out DIR", "--model {lite,full,heavy}", "--max-people N",
                 "--cutoff HZ", "--height M", "--stride N", "--no-video", "--privacy", "examples:", "Exit status"):
        assert text in run.stdout, text


def test_bad_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    run = posescope("x.mp4", "--out", tmp_path, "--stride", "0", timeout=60)
    assert run.returncode == 2 and "--stride: must be 1 or more" in run.stderr
    run = posescope("x.mp4", "--out", tmp_path, "--start", "3", "--end", "2", timeout=60)
    assert run.returncode == 2 and "--end" in run.stderr
    assert not any(tmp_path.iterdir())


# --- exercises -------------------------------------------------------------------------------------------------------


def test_an_exercise_adds_reps_csv_and_its_figures_to_the_summary(media: Path, tmp_path: Path) -> None:
    run = posescope(media / "clip.mp4", "--out", tmp_path, "--no-video", "--exercise", "jumping_jack")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "1 rep of jumping jack" in run.stdout
    out = tmp_path / "clip"
    assert _files(out) == VIDEO_FILES - {"annotated.mp4"} | {"person1.trc", "reps.csv"}
    reps = _csv(out / "reps.csv")
    assert list(reps.columns[:4]) == ["rep", "start_s", "end_s", "person"]
    assert reps.rep.tolist() == [1]  # one whole jumping jack; the second is not over when the clip ends
    rep = reps.iloc[0]
    assert 0 <= rep.start_s < rep.extreme_s < rep.end_s <= 2.0 and rep.extreme_deg > 150 and rep.depth_ok
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exercise"]["name"] == "jumping_jack" and summary["exercise"]["count"] == 1
    assert summary["exercise"]["reps"][0]["rep"] == 1
    assert {"reps.csv", "events.csv"} <= set(summary["files"])
    assert list(_csv(out / "events.csv").columns[:4]) == ["person", "event", "start_s", "end_s"]


@pytest.mark.parametrize(("args", "message"), [
    (["--exercise", "burpee"], "There is no exercise called “burpee”. Known exercises: squat, push_up"),
    (["--exercises", "missing.toml", "--exercise", "squat"], "the exercise file could not be read"),
])
def test_a_bad_exercise_is_one_line_on_stderr(media: Path, tmp_path: Path, args: list[str], message: str) -> None:
    run = posescope(media / "clip.mp4", "--out", tmp_path, *args)
    assert run.returncode == 2
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith("posescope: ") and message in run.stderr
    assert not (tmp_path / "clip").exists()
