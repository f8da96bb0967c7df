"""`posescope` (or `python -m analysis`): the command-line way to analyse photos, videos and folders of them,
with the page's library calls; `posescope app` starts the dashboard.

Each input gets a folder under --out named after it (a folder's tree is mirrored), and --out gets batch.csv,
one row per input. The files are made in a hidden staging folder and moved into place when the input is
done, so an input that fails or is interrupted leaves nothing behind (and an earlier run's results stay as
they were); an input whose results are up to date is skipped, so an interrupted batch continues where it
stopped. The work itself is analysis.batch's (and analysis.ray_batch's for --ray).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from analysis.batch import BatchInput, BatchRow

PROG = "posescope"

DESCRIPTION = """\
Find people's poses in photos and videos with MediaPipe, on this machine, and write for each input
a folder under --out (for an input folder, its whole tree of photos and videos, mirrored):
  video: annotated.mp4, landmarks.csv (raw landmarks), angles.csv (smoothed joint and segment
         angles, 2D and 3D), summary.json (settings, counts, range of motion per angle, speeds)
         person<N>.trc (OpenSim markers, metres, Y up) for each person found, series.npz
         (the poses, which the Video page opens again), events.csv (jumps, falls, partial reps)
         and, with --exercise, reps.csv (one row per counted rep: rep, start_s, end_s and its
         figures) with the exercise, count and per-rep figures in summary.json
  photo: annotated.png, landmarks.csv and pose.json (landmarks and angles per person)
and --out/batch.csv: one row per input (path, kind, status ok/warning/error, message, output,
frames, people, duration_s, with --exercise reps and held_s, elapsed_s, skipped).

Inputs are analysed in parallel, one process per core (--jobs), or on a Ray cluster (--ray). An
input whose results exist for the same content and settings is skipped (--force redoes it), so a
batch that was stopped continues where it stopped when run again.

  posescope app [STREAMLIT OPTIONS]   starts the dashboard (e.g. posescope app --server.port 8502)
  posescope compare REFERENCE ATHLETE --out DIR   an athlete's movement against a reference's
"""

EXAMPLES = """\
examples:
  posescope jump.mp4 --out results
      results/jump/ gets annotated.mp4, landmarks.csv, angles.csv, summary.json, person1.trc
  posescope clips/ --out results --no-video
      every photo and video under clips/, e.g. results/team_a/day1/jump/ for clips/team_a/day1/jump.mp4,
      two at a time on two cores, and results/batch.csv
  posescope clips/ --out /shared/results --ray            (or --ray HEAD:6379, or RAY_ADDRESS=...)
      the same batch on a Ray cluster (pip install "posescope[ray]"); inputs and --out on a shared folder
  posescope *.jpg --out results --model heavy --max-people 3
      one folder per photo: annotated.png, landmarks.csv, pose.json
  posescope run.mov --out results --start 2 --end 10 --stride 2 --height 1.75 --no-video
      frames from 2 s to 10 s, every second one; speeds in m/s for a person 1.75 m tall
  posescope clip.mp4 --out results --cutoff 0 --privacy
      no low-pass filter; the annotated video shows the skeleton on a blank background
  posescope squats/ --out results --exercise squat
      results/<clip>/reps.csv: one row per squat with its depth, tempo and cues; reps in batch.csv
  posescope session.mp4 --out results --exercise auto --exercises my_exercises.toml
      the exercise that fits the motion best, among the shipped ones and your own

