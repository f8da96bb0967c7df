"""A long video's chunks shared by two landmarkers (analysis/sharing.py) against one pass, clip by clip.

    python benchmarks/chunks_bench.py                 # batch_bench's first 6 clips of 10 s, 2 runs: ~5 min on 2 cores
    python benchmarks/chunks_bench.py --clips 2 --runs 1

The clips are batch_bench's (Pose2Sim's 1080x1920 60 fps takes joined, some with two people in view; made once and
cached). For each clip and run it times, in turn, `analyse_video` in one pass (one landmarker, given to it) and the
chunks shared as the page and `--no-video` analyse them, and prints both, their ratio, where each span started and
how many frames its hand-over took (frames of another span's analysed again: work one pass would not do).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from batch_bench import Recipe, default_cache, ensure_clips

from analysis.engine import PoseSettings
from analysis.people import video_engine
from analysis.result import ClipOptions
from analysis.sharing import analyse_shared, chunks_for
from analysis.stream import Watch
from analysis.video import analyse_video, expected_frames
from analysis.video_io import probe


def one_pass_s(path: Path, settings: PoseSettings) -> float:
    with video_engine(settings) as engine:
        started = time.perf_counter()
        analyse_video(path, settings, engine=engine)
        return time.perf_counter() - started


def shared(path: Path, settings: PoseSettings) -> tuple[float, str]:
    """Seconds to analyse the clip's chunks shared (the series built too), and each span's start and hand-over."""
    info, options = probe(path), ClipOptions()
    expected = expected_frames(info, options)
    chunks = chunks_for(path, info, options, expected)
    if chunks is None:
        raise SystemExit(f"{path} is not cut into chunks on this machine (one core, or too short)")
    started = time.perf_counter()
    spans, builder = analyse_shared(chunks, path, settings, options, Watch(None, None, expected))
    builder.build()
    seconds = time.perf_counter() - started
    return seconds, ", ".join(f"{span.start_s:.2f} s" + (f" (hand-over {len(span.carried)})" if i else "")
                              for i, span in enumerate(spans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=6, help="how many of batch_bench's clips (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each clip (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=default_cache(), metavar="DIR",
                        help="where batch_bench keeps its clips (default: %(default)s)")
    args = parser.parse_args()
    if args.clips < 1 or args.runs < 1:
        parser.error("--clips and --runs must be positive")
    recipe = Recipe.for_seconds(10.0)
    paths = ensure_clips(args.cache / f"{recipe.frames_per_clip}f", args.clips, recipe)
    settings = PoseSettings()
    one_pass_s(paths[0], settings)  # the model loaded once before any figure
    totals = {"one pass": [], "shared": []}
    for path in paths:
        for run in range(1, args.runs + 1):
            alone = one_pass_s(path, settings)
            together, spans = shared(path, settings)
            totals["one pass"].append(alone)
            totals["shared"].append(together)
            print(f"{path.name} run {run}: one pass {alone:.1f} s, shared {together:.1f} s "
                  f"({alone / together:.2f}× one pass); spans from {spans}", flush=True)
    alone, together = sum(totals["one pass"]), sum(totals["shared"])
    print(f"all clips: one pass {alone:.1f} s, shared {together:.1f} s ({alone / together:.2f}×); per clip and run, "
          f"shared/one pass median {statistics.median(s / a for s, a in zip(totals['shared'], totals['one pass'])):.2f}")


if __name__ == "__main__":
    main()
