"""Batch analysis: folders of photos and videos into a mirrored tree of results, with batch.csv and resuming.

What a batch is made of:
- `find_inputs` walks the folders it is given (recursively), keeps media by extension or content, and
  names each input's results folder: the input folder's structure mirrored under --out, every part of it
  sanitised (a user's file name never becomes a path as it is).
- `Analyser` analyses one input into a staging folder and moves it into place when it is done, with a
  marker that records the content and the settings: a later batch skips an input whose results are up to
  date, and an interrupted batch leaves nothing half-written. One Analyser per process keeps its models.
- `plan` tells which inputs are up to date; analysis.local_batch runs the others in this process or in a
  pool of processes, analysis.ray_batch on Ray.
- `write_batch_csv` writes one row per input.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

import filetype

from analysis.engine import PoseSettings
from analysis.images import IMAGE_TYPES
from analysis.result import ClipOptions
from analysis.series import Smoothing
from analysis.uploads import safe_name, safe_stems

if TYPE_CHECKING:
    from analysis.coaching import Coaching
    from analysis.engine import PoseEngine
    from analysis.exercises import Catalogue

Kind = Literal["photo", "video"]
Status = Literal["ok", "warning", "error"]

VIDEO_SUFFIXES = ("mp4", "mov", "m4v", "avi", "webm", "mkv", "mts", "m2ts", "ts", "3gp", "mpg", "mpeg", "wmv", "flv",
                  "ogv", "y4m")
MARKER = ".posescope.json"
MARKER_FORMAT = "posescope-batch/1"
BATCH_CSV = "batch.csv"

# What a run writes into an input's folder: replaced on a re-run, and nothing else there is touched.
OUTPUT_NAMES = re.compile(r"^(annotated\.(mp4|png)|landmarks\.csv|angles\.csv|summary\.json|pose\.json"
                          r"|person\d+\.trc|series\.npz|reps\.csv|events\.csv|\.posescope\.json)$")


class InputError(Exception):
    """An input that cannot be analysed; the message is one sentence for the user."""


@dataclass(frozen=True)
class BatchInput:
    """source: the file as given or found. folder: its results folder, relative to --out."""

    source: Path
    folder: PurePosixPath
    kind: Kind | None  # None: not a photo or video as far as its name and first bytes tell
    digest: str | None = field(default=None, compare=False)  # of its content, once read


@dataclass(frozen=True)
class BatchSettings:
    """Everything that decides an input's results: part of the marker that makes a re-run skip it."""

    pose: PoseSettings = PoseSettings()
    clip: ClipOptions = ClipOptions()
    smoothing: Smoothing = Smoothing()
    height_m: float | None = None
    exercise: str | None = None
    exercises_file: Path | None = None
    annotated_video: bool = True

    def digest(self) -> str:
        user_exercises = (file_digest(self.exercises_file) if self.exercise and self.exercises_file else None)
        described = {"pose": dataclasses.asdict(self.pose), "clip": dataclasses.asdict(self.clip),
                     "smoothing": dataclasses.asdict(self.smoothing), "height_m": self.height_m,
                     "exercise": self.exercise, "exercises_file": user_exercises,
                     "annotated_video": self.annotated_video}
        return hashlib.blake2b(json.dumps(described, sort_keys=True).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class BatchRow:
    """One input's line in batch.csv, and what the command prints for it (note on stdout, warnings on stderr)."""

    path: str
    kind: str
    status: Status
    message: str = ""
    output: str = ""
    frames: int | None = None
    people: int | None = None
    duration_s: float | None = None
    reps: int | None = None
    held_s: float | None = None
    elapsed_s: float | None = None
    skipped: bool = False
    note: str = field(default="", compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)


BATCH_COLUMNS = ("path", "kind", "status", "message", "output", "frames", "people", "duration_s", "elapsed_s",
                 "skipped")
EXERCISE_COLUMNS = ("reps", "held_s")


def file_digest(path: Path) -> str:
    """BLAKE2b (128 bits) of the file's bytes, read in chunks."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def media_kind(path: Path) -> Kind | None:
    """A photo or a video by its first bytes where they tell, else by its extension."""
    try:
        guess = filetype.guess(str(path))
    except OSError:
        guess = None
    if guess is not None and guess.mime.split("/")[0] in ("image", "video"):
        return "photo" if guess.mime.startswith("image/") else "video"
    suffix = path.suffix.lower().lstrip(".")
    return "photo" if suffix in IMAGE_TYPES else "video" if suffix in VIDEO_SUFFIXES else None


def find_inputs(paths: Sequence[Path], out: Path) -> list[BatchInput]:
    """Each given file, and every photo and video under each given folder (sorted; hidden files, the --out
    folder and earlier results left out). A given file's results go to OUT/<stem>/, a found file's to the same place relative to
    --out as it has in its folder; names that clash after sanitising get -2, -3, ..."""
    wanted: list[tuple[Path, tuple[str, ...], Kind | None]] = []
    out_resolved = out.resolve()
    for path in paths:
        if path.is_dir():
            for found in _walk(path, out_resolved):
                kind = media_kind(found)
                if kind is not None:
                    parts = found.relative_to(path).parts
                    wanted.append((found, tuple(safe_name(part, "folder") for part in parts[:-1]), kind))
        else:
            wanted.append((path, (), media_kind(path) if path.is_file() else None))
    by_folder: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for index, (_, parent, _) in enumerate(wanted):
        by_folder[parent].append(index)
    folders: dict[int, PurePosixPath] = {}
    for parent, indices in by_folder.items():
        stems = safe_stems([wanted[i][0].name for i in indices], fallback="input")
        for i, stem in zip(indices, stems, strict=True):
            folders[i] = PurePosixPath(*parent, stem)
    return [BatchInput(source, folders[i], kind) for i, (source, _, kind) in enumerate(wanted)]


def _walk(folder: Path, skip: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip
                         and not (here / d / MARKER).exists())  # an earlier run's results are not inputs
        yield from (here / name for name in sorted(files) if not name.startswith("."))


def expected_frames_of(item: BatchInput, options: ClipOptions) -> int:
    """About how many frames an input will take, for the batch's progress: from the container's header only."""
    if item.kind != "video":
        return 1
    from analysis.video_io import frame_estimate

    try:
        frames, fps = frame_estimate(item.source)
    except Exception:  # noqa: BLE001 - a file that cannot be read fails in its own row, later
        return 1
    start = options.start_s * fps
    end = frames if options.end_s is None else min(frames, options.end_s * fps)
    return max(1, round((end - start) / options.stride))


def plan(items: Sequence[BatchInput], settings: BatchSettings, out: Path,
         redo: bool = False) -> tuple[list[BatchInput], list[tuple[BatchInput, BatchRow]]]:
    """The inputs to analyse (with their content's digest), and the rows of those whose results are up to date:
    the same content analysed with the same settings (redo: none are). Read here, before any worker starts,
    so that a batch run again after it finished or was stopped costs a read of each input and nothing more."""
    settings_digest = settings.digest()
    todo, done = [], []
    for item in items:
        try:
            digest = file_digest(item.source) if item.kind else None
        except OSError:
            digest = None  # the worker says why, in its row
        row = None if redo or digest is None else _up_to_date(item, out / item.folder, digest, settings_digest)
        if row is None:
            todo.append(dataclasses.replace(item, digest=digest))
        else:
            done.append((item, row))
    return todo, done


def _up_to_date(item: BatchInput, target: Path, source_digest: str, settings_digest: str) -> BatchRow | None:
    try:
        marker = json.loads((target / MARKER).read_text(encoding="utf-8"))
        if (marker.get("format") != MARKER_FORMAT or marker.get("source") != source_digest
                or marker.get("settings") != settings_digest):
            return None
        return dataclasses.replace(BatchRow(**marker["row"]), path=str(item.source), skipped=True,
                                   note="up to date (analysed before with the same content and settings)")
    except (OSError, ValueError, TypeError, KeyError):
        return None


class Analyser:
    """Analyses inputs one at a time; keeps the photo model loaded (a video gets a fresh one: timestamps restart)."""

    def __init__(self, settings: BatchSettings) -> None:
        from analysis.exercises import load_catalogue

        self.settings = settings
        self.catalogue: Catalogue = load_catalogue(settings.exercises_file)
        self._settings_digest = settings.digest()
        self._photo_engine: PoseEngine | None = None

    def run(self, item: BatchInput, out: Path, on_frames: Callable[[int], None] | None = None,
            stop: threading.Event | None = None) -> BatchRow:
        """The input's row; its results are in out/item.folder when the row is not an error. Raises only when
        stopped (analysis.stream.Cancelled, KeyboardInterrupt): its partial results are removed first."""
        started = time.perf_counter()
        target = out / item.folder
        try:
            if item.kind is None:
                raise InputError(_not_media(item.source))
            source_digest = item.digest or file_digest(item.source)
            row = self._analyse(item, out, target, source_digest, on_frames, stop, started)
        except InputError as error:
            return BatchRow(str(item.source), item.kind or "", "error", _one_line(str(error)),
                            elapsed_s=round(time.perf_counter() - started, 2))
        except OSError as error:
            return BatchRow(str(item.source), item.kind or "", "error", _one_line(_os_reason(item.source, error)),
                            elapsed_s=round(time.perf_counter() - started, 2))
        return row

    def close(self) -> None:
        if self._photo_engine is not None:
            self._photo_engine.close()
            self._photo_engine = None

    def _analyse(self, item: BatchInput, out: Path, target: Path, source_digest: str,
                 on_frames: Callable[[int], None] | None, stop: threading.Event | None, started: float) -> BatchRow:
        staging = Path(tempfile.mkdtemp(prefix=f".{item.folder.name}.", suffix=".partial", dir=out))
        try:
            if item.kind == "photo":
                if stop is not None and stop.is_set():
                    from analysis.stream import Cancelled

                    raise Cancelled("The analysis was cancelled.")
                row = self._photo(item, staging)
                if on_frames:
                    on_frames(1)
            else:
                row = self._video(item, staging, on_frames, stop)
            row = dataclasses.replace(row, output=item.folder.as_posix(),
                                      elapsed_s=round(time.perf_counter() - started, 2))
            marker = {"format": MARKER_FORMAT, "source": source_digest, "settings": self._settings_digest,
                      "row": {k: v for k, v in dataclasses.asdict(row).items() if k not in ("note", "warnings")}}
            (staging / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
            try:
                publish(staging, target)
            except OSError as error:
                raise InputError(f"The results could not be written to {target} ({error.strerror or error}).") \
                    from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return row

    def _photo(self, item: BatchInput, staging: Path) -> BatchRow:
        from analysis.engine import Mode, PoseEngine
        from analysis.images import ImageError, load_image
        from analysis.photo import analyse_photo

        try:
            rgb = load_image(item.source.read_bytes())
        except ImageError as error:
            raise InputError(str(error)) from None
        if self._photo_engine is None:
            self._photo_engine = PoseEngine(self.settings.pose, Mode.IMAGE)
        result = analyse_photo(self._photo_engine, rgb, self.settings.clip.privacy)
        (staging / "annotated.png").write_bytes(result.png())
        (staging / "landmarks.csv").write_text(result.landmarks().to_csv(index=False, lineterminator="\n"),
                                               encoding="utf-8")
        (staging / "pose.json").write_text(result.to_json(self.settings.pose, item.source.name), encoding="utf-8")
        people = result.pose.people
        note = f"{people} {'person' if people == 1 else 'people'} found" if people else "nobody found"
        return BatchRow(str(item.source), "photo", "ok", frames=1, people=people, note=note)

    def _video(self, item: BatchInput, staging: Path, on_frames: Callable[[int], None] | None,
               stop: threading.Event | None) -> BatchRow:
        from analysis.coaching import coach
        from analysis.exports import write_all
        from analysis.series import kinematics
        from analysis.video import analyse_video
        from analysis.video_io import VideoError

        annotated = staging / "annotated.mp4" if self.settings.annotated_video else None
        reported = 0

        def progress(progress) -> None:  # noqa: ANN001 - analysis.stream.Progress
            nonlocal reported
            if on_frames and progress.frames_done > reported:
                on_frames(progress.frames_done - reported)
                reported = progress.frames_done

        try:
            result = analyse_video(item.source, self.settings.pose, self.settings.clip, annotated, progress,
                                   name=item.source.name, stop=stop)
        except VideoError as error:
            raise InputError(str(error)) from None
        series = result.series
        motion = kinematics(series, self.settings.smoothing, self.settings.height_m)
        coaching = coach(result, motion, self.catalogue, self.settings.exercise)
        write_all(result, motion, staging, annotated, coaching)
        warnings = tuple(_one_line(w.replace("The results below cover", "The results cover"))
                         for w in (*result.warnings, *(coaching.exercise.warnings if coaching.exercise else ())))
        people = int(series.present.any(axis=0).sum())
        reps, held = _exercise_figures(coaching)
        note = (f"{series.frames} frames, {people} {'person' if people == 1 else 'people'}, "
                f"{result.elapsed_s:.1f} s ({result.frames_per_s or 0:.0f} frames/s){_exercise_note(coaching)}")
        duration = result.source.video.duration_s if result.source.video else None
        return BatchRow(str(item.source), "video", "warning" if warnings else "ok", " ".join(warnings),
                        frames=series.frames, people=people,
                        duration_s=round(duration, 3) if duration is not None else None, reps=reps, held_s=held,
                        note=note, warnings=warnings)


def publish(staging: Path, target: Path) -> None:
    """Move the finished files into target, replacing an earlier run's results (and only those)."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if old.is_file() and OUTPUT_NAMES.match(old.name):
            old.unlink()
    for new in sorted(staging.iterdir()):
        os.replace(new, target / new.name)


def write_batch_csv(path: Path, rows: Iterable[BatchRow], with_exercise: bool) -> None:
    """batch.csv, replaced in one step so that a reader (or an interrupted run) never sees half a file."""
    columns = (*BATCH_COLUMNS[:7], *(EXERCISE_COLUMNS if with_exercise else ()), *BATCH_COLUMNS[7:])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = dataclasses.asdict(row)
        writer.writerow(["" if values[c] is None else str(values[c]).lower() if isinstance(values[c], bool)
                         else values[c] for c in columns])
    temporary = path.with_name(f".{path.name}.writing")
    temporary.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(temporary, path)


def failed_row(item: BatchInput, error: BaseException) -> BatchRow:
    """The row of an input whose analysis broke down (a crashed worker, a bug): the batch goes on without it."""
    reason = _one_line(str(error)) or type(error).__name__
    return BatchRow(str(item.source), item.kind or "", "error", f"The analysis failed unexpectedly: {reason}")


# ---- what the runners share ------------------------------------------------------------------------------------

RowHandler = Callable[[BatchInput, BatchRow], None]


class Interrupted(Exception):
    """The user stopped the batch; unfinished: the inputs whose partial results were removed."""

    def __init__(self, unfinished: list[BatchInput], not_started: int) -> None:
        super().__init__("interrupted")
        self.unfinished, self.not_started = unfinished, not_started


def one_thread_per_worker() -> None:
    """For a process of a pool that has one per core: OpenCV and the decoder each on one thread, as more
    threads would only compete with the other workers for the same cores (and cost CPU time switching)."""
    import cv2

    from analysis.video_io import single_threaded_decoding

    cv2.setNumThreads(1)
    single_threaded_decoding()


# ---- wording ---------------------------------------------------------------------------------------------------

def _exercise_figures(coaching: Coaching) -> tuple[int | None, float | None]:
    analysis = coaching.exercise
    if analysis is None:
        return (0, None) if coaching.suggestion is not None else (None, None)
    if analysis.exercise.kind == "hold":
        return None, round(sum(h.held_s for h in analysis.holds), 2)
    return analysis.count(), None


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


def _not_media(path: Path) -> str:
    if not path.exists():
        return "There is no such file or folder."
    if path.is_dir():
        return "This is a folder; give the photo or video files in it."
    return ("This is not a photo or a video PoseScope can read (photos: JPEG, PNG, WebP, BMP; videos: MP4, MOV, "
            "AVI, WebM, MKV, ...).")


def _os_reason(path: Path, error: OSError) -> str:
    if isinstance(error, FileNotFoundError) and not path.exists():
        return "There is no such file or folder."
    return f"This file could not be read ({error.strerror or error})."


def _one_line(message: str) -> str:
    return " ".join(message.split())
