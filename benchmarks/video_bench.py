"""Video analysis speed and memory, printed as JSON (figures for the README, not a test).

    python benchmarks/video_bench.py                 # 10 s of 1080p30, full model
    python benchmarks/video_bench.py --seconds 600   # the 10-minute memory check

The input is the test clip (tests/media, a real person doing jumping jacks) scaled to 1920x1080
and played forwards and backwards to the asked length, encoded as H.264 like a phone's video.
It measures, in one run:
  inference_fps   pose estimation alone on frames already decoded (VIDEO mode, one person);
  end_to_end_fps  analyse_video from the file to the poses and the finished annotated video,
                  plus kinematics (what the page needs before it shows charts and tables);
  ratio           end_to_end_fps / inference_fps (target ≥ 0.8);
  peak_rss_mb     the analysis's peak resident memory (it runs in a process of its own).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "media")]

from analysis.engine import Mode, PoseEngine, PoseSettings  # noqa: E402
from analysis.result import ClipOptions  # noqa: E402
from analysis.series import Smoothing, kinematics  # noqa: E402
from analysis.video import analyse_video  # noqa: E402
from analysis.video_io import VideoWriter, read_frames  # noqa: E402
from fetch_media import ensure_media  # noqa: E402


def make_input(path: Path, seconds: float, size: tuple[int, int]) -> int:
    """Write the benchmark video; returns its frame count."""
    source = [cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
              for _, _, rgb in read_frames(ensure_media() / "clip.mp4")]
    loop = source + source[-2:0:-1]  # forwards then backwards: continuous movement
    count = round(seconds * 30)
    with VideoWriter(path, fps=30, preset="ultrafast") as writer:
        for i in range(count):
            writer.write(loop[i % len(loop)], i / 30)
    return count


def inference_fps(path: Path, settings: PoseSettings, options: ClipOptions, frames: int = 150) -> float:
    decoded = [rgb for _, (_, _, rgb) in zip(range(frames),
                                               read_frames(path, max_side=options.analysis_max_side))]
    with PoseEngine(settings, Mode.VIDEO) as engine:
        engine.detect_frame(decoded[0], 0)  # warm-up
        started = time.perf_counter()
        for i, rgb in enumerate(decoded[1:], start=1):
            engine.detect_frame(rgb, i * 33)
        return (len(decoded) - 1) / (time.perf_counter() - started)


def end_to_end(path: Path, annotated: Path, settings: PoseSettings, options: ClipOptions) -> dict[str, float]:
    """The page's work from file to charts; run in a fresh process so that its peak memory is its own."""
    started = time.perf_counter()
    analysis = analyse_video(path, settings, options, annotated)
    kinematics(analysis.series, Smoothing())
    return {"seconds": time.perf_counter() - started,
            "frames_with_people": int(analysis.series.present.any(axis=1).sum()),
            "series_mb": (analysis.series.landmarks.nbytes + analysis.series.world.nbytes) / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def in_fresh_process(function, *args):  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test video")
    parser.add_argument("--model", default="full", choices=["lite", "full", "heavy"])
    args = parser.parse_args()

    settings, options = PoseSettings(complexity=args.model), ClipOptions()
    with tempfile.TemporaryDirectory(prefix="posescope-bench-") as folder:
        source, annotated = Path(folder) / "input.mp4", Path(folder) / "annotated.mp4"
        frames = make_input(source, args.seconds, (1920, 1080))
        inference = in_fresh_process(inference_fps, source, settings, options)
        run = in_fresh_process(end_to_end, source, annotated, settings, options)
        rate = frames / run["seconds"]
        annotated_mb = annotated.stat().st_size / 1e6
    print(json.dumps({
        "input": f"{frames} frames of 1920x1080 H.264 at 30 fps ({args.seconds:g} s)",
        "model": args.model,
        "analysis_max_side": options.analysis_max_side,
        "preview_max_side": options.preview_max_side,
        "inference_fps": round(inference, 1),
        "end_to_end_fps": round(rate, 1),
        "ratio": round(rate / inference, 2),
        "realtime_factor": round(rate / 30, 2),
        "people_found_in": f"{run['frames_with_people']}/{frames} frames",
        "annotated_video_mb": round(annotated_mb, 1),
        "series_mb": round(run["series_mb"], 1),
        "peak_rss_mb": round(run["peak_rss_mb"]),
    }, indent=1))


if __name__ == "__main__":
    main()
