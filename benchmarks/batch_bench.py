"""Batch analysis speed: the CLI over a folder of phone-like clips, as a ratio to pose inference (issue 12).

    python benchmarks/batch_bench.py                         # 8 clips of 10 s, all runs: ~13 min on 2 cores
    python benchmarks/batch_bench.py --clips 2 --seconds 2   # a quick check of the whole chain
    python benchmarks/batch_bench.py --runs parallel --variants no-video

The input is real footage, neither looped nor upscaled: the 1080x1920 (portrait) 60 fps camera takes of
Pose2Sim's demos (the pose2sim wheel from PyPI; 8 distinct takes of 100 frames, as Demo_Batch's videos are
byte-for-byte copies of Demo_SinglePerson's and Demo_MultiPerson's). Clip k joins different takes one
after another, k, k+1, ... (mod 8), each cropped (or padded) to exactly 1080x1920, and is encoded as a
phone would: H.264 High, yuv420p, 16 Mbit/s. The clips are kept in a cache folder and made again only
when missing or made with another recipe (the first time: ~4 min for 8 clips).

It measures, in one run:
  inference_fps   MediaPipe pose estimation alone (VIDEO mode, one engine, one process) on frames of
                  the clips already decoded at the analysis size: the rate every figure is compared with,
                  measured before and after the runs, the faster of the two;
  runs            `python -m analysis FOLDER --out OUT` as a subprocess, wall time from process start to
                  exit, with --jobs 1 (sequential), the default one worker per core (parallel) and --ray
                  (a local Ray instance, started and stopped by the run), each with the annotated video and
                  with --no-video; frames_per_s = all frames / wall time, ratio = frames_per_s /
                  inference_fps (target: at least 1.0 for the parallel batch); machine_busy_cores = CPU
                  time of the whole machine during the run / wall time (anything else running shows there,
                  as it does in load_average: on a busy machine the figures mean little);
  per_core_rate   the parallel rate / cores, for sizing a cluster.
Every run's batch.csv must list each clip as ok or warning and add up to all frames, or the benchmark fails.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import hashlib
import json
import math
import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from fnmatch import fnmatch
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "media")]

from analysis.engine import Mode, PoseEngine, PoseSettings  # noqa: E402
from analysis.result import ClipOptions  # noqa: E402
from analysis.video_io import read_frames  # noqa: E402
from fetch_media import _download_wheel  # noqa: E402

WHEEL = ("pose2sim", "0.10.49")
TAKES = "Pose2Sim/Demo_*/videos/cam0*.mp4"  # fnmatch's * crosses "/": Demo_Batch/Trial_N/videos too
TAKE_FRAMES = 100  # each take's length; a clip never uses a take twice
WIDTH, HEIGHT, FPS = 1080, 1920, 60
ENCODER = {"codec": "libx264", "profile": "high", "preset": "veryfast", "pix_fmt": "yuv420p", "bit_rate": 16_000_000}
INFERENCE_FRAMES_PER_CLIP = 300
INFERENCE_CLIPS = 3
RUN_NAMES = ("sequential", "parallel", "ray")
VARIANT_NAMES = ("video", "no-video")
GOOD_STATUSES = {"ok", "warning"}
LOCAL_ENV = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}  # --ray: a local instance


@dataclass(frozen=True)
class Recipe:
    """Everything the clips depend on; a cache folder made with another recipe is made again."""

    wheel: str
    takes: str
    frames_per_clip: int
    size: tuple[int, int]
    fps: int
    encoder: tuple[tuple[str, object], ...]
    order: str = "clip k: distinct takes k, k+1, ... (mod their count), sorted by member name"

    @classmethod
    def for_seconds(cls, seconds: float) -> Recipe:
        return cls(f"{WHEEL[0]}=={WHEEL[1]}", TAKES, round(seconds * FPS), (WIDTH, HEIGHT), FPS,
                   tuple(ENCODER.items()))

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


# --- the input clips ------------------------------------------------------------------------------------------


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "posescope-bench" / "batch"


def clip_path(folder: Path, index: int) -> Path:
    return folder / f"clip{index}.mp4"


def clip_is_valid(path: Path, recipe: Recipe) -> bool:
    """The header says H.264 at the recipe's size, rate and frame count (clips are written whole, then renamed)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return (stream.codec_context.name == "h264" and (stream.width, stream.height) == recipe.size
                    and stream.average_rate == recipe.fps and stream.frames == recipe.frames_per_clip)
    except (OSError, av.FFmpegError, IndexError):
        return False


