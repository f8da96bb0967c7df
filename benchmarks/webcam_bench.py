"""Live webcam processing speed, frame rate and memory, printed as text and JSON (figures for the README, not a test).

    python benchmarks/webcam_bench.py --seconds 60             # lite and full, one minute each
    python benchmarks/webcam_bench.py --seconds 600 --models lite full   # the 10-minute memory check
    python benchmarks/webcam_bench.py --compare-modes          # MediaPipe VIDEO vs LIVE_STREAM mode
    python benchmarks/webcam_bench.py --browser --seconds 600  # a real session: the app, Chromium, fake camera
    python benchmarks/webcam_bench.py --models full --exercise jumping_jack --template-from-clip --monitoring

A paced camera plays the test clip (tests/media/clip.y4m: 640x480, a real person doing jumping jacks)
forwards then backwards at 30 frames/s, as yuv420p frames like those WebRTC delivers. The frames go
through streamlit-webrtc's own AsyncVideoProcessTrack (the queue that hands the callback every frame
that arrived meanwhile, so stale ones are dropped) into the Webcam page's callback, and every frame
that comes out is VP8-encoded with aiortc's encoder on an executor thread, as aiortc's sender does.
So one process does the server's whole per-frame work except the network and the decoder.

--exercise, --template-from-clip and --monitoring turn on the live exercise count (analysis.reps.LiveCoach),
a pose template's score (made from the clip's frame 18, arms up) and the fall monitor, as the page's sidebar
does; they run inside the callback, so their cost is in the processing figures.

It prints, per model: processing p50/p95 (the callback's whole path: conversion, pose, angles,
drawing, HUD), delivered frames/s (new processed frames coming out of the track per second), frames
dropped, the largest lag measured, and resident memory after warm-up and at the end (growth in %).
The load average is printed too: figures from a busy machine are not figures of this code.

--browser runs a whole session instead: the real app (`streamlit run dashboard.py` on 127.0.0.1), headless
Debian Chromium whose fake camera plays the clip, the Webcam page started as a user would. Every 10 s it
reads the figures the page shows and the frames the browser displayed (requestVideoFrameCallback), and the
server's resident memory; it prints processed and displayed frames/s, the page's p50/p95, the change in
display delay (against the camera's RTP clock), and the server's memory after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "media")]

from streamlit import logger  # noqa: E402

logger.set_log_level("error")  # streamlit-webrtc imports Streamlit, which warns when there is no server

from aiortc import MediaStreamTrack  # noqa: E402
from aiortc.codecs.vpx import Vp8Encoder  # noqa: E402
from fetch_media import ensure_media  # noqa: E402
from mediapipe import Image, ImageFormat  # noqa: E402
from mediapipe.tasks.python import BaseOptions  # noqa: E402
from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions, RunningMode  # noqa: E402
from streamlit_webrtc.models import CallbackAttachableProcessor  # noqa: E402
from streamlit_webrtc.process import AsyncVideoProcessTrack  # noqa: E402

from analysis.engine import Mode, PoseEngine, PoseSettings  # noqa: E402
from analysis.live import LiveProcessor, LiveSettings  # noqa: E402
from analysis.models import verified_bundle  # noqa: E402
from analysis.templates import PoseTemplate  # noqa: E402

FPS = 30
TIME_BASE = Fraction(1, 90_000)  # WebRTC's video clock
TEMPLATE_FRAME = 18  # arms overhead, legs apart


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def clip_frames() -> list[av.VideoFrame]:
    """The clip forwards then backwards (continuous movement when looped), as yuv420p frames."""
    with av.open(str(ensure_media() / "clip.y4m")) as container:
        frames = [frame.reformat(format="yuv420p") for frame in container.decode(video=0)]
    return frames + frames[-2:0:-1]


class PacedCamera(MediaStreamTrack):
    """A camera: the frames, looped, at `fps` in real time, with WebRTC-style timestamps."""

    kind = "video"

    def __init__(self, frames: list[av.VideoFrame], fps: float) -> None:
        super().__init__()
        self._frames, self._fps = frames, fps
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self._fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        source = self._frames[self._count % len(self._frames)]
        frame = av.VideoFrame.from_ndarray(source.to_ndarray(), format="yuv420p")
        frame.pts, frame.time_base = round(self._count / self._fps / TIME_BASE), TIME_BASE
        self._count += 1
        return frame


def clip_template() -> PoseTemplate:
    """The pose of the clip's frame 18 (arms up, legs apart), found by the full model."""
    rgb = clip_frames()[TEMPLATE_FRAME].to_ndarray(format="rgb24")
    with PoseEngine(PoseSettings("full")) as engine:
        pose = engine.detect(rgb)
    return PoseTemplate.from_pose(pose.pixels[0], pose.visibility[0], "arms up", source="clip.y4m")


