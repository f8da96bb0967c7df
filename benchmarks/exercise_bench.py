"""What the exercise engine adds to each live frame, printed as text and JSON (figures for the README, not a test).

    python benchmarks/exercise_bench.py                      # 6,000 frames, jumping jack, a template, falls
    python benchmarks/exercise_bench.py --exercise squat --frames 20000

The Webcam page's per-frame budget is 33 ms, nearly all of it the pose model's; the target for the rep
counter, its rules, the template score and the fall monitor together is under 1 ms a frame. The landmarks are
real: the test clip (tests/media/clip.mp4, a man doing jumping jacks) analysed once with the full model, then
replayed forwards and backwards (continuous movement) frame by frame at 30 frames/s, each frame's angles
smoothed as the live processor smooths them (outside the timing: that cost is not new). Timed per frame:
  coach     LiveCoach.update and .state() (the count, stage, cues and reps the page reads)
  falls     FallMonitor.update
  template  templates.score against a template made from the clip's frame 18 (arms up), and furthest_joints
  together  the three in a row
  watch     PersonWatch.update: what the live processor calls, the three with the view and joint warnings
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "media")]

from analysis.angles import DEFAULT_VISIBILITY_THRESHOLD, compute_angles  # noqa: E402
from analysis.engine import PoseSettings  # noqa: E402
from analysis.events import FallMonitor  # noqa: E402
from analysis.exercises import current_catalogue  # noqa: E402
from analysis.live import AngleSmoother, LiveSettings, PersonWatch  # noqa: E402
from analysis.reps import LiveCoach  # noqa: E402
from analysis.templates import PoseTemplate, furthest_joints, score  # noqa: E402
from analysis.video import analyse_video  # noqa: E402
from fetch_media import ensure_media  # noqa: E402

TEMPLATE_FRAME = 18  # arms overhead, legs apart
FPS = 30


def replay(frames: int) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """(time, smoothed angles, pixels, visibility) of the followed person for `frames` frames of the looped clip."""
    result = analyse_video(ensure_media() / "clip.mp4", PoseSettings("full"))
    series = result.series
    order = list(range(series.frames)) + list(range(series.frames - 2, 0, -1))
    pixels, visibility = series.pixels[:, 0], series.visibility[:, 0]
    angles = compute_angles(series.pixels, series.visibility, DEFAULT_VISIBILITY_THRESHOLD)[:, 0]
    defaults = LiveSettings()
    smoother = AngleSmoother(defaults.min_cutoff, defaults.beta)
    out = []
    for i in range(frames):
        k, time_s = order[i % len(order)], i / FPS
        out.append((time_s, smoother(angles[k], time_s), pixels[k], visibility[k]))
    return out


def figures(ns: list[int]) -> dict[str, float]:
    ms = np.array(ns) / 1e6
    return {"median_ms": round(float(np.median(ms)), 4), "p95_ms": round(float(np.percentile(ms, 95)), 4),
            "max_ms": round(float(ms.max()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=6000, help="frames replayed (30 a second)")
    parser.add_argument("--exercise", default="jumping_jack", help="the exercise counted")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    frames = replay(args.frames)
    catalogue = current_catalogue()
    exercise = catalogue.get(args.exercise)
    _, _, pixels, visibility = frames[TEMPLATE_FRAME]
    template = PoseTemplate.from_pose(pixels, visibility, "arms up")

    coach, monitor = LiveCoach(exercise, catalogue), FallMonitor()
    timings: dict[str, list[int]] = {"coach": [], "falls": [], "template": [], "together": []}
    clock = time.perf_counter_ns
    for time_s, angles, pixels, visibility in frames:
        seen = np.where((visibility >= DEFAULT_VISIBILITY_THRESHOLD)[:, None], pixels, np.nan)
        start = clock()
        coach.update(time_s, angles, seen)
        coach.state()
        after_coach = clock()
        monitor.update(time_s, seen)
        after_falls = clock()
        similarity = score(template, pixels, visibility)
        if np.isfinite(similarity.score):
            furthest_joints(similarity.joint_error)
        end = clock()
        for name, ns in (("coach", after_coach - start), ("falls", after_falls - after_coach),
                         ("template", end - after_falls), ("together", end - start)):
            timings[name].append(ns)

    watch = PersonWatch()
    watch.configure(LiveSettings(exercise=exercise.name, template=template, monitoring=True))
    timings["watch"] = []
    for time_s, angles, pixels, visibility in frames:
        start = clock()
        insight = watch.update(time_s, angles, pixels, visibility)
        timings["watch"].append(clock() - start)

    results = {"frames": args.frames, "exercise": exercise.name, "reps_counted": insight.state.count,
               "falls_alerted": len(watch.fall_alerts())} | {name: figures(ns) for name, ns in timings.items()}
    for name in timings:
        print(f"{name:9s} median {results[name]['median_ms']:.3f} ms, p95 {results[name]['p95_ms']:.3f} ms, "
              f"max {results[name]['max_ms']:.2f} ms")
    print(f"{results['reps_counted']} reps counted in {args.frames / FPS:.0f} s of replay, "
          f"{results['falls_alerted']} falls alerted (the clip has none)", flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