def distinct_takes(wheel: Path, folder: Path) -> list[Path]:
    """Write each distinct take once (the wheel ships some twice), named after its first member outside Demo_Batch."""
    with zipfile.ZipFile(wheel) as archive:
        members = sorted((m for m in archive.namelist() if fnmatch(m, TAKES)), key=lambda m: ("Demo_Batch" in m, m))
        by_digest: dict[str, tuple[str, bytes]] = {}
        for member in members:
            data = archive.read(member)
            by_digest.setdefault(hashlib.sha256(data).hexdigest(), (member, data))
    paths = []
    for member, data in sorted(by_digest.values()):
        path = folder / member.replace("/", "_")
        path.write_bytes(data)
        paths.append(path)
    return paths


def fit_to_size(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop, or pad with black, to exactly width x height: a real frame, never rescaled."""
    for axis, size in ((0, height), (1, width)):
        extra = rgb.shape[axis] - size
        if extra > 0:
            rgb = rgb.take(range(extra // 2, extra // 2 + size), axis=axis)
        elif extra < 0:
            padding = [(0, 0)] * 3
            padding[axis] = (-extra // 2, -extra - (-extra // 2))
            rgb = np.pad(rgb, padding)
    return np.ascontiguousarray(rgb)


def encode_clip(path: Path, takes: list[Path], recipe: Recipe) -> None:
    """Join the takes' frames into one clip, written to a temporary name and renamed when complete."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    width, height = recipe.size
    written = 0
    with av.open(str(partial), "w", format="mp4") as out:
        stream = out.add_stream(ENCODER["codec"], rate=recipe.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, ENCODER["pix_fmt"]
        stream.bit_rate = ENCODER["bit_rate"]
        stream.options = {"profile": ENCODER["profile"], "preset": ENCODER["preset"]}
        for take in takes:
            with av.open(str(take)) as source:
                for frame in source.decode(video=0):
                    if written == recipe.frames_per_clip:
                        break
                    picture = av.VideoFrame.from_ndarray(fit_to_size(frame.to_ndarray(format="rgb24"), width, height),
                                                         format="rgb24")
                    picture.pts, picture.time_base = written, Fraction(1, recipe.fps)
                    out.mux(stream.encode(picture))
                    written += 1
        out.mux(stream.encode(None))
    if written != recipe.frames_per_clip:
        partial.unlink()
        raise RuntimeError(f"{path.name}: the takes gave {written} frames, not {recipe.frames_per_clip}")
    os.replace(partial, path)


def ensure_clips(folder: Path, count: int, recipe: Recipe) -> list[Path]:
    """Clips 0..count-1 in `folder`, reusing the valid ones; downloads the wheel only if one must be made."""
    folder.mkdir(parents=True, exist_ok=True)
    recipe_file = folder / "recipe.json"
    if not recipe_file.is_file() or recipe_file.read_text() != recipe.as_json():
        for old in folder.glob("clip*.mp4"):
            old.unlink()
        recipe_file.write_text(recipe.as_json())
    paths = [clip_path(folder, k) for k in range(count)]
    missing = [k for k, path in enumerate(paths) if not clip_is_valid(path, recipe)]
    if missing:
        with tempfile.TemporaryDirectory(prefix="posescope-batch-bench-") as scratch:
            takes = distinct_takes(_download_wheel(*WHEEL, Path(scratch)), Path(scratch))
            per_clip = math.ceil(recipe.frames_per_clip / TAKE_FRAMES)
            if per_clip > len(takes):
                raise SystemExit(f"{recipe.frames_per_clip} frames need {per_clip} takes; the wheel has {len(takes)}")
            for k in missing:
                started = time.perf_counter()
                encode_clip(paths[k], [takes[(k + j) % len(takes)] for j in range(per_clip)], recipe)
                print(f"made {paths[k]} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return paths


# --- the reference: inference alone -------------------------------------------------------------------------


def inference_rate(paths: list[Path], frames_per_clip: int, settings: PoseSettings, max_side: int,
                   fps: int) -> dict[str, float]:
    """Pose estimation alone, one engine, on frames decoded beforehand at the size the analysis uses."""
    decoded = [rgb for path in paths
               for _, (_, _, rgb) in zip(range(frames_per_clip), read_frames(path, max_side=max_side))]
    with PoseEngine(settings, Mode.VIDEO) as engine:
        engine.detect_frame(decoded[0], 0)  # warm-up
        cpu_before, started = os.times(), time.perf_counter()
        for i, rgb in enumerate(decoded[1:], start=1):
            engine.detect_frame(rgb, round(i * 1000 / fps))
        seconds, cpu_after = time.perf_counter() - started, os.times()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return {"fps": (len(decoded) - 1) / seconds, "frames": len(decoded) - 1, "cpu_cores": cpu / seconds,
            "size": f"{decoded[0].shape[1]}x{decoded[0].shape[0]}"}


def in_fresh_process(function, *args):  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


# --- the batch runs ------------------------------------------------------------------------------------------


def run_options(run: str) -> list[str]:
    return {"sequential": ["--jobs", "1"], "parallel": [], "ray": ["--ray"]}[run]


def ray_missing() -> str | None:
    """Why `import ray` fails in the CLI's interpreter, or None when it works."""
    done = subprocess.run([sys.executable, "-c", "import ray"], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["exit status != 0"])[-1]


def link_clips(paths: list[Path], folder: Path) -> None:
    """The batch's input folder: exactly these clips (hard links where possible, so no copying)."""
    for path in paths:
        try:
            os.link(path, folder / path.name)
        except OSError:
            (folder / path.name).symlink_to(path)


def check_batch_csv(out: Path, clips: int, frames: int) -> int:
    """Every clip analysed (ok or warning, none skipped), and all of its frames; returns the people found."""
    with (out / "batch.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    bad = [row for row in rows if row["status"] not in GOOD_STATUSES or row.get("skipped", "").lower() == "true"]
    counted = sum(int(row["frames"] or 0) for row in rows)
    if bad or len(rows) != clips or counted != frames:
        raise SystemExit(f"{out / 'batch.csv'}: {len(rows)} rows (expected {clips}), {counted} frames "
                         f"(expected {frames}), not ok: {bad}")
    return sum(int(row["people"] or 0) for row in rows)


def machine_cpu_seconds() -> float | None:
    """CPU time every process on the machine has used since boot (Linux's /proc/stat), or None elsewhere.
    Ray's workers are not our children, so this, not getrusage, sees them; it also sees anyone else's load."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def timed_batch(folder: Path, options: list[str], clips: int, frames: int) -> dict[str, object]:
    """One `python -m analysis FOLDER --out OUT` run, timed from process start to exit, into a fresh OUT."""
    with tempfile.TemporaryDirectory(prefix="posescope-batch-out-") as out:
        command = [sys.executable, "-m", "analysis", str(folder), "--out", out, "--force", *options]
        cpu_before, started = machine_cpu_seconds(), time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=LOCAL_ENV, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, check=False)
        seconds, cpu_after = time.perf_counter() - started, machine_cpu_seconds()
        if done.returncode != 0:
            raise SystemExit(f"{shlex.join(command)} exited with {done.returncode}:\n{done.stderr}")
        people = check_batch_csv(Path(out), clips, frames)
    busy = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / seconds
    return {"seconds": seconds, "frames_per_s": frames / seconds, "machine_busy_cores": busy, "people": people}


def measure_runs(paths: list[Path], run_names: list[str], variants: list[str], model: str,
                 frames: int) -> dict[str, dict[str, object]]:
    """Each asked run with each asked variant, over one folder holding exactly these clips."""
    runs: dict[str, dict[str, object]] = {}
    ray_problem = ray_missing() if "ray" in run_names else None
    with tempfile.TemporaryDirectory(prefix="posescope-batch-in-") as batch_folder:
        link_clips(paths, Path(batch_folder))
        for run in run_names:
            if run == "ray" and ray_problem:
                runs[run] = {"skipped": f"import ray failed: {ray_problem}"}
                continue
            runs[run] = {"options": shlex.join(run_options(run)) or "(none: one worker per core)"}
            for variant in variants:
                extra = ["--no-video"] if variant == "no-video" else []
                measured = timed_batch(Path(batch_folder), [*run_options(run), "--model", model, *extra],
                                       len(paths), frames)
                runs[run][variant] = measured
    return runs


def with_ratios(runs: dict[str, dict[str, object]], inference_fps: float) -> dict[str, dict[str, object]]:
    """Each run's figures rounded, with its ratio to inference_fps."""
    return {run: {variant: ({key: round(value, 2) if isinstance(value, float) else value
                             for key, value in {**figures, "ratio": figures["frames_per_s"] / inference_fps}.items()}
                            if isinstance(figures, dict) else figures)
                  for variant, figures in variants.items()}
            for run, variants in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="how many clips in the batch (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each clip's length (default: %(default)s)")
    parser.add_argument("--model", default="full", choices=["lite", "full", "heavy"])
    parser.add_argument("--runs", nargs="+", choices=RUN_NAMES, default=list(RUN_NAMES),
                        help="which batch runs (default: all)")
    parser.add_argument("--variants", nargs="+", choices=VARIANT_NAMES, default=list(VARIANT_NAMES),
                        help="with the annotated video, without it (--no-video), or both (default)")
    parser.add_argument("--cache", type=Path, default=default_cache(), metavar="DIR",
                        help="where the clips are kept between runs (default: %(default)s)")
    args = parser.parse_args()
    if args.clips < 1 or args.seconds <= 0:
        parser.error("--clips and --seconds must be positive")

    load_average = [round(load, 2) for load in os.getloadavg()]  # 1, 5, 15 min: was the machine quiet?
    recipe = Recipe.for_seconds(args.seconds)
    clip_folder = args.cache / f"{recipe.frames_per_clip}f"
    paths = ensure_clips(clip_folder, args.clips, recipe)
    frames = args.clips * recipe.frames_per_clip
    settings, options = PoseSettings(complexity=args.model), ClipOptions()

    sampled = paths[::math.ceil(args.clips / INFERENCE_CLIPS)][:INFERENCE_CLIPS]  # 0, 3, 6 of 8: every take
    inference_args = (inference_rate, sampled, min(INFERENCE_FRAMES_PER_CLIP, recipe.frames_per_clip), settings,
                      options.analysis_max_side, recipe.fps)
    before = in_fresh_process(*inference_args)
    runs = measure_runs(paths, args.runs, args.variants, args.model, frames)
    after = in_fresh_process(*inference_args)
    # This machine's speed drifts by several per cent within minutes: the faster of the two measurements,
    # before and after the runs, is the reference, so that a slow moment never flatters a ratio.
    inference = max(before, after, key=lambda measured: measured["fps"])
    runs = with_ratios(runs, inference["fps"])
    cores = os.cpu_count() or 1
    megabytes = sum(path.stat().st_size for path in paths) / 1e6
    print(json.dumps({
        "input": {
            "clips": args.clips,
            "frames_per_clip": recipe.frames_per_clip,
            "frames": frames,
            "size": f"{WIDTH}x{HEIGHT}",
            "fps": recipe.fps,
            "codec": f"H.264 {ENCODER['profile']}, {ENCODER['pix_fmt']}, {ENCODER['codec']} preset "
                     f"{ENCODER['preset']}, bit_rate {ENCODER['bit_rate'] / 1e6:g} Mbit/s (not crf)",
            "measured_mbit_s": round(megabytes * 8 / (frames / recipe.fps), 1),
            "source": f"{recipe.wheel}: {TAKES}, distinct takes joined in turn, cropped to size, never "
                      f"looped or scaled",
            "folder": str(clip_folder),
        },
        "cores": cores,
        "load_average_at_start": load_average,
        "model": args.model,
        "analysis_max_side": options.analysis_max_side,
        "inference_fps": round(inference["fps"], 1),
        "inference_fps_before_and_after": [round(before["fps"], 1), round(after["fps"], 1)],
        "inference": {"frames": inference["frames"], "size": inference["size"],
                      "cpu_cores": round(inference["cpu_cores"], 2), "clips": [path.name for path in sampled]},
        "runs": runs,
        "per_core_rate": {variant: round(figures["frames_per_s"] / cores, 1)
                          for variant, figures in runs.get("parallel", {}).items() if isinstance(figures, dict)},
        "target": "parallel ratio >= 1.0 (issue 12)",
    }, indent=1))


if __name__ == "__main__":
    main()