Exit status: 0 when every input was analysed, 1 when any could not be (each is named on stderr and
in batch.csv, the others are still done), 2 for a bad option, 130 when interrupted (the unfinished
inputs' partial results are removed; run the same command again to continue). A video that breaks off
part-way (truncated) counts as analysed: its results cover the part before the break, and a warning
on stderr says so.
"""


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _at_least(minimum: float, kind: type = float):  # noqa: ANN202 - an argparse type
    def parse(text: str) -> float:
        value = kind(text)
        if not value >= minimum or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {minimum:g} or more, got {text}")
        return value
    return parse


def _positive(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from analysis.models import COMPLEXITIES

    parser = argparse.ArgumentParser(
        prog=_prog_name(), formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description=DESCRIPTION)
    parser.add_argument("inputs", nargs="*", metavar="INPUT", type=Path,
                        help="photos (JPEG, PNG, WebP, BMP), videos (MP4, MOV, AVI, WebM, MKV, ...) and folders "
                             "of them (walked recursively; media found by extension and content)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder for the results: one sub-folder per input, named after it, and batch.csv")
    model = parser.add_argument_group("pose model")
    model.add_argument("--model", choices=COMPLEXITIES, default="full",
                       help="lite is fastest, heavy most accurate (default: %(default)s)")
    model.add_argument("--max-people", type=_at_least(1, int), default=1, metavar="N",
                       help="most people to find in a frame (default: %(default)s)")
    model.add_argument("--min-detection", type=_unit_interval, default=0.5, metavar="P",
                       help="how sure the detector must be that a person is there (default: %(default)s)")
    model.add_argument("--min-presence", type=_unit_interval, default=0.5, metavar="P",
                       help="how sure the landmark model must be that the person is still there (default: %(default)s)")
    model.add_argument("--min-tracking", type=_unit_interval, default=0.5, metavar="P",
                       help="video: below this the detector runs again instead of tracking (default: %(default)s)")
    model.add_argument("--keep-id", type=_at_least(0.0), default=1.0, metavar="S",
                       help="several people: how long someone out of view keeps their ID, in seconds "
                            "(default: %(default)s)")
    video = parser.add_argument_group("video")
    video.add_argument("--start", type=_at_least(0.0), default=0.0, metavar="S",
                       help="analyse from this time in seconds (default: the start)")
    video.add_argument("--end", type=_positive, default=None, metavar="S",
                       help="analyse up to this time in seconds (default: the end)")
    video.add_argument("--stride", type=_at_least(1, int), default=1, metavar="N",
                       help="analyse every Nth frame (default: %(default)s, every frame)")
    video.add_argument("--cutoff", type=_at_least(0.0), default=6.0, metavar="HZ",
                       help="low-pass (Butterworth) cut-off for landmarks before angles and speeds; "
                            "0 for none (default: %(default)s)")
    video.add_argument("--max-gap", type=_at_least(0.0), default=0.25, metavar="S",
                       help="fill gaps where a landmark is lost for up to this many seconds (default: %(default)s)")
    video.add_argument("--height", type=_positive, default=None, metavar="M",
                       help="the person's height in metres, to give speeds in m/s (default: pixels/s)")
    video.add_argument("--no-video", action="store_true", help="skip the annotated video (faster)")
    exercise = parser.add_argument_group("exercise")
    exercise.add_argument("--exercise", metavar="NAME", default=None,
                          help="count this exercise's reps (or time its hold) and check its form: squat, push_up, "
                               "lunge, biceps_curl, shoulder_press, jumping_jack, sit_up, glute_bridge, plank, "
                               "wall_sit, one of your own, or auto to find which fits the motion best")
    exercise.add_argument("--exercises", metavar="FILE", type=Path, default=None,
                          help="a TOML file of your own exercises, adding to or replacing the shipped ones "
                               "(format: analysis/exercises.toml; default: $POSESCOPE_EXERCISES if set)")
    parser.add_argument("--privacy", action="store_true",
                        help="draw skeletons on a blank background: no pixel of the person is kept")
    batch = parser.add_argument_group("batch")
    batch.add_argument("--jobs", type=_at_least(1, int), default=None, metavar="N",
                       help="inputs analysed at once, each in a process of its own (default: one per core, "
                            f"here {_cores()}; with --ray, one per CPU of the cluster)")
    batch.add_argument("--force", action="store_true",
                       help="analyse every input again, also those whose results are up to date")
    batch.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run on Ray: the cluster at ADDRESS (e.g. HEAD:6379, auto) or $RAY_ADDRESS, else a "
                            "local Ray instance; inputs and --out must be on a folder every node shares")
    return parser


def _prog_name() -> str:
    return PROG if Path(sys.argv[0]).name.startswith(PROG) else "python -m analysis"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# MediaPipe's native code (TensorFlow Lite, absl logging) writes straight to file descriptor 2, below
# Python; GLOG_minloglevel does not reach absl's early messages. These lines are its routine chatter.
# TensorFlow Lite writes its "INFO: " prefix apart from the message, so with a batch's workers sharing the
# descriptor another worker's line can land between the two: the prefixes may run into any of them.
_NATIVE_CHATTER = re.compile(rb"^(INFO: |WARNING: )*(Created TensorFlow Lite|All log messages before absl::InitializeLog"
                             rb"|[IW]\d{4} \d\d:\d\d:\d)")


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[TextIO]:
    """Route file descriptor 2 through a filter that drops MediaPipe's routine INFO and WARNING lines and
    passes everything else (errors, fatal messages, anything unexpected) through. Yields a stream on the
    real stderr for our own messages, and sets sys.stderr to it meanwhile."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with open(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if not _NATIVE_CHATTER.match(line):
                        os.write(real, line + b"\n")
            if pending and not _NATIVE_CHATTER.match(pending):
                os.write(real, pending)

    thread = threading.Thread(target=pump, name="native-log-filter", daemon=True)
    thread.start()
    stream = open(os.dup(real), "w", encoding="utf-8", errors="backslashreplace", buffering=1)  # noqa: SIM115
    saved_stderr = sys.stderr
    sys.stderr = stream
    try:
        yield stream
    finally:
        sys.stderr = saved_stderr
        stream.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the pump reads to the end and stops
        thread.join(timeout=2)
        stream.close()
        os.close(real)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["app"]:
        return launch_app(argv[1:])
    if argv[:1] == ["compare"]:
        return compare_command(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ray and not args.inputs and Path(args.ray).exists() and ":" not in args.ray:
        args.inputs, args.ray = [Path(args.ray)], ""  # `--ray clips/ --out x`: clips/ is an input, not an address
    if not args.inputs:
        parser.error("give at least one INPUT: a photo, a video or a folder of them")
    if args.end is not None and args.end <= args.start:
        parser.error(f"--end ({args.end:g} s) must be after --start ({args.start:g} s)")
    with quiet_native_logs() as err:
        try:
            return _run(args, err)
        except KeyboardInterrupt:  # before any input started (reading them, starting Ray): nothing to remove
            print(f"{PROG}: interrupted before any input was analysed.", file=err)
            return 130


def launch_app(streamlit_options: list[str]) -> int:
    """`posescope app`: the dashboard, with its own settings (.streamlit/ beside dashboard.py), from any folder."""
    from analysis.models import COMPLEXITIES, REBUILD_COMMAND, bundle_status

    problems = [problem for complexity in COMPLEXITIES if (problem := bundle_status(complexity))]
    if problems:
        print(f"{PROG}: {problems[0]} Rebuild the bundles with: {REBUILD_COMMAND}", file=sys.stderr)
        return 1
    dashboard = Path(__file__).resolve().parent.parent / "dashboard.py"
    # glibc's per-thread arenas keep freed memory spread out under a thread per stream and per job (start.sh).
    env = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}
    command = [sys.executable, "-m", "streamlit", "run", str(dashboard), *streamlit_options]
    os.execve(sys.executable, command, env)
    return 0  # not reached: execve replaces this process


COMPARE_DESCRIPTION = """\
Compare an athlete's performance with a reference's: each a video or a saved analysis (series.npz),
at any frame rates. The two are synchronised by cross-correlating a signal (the hips' vertical speed
unless --signal says otherwise; --offset sets it by hand), then the joint angles are aligned in time
by dynamic time warping, so phases line up when one moves faster. DIR gets comparison.json (offset_s:
the time in the reference at which the athlete's video starts; the warping path; per joint the mean
and largest difference in degrees and where it is), aligned.csv (the aligned curves) and
comparison.png (their chart)."""


def compare_command(argv: list[str]) -> int:
    """`posescope compare REFERENCE ATHLETE --out DIR`: exit 0, or 1 with one line on stderr, 2 for a bad option."""
    from analysis.compare import DEFAULT_JOINTS, SIGNALS
    from analysis.models import COMPLEXITIES

    parser = argparse.ArgumentParser(prog=f"{PROG} compare", description=COMPARE_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path, metavar="REFERENCE", help="the model performance: video or .npz")
    parser.add_argument("athlete", type=Path, metavar="ATHLETE", help="the performance to compare: video or .npz")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="the folder for the three files")
    parser.add_argument("--signal", choices=SIGNALS, default=SIGNALS[0], metavar="NAME",
                        help="what synchronises the two (default: %(default)s; or an angle, e.g. 'left knee')")
    parser.add_argument("--offset", type=float, default=None, metavar="S",
                        help="the time in the reference at which the athlete's video starts, instead of finding it")
    parser.add_argument("--joints", default=",".join(DEFAULT_JOINTS), metavar="A,B,...",
                        help="the angles to compare, comma-separated (default: %(default)s)")
    parser.add_argument("--reference-person", type=_at_least(1, int), default=1, metavar="N",
                        help="which person of the reference (default: %(default)s)")
    parser.add_argument("--athlete-person", type=_at_least(1, int), default=1, metavar="N",
                        help="which person of the athlete's video (default: %(default)s)")
    parser.add_argument("--model", choices=COMPLEXITIES, default="full", help="pose model for videos (default: full)")
    args = parser.parse_args(argv)
    joints = tuple(joint.strip() for joint in args.joints.split(",") if joint.strip())
    with quiet_native_logs() as err:
        try:
            return _compare(args, joints, err)
        except KeyboardInterrupt:
            print(f"{PROG} compare: interrupted; nothing was written.", file=err)
            return 130