async def stream(model: str, seconds: float, warm_up_s: float, fps: float, extras: dict[str, object]
                 ) -> dict[str, object]:
    processor = LiveProcessor(LiveSettings(pose=PoseSettings(complexity=model), **extras))
    if not processor.wait_until_ready(60):
        raise SystemExit(f"the {model} model did not load: {processor.stats().error}")
    durations: list[float] = []

    async def on_frames(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        started = time.perf_counter()
        out = processor.process_newest(frames)
        durations.append(time.perf_counter() - started)
        return [out]

    camera = PacedCamera(clip_frames(), fps)
    track = AsyncVideoProcessTrack(camera, CallbackAttachableProcessor(None, on_frames, None))
    encoder = Vp8Encoder()
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    warm_until = start + warm_up_s
    end = warm_until + seconds
    last, delivered, lags = None, 0, []
    rss_start = None
    measured_from = 0
    while time.monotonic() < end:
        frame = await track.recv()
        await loop.run_in_executor(None, encoder.encode, frame)
        now = time.monotonic()
        if rss_start is None and now >= warm_until:
            rss_start, measured_from, delivered = rss_mb(), len(durations), 0
            load_start = load_average()
        if frame is not last and frame is not None and rss_start is not None:
            delivered += 1
            lags.append(processor.stats().lag_ms)
        last = frame
    track.stop()
    stats = processor.stats()
    processor.close()
    times = np.array(durations[measured_from:]) * 1000
    lag = np.array([value for value in lags if not np.isnan(value)])
    insight = processor.insight()
    return {
        "model": model,
        "seconds": seconds,
        "camera_fps": fps,
        "exercise": extras.get("exercise"),
        "reps_counted": insight.state.count if insight.state else None,
        "template": insight.template,
        "monitoring": bool(extras.get("monitoring")),
        "processing_ms_p50": round(float(np.percentile(times, 50)), 1),
        "processing_ms_p95": round(float(np.percentile(times, 95)), 1),
        "processing_ms_max": round(float(times.max()), 1),
        "delivered_fps": round(delivered / seconds, 1),
        "received": stats.received,
        "dropped": stats.dropped,
        "lag_ms_p95": round(float(np.percentile(lag, 95)), 1) if len(lag) else None,
        "lag_ms_max": round(float(lag.max()), 1) if len(lag) else None,
        "rss_mb_after_warm_up": round(rss_start or 0.0, 1),
        "rss_mb_end": round(rss_mb(), 1),
        "rss_growth_pct": round((rss_mb() / rss_start - 1) * 100, 1) if rss_start else None,
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


def compare_modes(model: str, repeats: int = 5) -> dict[str, object]:
    """Per-frame time of MediaPipe's VIDEO mode (synchronous) against LIVE_STREAM's submit-to-answer time,
    with frames paced at 30 per second. LIVE_STREAM is driven through MediaPipe directly: PoseScope's engine
    has no such mode, this comparison being why."""
    frames = [frame.to_ndarray(format="rgb24") for frame in clip_frames()]
    video = []
    with PoseEngine(PoseSettings(model), Mode.VIDEO) as engine:
        for i in range(repeats * len(frames)):
            started = time.perf_counter()
            engine.detect_frame(frames[i % len(frames)], i * 33 + 1)
            video.append(time.perf_counter() - started)
            time.sleep(max(0.0, 1 / FPS - video[-1]))
    sent: dict[int, float] = {}
    answered: list[float] = []

    def on_result(result: object, image: Image, timestamp_ms: int) -> None:
        answered.append(time.perf_counter() - sent[timestamp_ms])

    options = PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(verified_bundle(model))),
                                    running_mode=RunningMode.LIVE_STREAM, result_callback=on_result)
    with PoseLandmarker.create_from_options(options) as landmarker:
        started = time.perf_counter()
        for i in range(repeats * len(frames)):
            sent[i * 33 + 1] = time.perf_counter()
            landmarker.detect_async(Image(image_format=ImageFormat.SRGB, data=frames[i % len(frames)]), i * 33 + 1)
            time.sleep(max(0.0, started + (i + 1) / FPS - time.perf_counter()))
        time.sleep(0.5)
    video_ms, live_ms = np.array(video[30:]) * 1000, np.array(answered[30:]) * 1000
    return {"model": model, "frames": repeats * len(frames),
            "video_mode_ms_p50": round(float(np.percentile(video_ms, 50)), 1),
            "video_mode_ms_p95": round(float(np.percentile(video_ms, 95)), 1),
            "live_mode_answer_ms_p50": round(float(np.percentile(live_ms, 50)), 1),
            "live_mode_answer_ms_p95": round(float(np.percentile(live_ms, 95)), 1),
            "live_mode_answered": len(answered)}


