"""Batch analysis as a user runs it: `python -m analysis FOLDER --out DIR`, on a tree of real media with a bad
file among the good ones; batch.csv; resuming; Ctrl-C; --ray on a local Ray instance."""

from __future__ import annotations

import csv
import os
import io
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import pytest

from analysis.batch import BATCH_COLUMNS, find_inputs

ROOT = Path(__file__).resolve().parent.parent
FAST = ("--model", "lite", "--no-video")


def posescope(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "batch.csv").read_text(encoding="utf-8"))))


def by_output(out: Path) -> dict[str, dict[str, str]]:
    return {row["output"] or row["path"]: row for row in rows(out)}


@pytest.fixture()
def tree(media: Path, tmp_path: Path) -> Path:
    """clips/ with a photo and two videos in nested folders, a text file named .mp4, notes, a hidden file."""
    clips = tmp_path / "clips"
    (clips / "team a" / "day1").mkdir(parents=True)
    (clips / "solo").mkdir()
    shutil.copy(media / "bus.jpg", clips / "team a" / "bus.jpg")
    shutil.copy(media / "clip.mp4", clips / "team a" / "day1" / "jump.mp4")
    shutil.copy(media / "balance.mp4", clips / "solo" / "balance.mp4")
    shutil.copy(media / "bus.jpg", clips / "solo" / "IMG_0001")  # no extension: a photo by its content
    (clips / "solo" / "broken.mp4").write_text("not a video at all\n")
    (clips / "notes.txt").write_text("session notes\n")  # neither by extension nor by content: not an input
    (clips / ".DS_Store").write_bytes(b"\0" * 64)
    return clips