def _compare(args: argparse.Namespace, joints: tuple[str, ...], err: TextIO) -> int:
    from analysis.compare import ComparisonError, Performance, compare, write_comparison
    from analysis.engine import PoseSettings
    from analysis.models import ModelError, verified_bundle
    from analysis.result import ClipResult, RecordingError
    from analysis.stream import PoseEstimationError
    from analysis.video import analyse_video
    from analysis.video_io import VideoError

    def opened(path: Path) -> ClipResult:
        if path.suffix.lower() == ".npz":
            return ClipResult.from_npz(path.read_bytes(), name=path.name)
        verified_bundle(args.model)
        return analyse_video(path, PoseSettings(args.model), annotated_path=None, name=path.name)

    try:
        performances = []
        for path, person in ((args.reference, args.reference_person), (args.athlete, args.athlete_person)):
            try:
                performances.append(Performance.of(opened(path), person - 1))
            except (ComparisonError, RecordingError, VideoError, PoseEstimationError) as error:
                raise ComparisonError(f"{path}: {error}") from error
        comparison = compare(*performances, joints=joints, signal=args.signal, offset_s=args.offset)
        write_comparison(comparison, args.out)
    except (ComparisonError, ModelError) as error:
        print(f"{PROG} compare: {_one_line(str(error))}", file=err)
        return 1
    except OSError as error:
        print(f"{PROG} compare: {error.filename or args.out}: {error.strerror or error}", file=err)
        return 1
    largest = max(comparison.differences, key=lambda difference: difference.mean_abs_deg)
    print(f"{args.out}: the athlete's video starts at {comparison.sync.offset_s:.3f} s of the reference; the largest "
          f"mean difference is the {largest.joint}, {largest.mean_abs_deg:.1f}° (at most {largest.max_abs_deg:.0f}° "
          f"at {largest.max_at_reference_s:.2f} s of the reference)")
    return 0


