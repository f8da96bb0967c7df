"""Several people: how often each is found, and at what speed, MediaPipe alone against analysis.people (issue 11).

    python benchmarks/people_bench.py               # Pose2Sim's multi-person demo, four cameras: ~1 min
    python benchmarks/people_bench.py --people 3

The footage is Pose2Sim's multi-person demo (a man and a woman, side by side and partly overlapping; four cameras,
100 frames of 1088x1920 at 60 fps each), from the pose2sim package that .ci/run installs. Each camera is analysed
with analyse_video at the analysis size (960 px), once with MediaPipe's own multi-person mode (one VIDEO-mode
landmarker asked for --people people) and once with PeopleFinder (top-down: a landmarker per person on their
crop). Printed per camera and method: the frames in which both people are found, in which one is, in which more
than two are (someone counted twice, or a false find), whether the two keep their left-to-right order (their
slots do not swap), and the frames per second, also per person found.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.engine import Mode, PoseEngine, PoseSettings  # noqa: E402
from analysis.people import PeopleFinder  # noqa: E402
from analysis.video import analyse_video  # noqa: E402

PEOPLE_IN_VIEW = 2
METHODS = {"MediaPipe alone": lambda settings: PoseEngine(settings, Mode.VIDEO), "PeopleFinder": PeopleFinder}


def demo_videos() -> list[Path]:
    spec = importlib.util.find_spec("Pose2Sim")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Pose2Sim is not installed: pip install --no-deps pose2sim==0.10.49 (as .ci/run does)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "Demo_MultiPerson" / "videos"
    return sorted(folder.glob("cam*.mp4"))


def measure(video: Path, settings: PoseSettings, method: str) -> str:
    with METHODS[method](settings) as engine:
        started = time.perf_counter()
        result = analyse_video(video, settings, annotated_path=None, name=video.name, engine=engine)
        seconds = time.perf_counter() - started
    present = result.series.present
    found = present.sum(axis=1)
    both = present[:, 0] & present[:, 1] if result.series.people > 1 else np.zeros(len(found), bool)
    hips = result.series.pixels[:, :2, 23:25, 0].mean(axis=2) if result.series.people > 1 else None
    order = "" if hips is None or not both.any() else (
        f", slot 1 left of slot 2 in {int((hips[both, 0] < hips[both, 1]).sum())} of {int(both.sum())}")
    frames = result.series.frames
    return (f"{method:16s} both {int((found >= PEOPLE_IN_VIEW).sum()):3d}/{frames}, one {int((found == 1).sum()):3d}, "
            f"none {int((found == 0).sum()):3d}, more than two {int((found > PEOPLE_IN_VIEW).sum()):3d}{order}; "
            f"{frames / seconds:.1f} frames/s, {found.sum() / seconds:.1f} person-frames/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=3, help="most people to find (default: %(default)s)")
    args = parser.parse_args()
    settings = PoseSettings(max_people=args.people)
    print(f"Pose2Sim multi-person demo, {PEOPLE_IN_VIEW} people in view, up to {args.people} asked for, "
          "analysed at 960 px")
    for video in demo_videos():
        for method in METHODS:
            print(f"{video.stem}: {measure(video, settings, method)}", flush=True)


if __name__ == "__main__":
    main()