def test_a_folder_tree_is_mirrored_with_one_row_per_input_and_a_bad_file_does_not_stop_it(tree: Path,
                                                                                            tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = posescope(tree, "--out", out, *FAST)
    assert run.returncode == 1, run.stderr  # one input failed
    assert run.stderr.splitlines() == [f"posescope: {tree / 'solo' / 'broken.mp4'}: This is not a video file we can "
                                       "read, or it is damaged (Invalid data found when processing input). Choose a "
                                       "video file such as MP4, MOV, AVI, WebM or MKV."]
    table = rows(out)
    assert tuple(table[0]) == BATCH_COLUMNS  # no reps column without --exercise
    found = by_output(out)
    assert set(found) == {"team_a/bus", "team_a/day1/jump", "solo/balance", "solo/IMG_0001",
                          str(tree / "solo" / "broken.mp4")}
    jump, balance, photo = found["team_a/day1/jump"], found["solo/balance"], found["solo/IMG_0001"]
    assert (jump["kind"], jump["status"], jump["frames"], jump["people"], jump["duration_s"]) == \
        ("video", "ok", "60", "1", "2.0")
    assert (balance["frames"], balance["people"], balance["skipped"]) == ("100", "1", "false")
    assert (photo["kind"], photo["status"], photo["people"], photo["frames"]) == ("photo", "ok", "1", "1")
    broken = found[str(tree / "solo" / "broken.mp4")]
    assert (broken["kind"], broken["status"], broken["output"]) == ("video", "error", "")
    assert "not a video" in broken["message"]
    assert (out / "team_a" / "day1" / "jump" / "landmarks.csv").is_file()
    assert (out / "solo" / "IMG_0001" / "pose.json").is_file()
    assert not (out / "solo" / "broken").exists() and not list(out.rglob("*.partial"))
    assert "notes" not in str(table) and "DS_Store" not in str(table)


def test_a_second_run_skips_what_is_up_to_date_and_redoes_what_changed(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    (tree / "solo" / "broken.mp4").unlink()
    first = posescope(tree, "--out", out, *FAST)
    assert first.returncode == 0, first.stderr
    landmarks = out / "solo" / "balance" / "landmarks.csv"
    written, first_rows = landmarks.stat().st_mtime_ns, rows(out)

    again = posescope(tree, "--out", out, *FAST)
    assert again.returncode == 0, again.stderr
    assert {row["skipped"] for row in rows(out)} == {"true"}
    assert again.stdout.count("up to date") == 4 and landmarks.stat().st_mtime_ns == written
    assert [{**row, "skipped": "false"} for row in rows(out)] == first_rows  # the first run's figures, kept

    shutil.copy(tree / "team a" / "day1" / "jump.mp4", tree / "solo" / "balance.mp4")  # new content, same name
    changed = posescope(tree, "--out", out, *FAST)
    skipped = {row["output"]: row["skipped"] for row in rows(out)}
    assert changed.returncode == 0 and skipped["solo/balance"] == "false", changed.stderr
    assert [v for k, v in skipped.items() if k != "solo/balance"] == ["true"] * 3
    assert by_output(out)["solo/balance"]["frames"] == "60"

    other_settings = posescope(tree, "--out", out, "--model", "lite", "--no-video", "--stride", "2")
    assert other_settings.returncode == 0 and {row["skipped"] for row in rows(out)} == {"false"}

    forced = posescope(tree, "--out", out, "--model", "lite", "--no-video", "--stride", "2", "--force")
    assert forced.returncode == 0 and {row["skipped"] for row in rows(out)} == {"false"}
    assert landmarks.stat().st_mtime_ns != written


def test_ctrl_c_stops_cleanly_and_the_next_run_continues_where_it_stopped(media: Path, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(6):
        shutil.copy(media / "demo.mp4", clips / f"take{i}.mp4")
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "analysis", clips, "--out", out, "--jobs", "2", *FAST],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not (out / "batch.csv").exists():  # the first input is done
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.startswith("posescope: interrupted;") and "run the same command again to continue" in stderr
    done = {row["output"] for row in rows(out)}
    assert 1 <= len(done) < 6 and {row["status"] for row in rows(out)} == {"ok"}
    assert not list(out.glob(".*.partial"))  # the inputs that were running left nothing behind
    assert {p.name for p in out.iterdir() if p.is_dir()} == done  # and no folder without its results

    resumed = posescope(clips, "--out", out, *FAST)
    assert resumed.returncode == 0, resumed.stderr
    table = rows(out)
    assert len(table) == 6 and {row["status"] for row in table} == {"ok"}
    assert {row["output"] for row in table if row["skipped"] == "true"} == done


def test_reps_go_into_batch_csv_with_an_exercise(media: Path, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(media / "jacks5.mp4", clips / "jacks.mp4")
    shutil.copy(media / "balance.mp4", clips / "balance.mp4")
    run = posescope(clips, "--out", tmp_path / "out", "--no-video", "--exercise", "jumping_jack")
    assert run.returncode == 0, run.stderr
    found = by_output(tmp_path / "out")
    assert (found["jacks"]["reps"], found["balance"]["reps"]) == ("5", "0")
    assert list(found["jacks"])[:9] == [*BATCH_COLUMNS[:7], "reps", "held_s"]


def test_a_folder_with_no_media_is_an_error_row(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing to see\n")
    run = posescope(empty, "--out", tmp_path / "out")
    assert run.returncode == 1
    assert run.stderr.splitlines() == [f"posescope: {empty}: No photos or videos were found in this folder."]
    assert [(r["path"], r["kind"], r["status"]) for r in rows(tmp_path / "out")] == [(str(empty), "folder", "error")]


def test_output_folders_are_sanitised_unique_and_never_inside_the_results(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    (clips / "Day 1 (rain)").mkdir(parents=True)
    for name in ("a b.mp4", "a_b.mov", "A B.MP4"):
        (clips / "Day 1 (rain)" / name).write_bytes(b"")
    (clips / "results" / "old").mkdir(parents=True)
    (clips / "results" / "old" / "x.mp4").write_bytes(b"")  # inside --out: not an input
    (clips / "done" / "take").mkdir(parents=True)
    (clips / "done" / "take" / ".posescope.json").write_text("{}")  # an earlier run's results folder
    (clips / "done" / "take" / "annotated.mp4").write_bytes(b"")
    inputs = find_inputs([clips, tmp_path / "loose.jpg"], clips / "results")
    assert [item.folder for item in inputs] == [PurePosixPath("Day_1_rain", stem) for stem in ("A_B", "a_b-2", "a_b-3")] \
        + [PurePosixPath("loose")]
    assert [item.kind for item in inputs] == ["video"] * 3 + [None]  # loose.jpg does not exist


def test_ray_gives_the_same_results_as_a_local_run(media: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    clips = tmp_path / "clips"
    (clips / "b").mkdir(parents=True)
    shutil.copy(media / "clip.mp4", clips / "clip.mp4")
    shutil.copy(media / "bus.jpg", clips / "b" / "bus.jpg")
    (clips / "b" / "bad.mov").write_text("no video here\n")
    local = posescope(clips, "--out", tmp_path / "local", *FAST)
    on_ray = posescope(clips, "--out", tmp_path / "ray", *FAST, "--ray")
    assert local.returncode == on_ray.returncode == 1, on_ray.stderr
    assert on_ray.stderr.splitlines() == local.stderr.splitlines()  # nothing from Ray itself
    ignore = {"elapsed_s"}
    assert [{k: v for k, v in r.items() if k not in ignore} for r in rows(tmp_path / "ray")] == \
        [{k: v for k, v in r.items() if k not in ignore} for r in rows(tmp_path / "local")]
    for folder, names in (("clip", ("landmarks.csv", "angles.csv", "person1.trc")), ("b/bus", ("landmarks.csv",))):
        assert sorted(p.name for p in (tmp_path / "ray" / folder).iterdir()) == \
            sorted(p.name for p in (tmp_path / "local" / folder).iterdir())
        for name in names:
            assert (tmp_path / "ray" / folder / name).read_bytes() == (tmp_path / "local" / folder / name).read_bytes()


def _ray_task_processes() -> list[int]:
    """Processes running one of our Ray actors' tasks (Ray titles them after the method)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::_Worker.run"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_on_ray_a_task_whose_worker_dies_is_retried_and_the_batch_goes_on(media: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("one.mp4", "two.mp4"):
        shutil.copy(media / "demo.mp4", clips / name)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "analysis", clips, "--out", out, "--no-video", "--ray"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        # A task is under way: its actor's process is titled after the method, and its staging folder exists.
        while not ((running := _ray_task_processes()) and list(out.glob(".*.partial"))):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        os.kill(running[0], signal.SIGKILL)
        assert not (out / "one").exists() or not (out / "two").exists()  # one of them was cut short
        stdout, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    table = rows(out)
    assert [(r["output"], r["status"], r["frames"]) for r in table] == [("one", "ok", "230"), ("two", "ok", "230")]
    assert not list(out.glob(".*.partial"))