def _run(args: argparse.Namespace, err: TextIO) -> int:
    # Imported here so that --help and argument errors answer at once, without loading MediaPipe.
    from analysis.batch import BatchSettings, Interrupted, expected_frames_of, find_inputs, plan
    from analysis.local_batch import run_local
    from analysis.coaching import AUTO
    from analysis.engine import PoseSettings
    from analysis.exercises import ExerciseError, load_catalogue
    from analysis.models import ModelError, verified_bundle
    from analysis.result import ClipOptions
    from analysis.series import Smoothing

    try:
        catalogue = load_catalogue(args.exercises)
        if args.exercise and args.exercise != AUTO:
            args.exercise = catalogue.get(args.exercise).name
        verified_bundle(args.model)
    except ExerciseError as error:
        print(f"{PROG}: {_one_line(str(error))}", file=err)
        return 2
    except ModelError as error:
        print(f"{PROG}: {_one_line(str(error))}", file=err)
        return 1
    settings = BatchSettings(
        PoseSettings(args.model, args.max_people, args.min_detection, args.min_presence, args.min_tracking,
                     args.keep_id),
        ClipOptions(start_s=args.start, end_s=args.end, stride=args.stride, privacy=args.privacy),
        Smoothing(cutoff_hz=args.cutoff or None, max_gap_s=args.max_gap), args.height, args.exercise,
        args.exercises.resolve() if args.exercises else None, annotated_video=not args.no_video)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"{PROG}: {args.out}: the output folder could not be made ({error.strerror or error}).", file=err)
        return 1
    items = find_inputs(args.inputs, args.out)
    todo, up_to_date = plan(items, settings, args.out, redo=args.force)
    report = _Report(args.out, args.inputs, items, bool(args.exercise), err,
                     sum(expected_frames_of(item, settings.clip) for item in todo))
    for item, row in up_to_date:
        report.row(item, row, write=False)
    try:
        if args.ray is not None:
            from analysis.ray_batch import RayError, run_on_ray

            try:
                run_on_ray(todo, settings, args.out.resolve(), args.ray or None, args.jobs, report.row, report.frames)
            except RayError as error:
                report.close()
                print(f"{PROG}: {_one_line(str(error))}", file=err)
                return 1
        else:
            run_local(todo, settings, args.out, args.jobs or _cores(), report.row, report.frames)
    except Interrupted as stopped:
        report.close()
        print(f"{PROG}: interrupted;{_unfinished(stopped)}", file=err)
        return 130
    report.close()
    return 1 if report.failed else 0