def server_pid(port: int) -> int:
    """The PID of the Streamlit server listening on `port` (started by browser_support.streamlit_server)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(command) and str(port).encode() in command:
                return int(entry.name)
    raise SystemExit(f"no Streamlit server found on port {port}")


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def page_figures(page: object, model: str) -> dict[str, float]:
    """The numbers the Webcam page shows: processed fps, p50 and p95 ms, lag ms, dropped, camera fps."""
    import re

    def value(label: str) -> float:
        box = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").filter(has_text=label))
        text = box.get_by_test_id("stMetricValue").inner_text()
        found = re.search(r"[\d,]+(\.\d+)?", text)
        return float(found.group().replace(",", "")) if found else float("nan")

    caption = page.get_by_text(re.compile(r"^Camera [\d.]+ fps")).inner_text()
    camera, p95 = (float(x) for x in re.findall(r"([\d.]+) (?:fps|ms)", caption)[:2])
    if f"{model} model" not in caption:
        raise SystemExit(f"the page is not running the {model} model: {caption}")
    return {"processed_fps": value("Processed"), "p50_ms": value("Processing"), "p95_ms": p95,
            "lag_ms": value("Lag"), "dropped": value("Dropped"), "camera_fps": camera}


def browser_session(seconds: float, warm_up_s: float, model: str) -> dict[str, object]:
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import launch_chromium, streamlit_server
    from playwright.sync_api import sync_playwright

    clip = ensure_media() / "clip.y4m"
    flags = ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}",
             "--use-fake-ui-for-media-stream"]
    with streamlit_server() as url, sync_playwright() as playwright:
        pid = server_pid(int(url.rsplit(":", 1)[1]))
        browser = launch_chromium(playwright, flags)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(url)
        page.get_by_role("heading", name="PoseScope").wait_for(timeout=60_000)
        page.get_by_role("link", name="Webcam").first.click()
        page.get_by_role("heading", name="Webcam", exact=True).wait_for(timeout=60_000)
        if model != "lite":
            page.get_by_text(model, exact=True).click()
            page.wait_for_timeout(2000)
        camera = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
        camera.get_by_role("button", name="Start").click()
        frame = next(f for f in page.frames if "webrtc_streamer" in f.url)
        frame.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 2 }",
                                timeout=60_000)
        frame.evaluate("""() => { window.__frames = []; const video = document.querySelector('video');
            const watch = (now, meta) => { window.__frames.push([meta.rtpTimestamp, meta.presentationTime]);
                                           video.requestVideoFrameCallback(watch); };
            video.requestVideoFrameCallback(watch); }""")
        page.wait_for_timeout(warm_up_s * 1000)
        rss_start, load_start = process_rss_mb(pid), load_average()
        frame.evaluate("() => { window.__frames = []; }")
        samples = []
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            page.wait_for_timeout(min(10.0, seconds - (time.monotonic() - started)) * 1000)
            sample = page_figures(page, model) | {"t_s": round(time.monotonic() - started, 1),
                                           "server_rss_mb": round(process_rss_mb(pid), 1)}
            samples.append(sample)
            print("  " + ", ".join(f"{k} {v:g}" for k, v in sample.items()), flush=True)
        shown = np.array(frame.evaluate("() => window.__frames"), float)
        rss_end = process_rss_mb(pid)
        browser.close()
    shown_s = (shown[:, 1] - shown[0, 1]) / 1000
    rtp = np.unwrap(shown[:, 0], period=2**32)  # the RTP video clock: 32 bits at 90 kHz, from a random start
    delay = shown[:, 1] - (rtp - rtp[0]) / 90  # ms
    early, late = np.median(delay[shown_s < 5]), np.median(delay[shown_s > shown_s[-1] - 5])
    return {
        "model": model, "seconds": seconds, "mode": "browser",
        "processed_fps_median": float(np.median([s["processed_fps"] for s in samples])),
        "processing_ms_p50_median": float(np.median([s["p50_ms"] for s in samples])),
        "processing_ms_p95_median": float(np.median([s["p95_ms"] for s in samples])),
        "displayed_fps": round(len(shown) / shown_s[-1], 1),
        "display_delay_change_ms": round(float(late - early)),
        "server_rss_mb_after_warm_up": round(rss_start, 1), "server_rss_mb_end": round(rss_end, 1),
        "server_rss_growth_pct": round((rss_end / rss_start - 1) * 100, 1),
        "load_average_start": load_start, "load_average_end": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per model (after warm-up)")
    parser.add_argument("--warm-up", type=float, default=10.0, help="seconds before measuring starts")
    parser.add_argument("--models", nargs="+", default=["lite", "full"], choices=["lite", "full", "heavy"])
    parser.add_argument("--fps", type=float, default=FPS, help="the camera's frame rate")
    parser.add_argument("--compare-modes", action="store_true", help="compare MediaPipe's VIDEO and LIVE modes")
    parser.add_argument("--browser", action="store_true", help="a whole session in the app with Chromium")
    parser.add_argument("--exercise", help="count this exercise live (a name from analysis/exercises.toml)")
    parser.add_argument("--template-from-clip", action="store_true",
                        help="score each frame against a pose template made from the clip's frame 18")
    parser.add_argument("--monitoring", action="store_true", help="monitoring mode: privacy and the fall monitor")
    args = parser.parse_args()
    extras = {"exercise": args.exercise, "monitoring": args.monitoring,
              "template": clip_template() if args.template_from_clip else None}
    if (args.browser or args.compare_modes) and (args.exercise or args.template_from_clip or args.monitoring):
        parser.error("--exercise, --template-from-clip and --monitoring are for the callback benchmark")
    print(f"{os.cpu_count()} CPUs, load average {load_average()}", flush=True)
    results = []
    for model in args.models:
        if args.browser:
            result = browser_session(args.seconds, args.warm_up, model)
            print(f"{model} (browser session): processed {result['processed_fps_median']:g} frames/s, shown "
                  f"{result['displayed_fps']} frames/s; processing p50 {result['processing_ms_p50_median']:g} ms, "
                  f"p95 {result['processing_ms_p95_median']:g} ms (page figures, medians of the samples); display "
                  f"delay change {result['display_delay_change_ms']:+} ms; server memory "
                  f"{result['server_rss_mb_after_warm_up']} MB after warm-up, {result['server_rss_mb_end']} MB at "
                  f"the end ({result['server_rss_growth_pct']:+} %); load average {result['load_average_start']} → "
                  f"{result['load_average_end']}", flush=True)
        elif args.compare_modes:
            result = compare_modes(model)
            print(f"{model}: VIDEO mode {result['video_mode_ms_p50']} / {result['video_mode_ms_p95']} ms (p50/p95), "
                  f"LIVE_STREAM answer {result['live_mode_answer_ms_p50']} / {result['live_mode_answer_ms_p95']} ms",
                  flush=True)
        else:
            result = asyncio.run(stream(model, args.seconds, args.warm_up, args.fps, extras))
            print(f"{model}: processing p50 {result['processing_ms_p50']} ms, p95 {result['processing_ms_p95']} ms; "
                  f"delivered {result['delivered_fps']} frames/s of {args.fps:g}; dropped {result['dropped']} of "
                  f"{result['received']}; lag p95 {result['lag_ms_p95']} ms; memory {result['rss_mb_after_warm_up']} "
                  f"MB after warm-up, {result['rss_mb_end']} MB at the end ({result['rss_growth_pct']:+} %); "
                  f"load average {result['load_average_start']} → {result['load_average_end']}"
                  + (f"; {result['reps_counted']} reps counted" if args.exercise else ""), flush=True)
        results.append(result)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
