"""`python -m analysis`: the command-line way to analyse photos and videos, with the page's library calls.

Each input gets a folder under --out named after it; a video's folder holds annotated.mp4, landmarks.csv,
angles.csv, summary.json and person<N>.trc, a photo's annotated.png, landmarks.csv and pose.json. The
files are made in a hidden staging folder and moved into place when the input is done, so an input
that fails or is interrupted leaves nothing behind (and an earlier run's results stay as they were).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from analysis.coaching import Coaching
    from analysis.engine import PoseEngine, PoseSettings
    from analysis.exercises import Catalogue
    from analysis.result import ClipOptions
    from analysis.series import Smoothing
    from analysis.video import Progress

PROG = "posescope"

DESCRIPTION = """\
Find people's poses in photos and videos with MediaPipe, on this machine, and write for each input
a folder under --out:
  video: annotated.mp4, landmarks.csv (raw landmarks), angles.csv (smoothed joint and segment
         angles, 2D and 3D), summary.json (settings, counts, range of motion per angle, speeds)
         person<N>.trc (OpenSim markers, metres, Y up) for each person found, series.npz
         (the poses, which the Video page opens again), events.csv (jumps, falls, partial reps)
         and, with --exercise, reps.csv (one row per counted rep: rep, start_s, end_s and its
         figures) with the exercise, count and per-rep figures in summary.json
  photo: annotated.png, landmarks.csv and pose.json (landmarks and angles per person)
"""

EXAMPLES = """\
examples:
  python -m analysis jump.mp4 --out results
      results/jump/ gets annotated.mp4, landmarks.csv, angles.csv, summary.json, person1.trc
  python -m analysis *.jpg --out results --model heavy --max-people 3
      one folder per photo: annotated.png, landmarks.csv, pose.json
  python -m analysis run.mov --out results --start 2 --end 10 --stride 2 --height 1.75 --no-video
      frames from 2 s to 10 s, every second one; speeds in m/s for a person 1.75 m tall
  python -m analysis clip.mp4 --out results --cutoff 0 --privacy
      no low-pass filter; the annotated video shows the skeleton on a blank background
  python -m analysis squats.mp4 --out results --exercise squat
      results/squats/reps.csv: one row per squat with its depth, tempo and cues
  python -m analysis session.mp4 --out results --exercise auto --exercises my_exercises.toml
      the exercise that fits the motion best, among the shipped ones and your own