class _Report:
    """What the user sees as the batch goes: one progress line on a terminal (files done, frames/s, time left),
    a line per finished input, and batch.csv rewritten as each input finishes (in the inputs' order)."""

    def __init__(self, out: Path, given: list[Path], items: list[BatchInput], with_exercise: bool, err: TextIO,
                 total_frames: int) -> None:
        from tqdm import tqdm

        from analysis.batch import BATCH_CSV

        self._csv, self._with_exercise, self._err = out / BATCH_CSV, with_exercise, err
        self._order = {item: i for i, item in enumerate(items)}
        self._rows: dict[int, BatchRow] = {}
        self._lock = threading.Lock()
        self._bar = tqdm(total=total_frames, unit="frame", file=err, disable=None, dynamic_ncols=True, leave=False,
                         desc=f"0/{len(items)} files",
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames "
                                    "[{elapsed}<{remaining}, {rate_noinv_fmt}]")
        self._empty_folders = [_empty_folder_row(folder) for folder in given
                               if folder.is_dir() and not any(item.source.is_relative_to(folder) for item in items)]
        for row in self._empty_folders:
            self._bar.write(f"{PROG}: {row.path}: {row.message}", file=err)
        self.failed = bool(self._empty_folders)

    def frames(self, count: int) -> None:
        self._bar.update(count)

    def row(self, item: BatchInput, row: BatchRow, write: bool = True) -> None:
        """Show an input's outcome and (unless write is False: close() will) rewrite batch.csv with it."""
        with self._lock:
            self._rows[self._order[item]] = row
            self._bar.set_description_str(f"{len(self._rows)}/{len(self._order)} files", refresh=False)
            if row.status == "error":
                self.failed = True
                self._bar.write(f"{PROG}: {row.path}: {row.message}", file=self._err)
            else:
                self._bar.write(f"{self._csv.parent / row.output}: {row.note}", file=sys.stdout)
                for warning in row.warnings:
                    self._bar.write(f"{PROG}: {row.path}: warning: {warning}", file=self._err)
            if write:
                self._write()

    def close(self) -> None:
        self._bar.close()
        with self._lock:
            self._write()

    def _write(self) -> None:
        from analysis.batch import write_batch_csv

        rows = [*self._empty_folders, *(self._rows[key] for key in sorted(self._rows))]
        write_batch_csv(self._csv, rows, self._with_exercise)


def _empty_folder_row(folder: Path) -> BatchRow:
    from analysis.batch import BatchRow

    return BatchRow(str(folder), "folder", "error", "No photos or videos were found in this folder.")


def _unfinished(stopped: Exception) -> str:
    """' clip.mp4 was not finished and its partial results were removed.', and what was not started."""
    unfinished = [str(item.source) for item in getattr(stopped, "unfinished", [])]
    not_started = getattr(stopped, "not_started", 0)
    text = ""
    if len(unfinished) == 1:
        text = f" {unfinished[0]} was not finished and its partial results were removed."
    elif unfinished:
        text = f" {', '.join(unfinished)} were not finished and their partial results were removed."
    if not_started:
        text += (f" {not_started} {'input was' if not_started == 1 else 'inputs were'} not started;"
                 " run the same command again to continue.")
    return text or " every input had finished."


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