Exit status: 0 when every input was analysed, 1 when any could not be (each is named on stderr,
the others are still done), 130 when interrupted (the current input's partial results are removed).
A video that breaks off part-way (truncated) counts as analysed: its results cover the part before
the break, and a warning on stderr says so.
"""

# What a run writes into an input's folder: replaced on a re-run, and nothing else there is touched.
OUTPUT_NAMES = re.compile(r"^(annotated\.(mp4|png)|landmarks\.csv|angles\.csv|summary\.json|pose\.json"
                          r"|person\d+\.trc|series\.npz|reps\.csv|events\.csv)$")


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
        prog="python -m analysis", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description=DESCRIPTION)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=Path,
                        help="photos (JPEG, PNG, WebP, BMP) and videos (MP4, MOV, AVI, WebM, MKV, ...)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder for the results: one sub-folder per input, named after it")
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
    return parser


@dataclass(frozen=True)
class Job:
    source: Path  # as the user gave it
    name: str  # the output folder's name


class InputError(Exception):
    """An input that cannot be analysed; the message is one sentence for the user."""


class ProgressLine:
    """One self-rewriting line on a terminal: frames done/total, frames/s and time left. Silent otherwise."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream, self._label = stream, label
        self._enabled = stream.isatty()
        self._shown = False

    def __call__(self, progress: Progress) -> None:
        if not self._enabled:
            return
        left = progress.remaining_s
        left_text = f"{math.ceil(left) // 60}:{math.ceil(left) % 60:02d} left" if math.isfinite(left) else "-:-- left"
        line = (f"{self._label}: {progress.frames_done}/{progress.frames_expected} frames, "
                f"{progress.fps:.1f} frames/s, {left_text}")
        width = shutil.get_terminal_size().columns - 1
        self._stream.write("\r" + line[:width] + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False


# MediaPipe's native code (TensorFlow Lite, absl logging) writes straight to file descriptor 2, below
# Python; GLOG_minloglevel does not reach absl's early messages. These lines are its routine chatter.
_NATIVE_CHATTER = re.compile(rb"^(INFO: Created TensorFlow Lite|WARNING: All log messages before absl::InitializeLog"
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
    args = build_parser().parse_args(argv)
    if args.end is not None and args.end <= args.start:
        build_parser().error(f"--end ({args.end:g} s) must be after --start ({args.start:g} s)")
    with quiet_native_logs() as err:
        return _run(args, err)


def _run(args: argparse.Namespace, err: TextIO) -> int:
    # Imported here so that --help and argument errors answer at once, without loading MediaPipe.
    from analysis.engine import PoseSettings
    from analysis.models import ModelError
    from analysis.result import ClipOptions
    from analysis.series import Smoothing

    from analysis.coaching import AUTO
    from analysis.exercises import ExerciseError, load_catalogue

    try:
        catalogue = load_catalogue(args.exercises)
        if args.exercise and args.exercise != AUTO:
            args.exercise = catalogue.get(args.exercise).name
    except ExerciseError as error:
        print(f"{PROG}: {_one_line(str(error))}", file=err)
        return 2
    settings = PoseSettings(args.model, args.max_people, args.min_detection, args.min_presence, args.min_tracking)
    options = ClipOptions(start_s=args.start, end_s=args.end, stride=args.stride, privacy=args.privacy)
    smoothing = Smoothing(cutoff_hz=args.cutoff or None, max_gap_s=args.max_gap)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"{PROG}: {args.out}: the output folder could not be made ({error.strerror or error}).", file=err)
        return 1
    from analysis.uploads import safe_stems

    names = safe_stems([source.name for source in args.inputs], fallback="input")
    jobs = [Job(source, name) for source, name in zip(args.inputs, names, strict=False)]
    runner = _Runner(args, settings, options, smoothing, catalogue, err)
    failed = False
    current: Job | None = None
    try:
        for current in jobs:
            try:
                runner.run(current)
            except InputError as error:
                failed = True
                print(f"{PROG}: {current.source}: {_one_line(str(error))}", file=err)
    except ModelError as error:
        print(f"{PROG}: {_one_line(str(error))}", file=err)
        return 1
    except KeyboardInterrupt:
        runner.progress_clear()
        what = f" {current.source} was not finished and its partial results were removed" if current else ""
        print(f"{PROG}: interrupted;{what}.", file=err)
        return 130
    finally:
        runner.close()
    return 1 if failed else 0


class _Runner:
    """Analyses one input at a time into its staging folder, then moves the results into place."""

    def __init__(self, args: argparse.Namespace, settings: PoseSettings, options: ClipOptions, smoothing: Smoothing,
                 catalogue: Catalogue, err: TextIO) -> None:
        self.args, self.settings, self.options, self.smoothing, self.err = args, settings, options, smoothing, err
        self.catalogue = catalogue
        self._image_engine: PoseEngine | None = None
        self._progress: ProgressLine | None = None

    def run(self, job: Job) -> None:
        from analysis.images import IMAGE_TYPES

        source = job.source
        if not source.exists():
            raise InputError("There is no such file.")
        if source.is_dir():
            raise InputError("This is a folder; give the photo or video files in it.")
        target = self.args.out / job.name
        staging: Path | None = None
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{job.name}.", suffix=".partial", dir=self.args.out))
            if source.suffix.lower().lstrip(".") in IMAGE_TYPES:
                note = self._photo(job, staging)
            else:
                note = self._video(job, staging)
            _publish(staging, target)
        except OSError as error:  # reading errors became InputErrors already: this is writing
            raise InputError(f"The results could not be written to {target} ({error.strerror or error}).") from None
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        print(f"{target}: {note}", flush=True)

    def _photo(self, job: Job, staging: Path) -> str:
        from analysis.engine import Mode, PoseEngine
        from analysis.images import ImageError, load_image
        from analysis.photo import analyse_photo

        try:
            rgb = load_image(_read(job.source))
        except ImageError as error:
            raise InputError(str(error)) from None
        if self._image_engine is None:
            self._image_engine = PoseEngine(self.settings, Mode.IMAGE)
        result = analyse_photo(self._image_engine, rgb, self.args.privacy)
        (staging / "annotated.png").write_bytes(result.png())
        (staging / "landmarks.csv").write_text(result.landmarks().to_csv(index=False, lineterminator="\n"),
                                               encoding="utf-8")
        (staging / "pose.json").write_text(result.to_json(self.settings, job.source.name), encoding="utf-8")
        people = result.pose.people
        return f"{people} {'person' if people == 1 else 'people'} found" if people else "nobody found"

    def _video(self, job: Job, staging: Path) -> str:
        from analysis.coaching import coach
        from analysis.exports import write_all
        from analysis.series import kinematics
        from analysis.video import analyse_video
        from analysis.video_io import VideoError

        annotated = None if self.args.no_video else staging / "annotated.mp4"
        self._progress = ProgressLine(self.err, job.source.name)
        try:
            result = analyse_video(job.source, self.settings, self.options, annotated, self._progress,
                                   name=job.source.name)
        except VideoError as error:
            raise InputError(str(error)) from None
        except OSError as error:
            raise InputError(f"This file could not be read ({error.strerror or error}).") from None
        finally:
            self.progress_clear()
        series = result.series
        motion = kinematics(series, self.smoothing, self.args.height)
        coaching = coach(result, motion, self.catalogue, self.args.exercise)
        write_all(result, motion, staging, annotated, coaching)
        warnings = [*result.warnings, *(coaching.exercise.warnings if coaching.exercise else ())]
        for warning in warnings:
            print(f"{PROG}: {job.source}: warning: {_one_line(_cli_wording(warning))}", file=self.err)
        people = int(series.present.any(axis=0).sum())
        return (f"{series.frames} frames, {people} {'person' if people == 1 else 'people'}, "
                f"{result.elapsed_s:.1f} s ({result.frames_per_s or 0:.0f} frames/s){_exercise_note(coaching)}")

    def progress_clear(self) -> None:
        if self._progress is not None:
            self._progress.clear()

    def close(self) -> None:
        if self._image_engine is not None:
            self._image_engine.close()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"This file could not be read ({error.strerror or error}).") from None


def _publish(staging: Path, target: Path) -> None:
    """Move the finished files into target, replacing an earlier run's results (and only those)."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if old.is_file() and OUTPUT_NAMES.match(old.name):
            old.unlink()
    for new in sorted(staging.iterdir()):
        os.replace(new, target / new.name)


def _exercise_note(coaching: Coaching) -> str:
    """", 12 reps of squat (suggested, 84 % sure)", or what --exercise auto could not find."""
    analysis, suggestion = coaching.exercise, coaching.suggestion
    if analysis is None:
        return ", no exercise recognised" if suggestion is not None else ""
    exercise = analysis.exercise
    sure = f" (suggested, {suggestion.confidence:.0%} sure)" if suggestion is not None else ""
    if exercise.kind == "hold":
        held = sum(h.held_s for h in analysis.holds)
        return f", {exercise.title.lower()} held {held:.1f} s{sure}"
    return f", {analysis.count()} {'rep' if analysis.count() == 1 else 'reps'} of {exercise.title.lower()}{sure}"


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _cli_wording(warning: str) -> str:
    """analyse_video's warning speaks of 'the results below' (the page); here the results are files."""
    return warning.replace("The results below cover", "The results cover")


if __name__ == "__main__":
    sys.exit(main())
