"""Soak benchmark: browser sessions use every page of the real app for a long time; the server's memory over time.

    .venv/bin/python benchmarks/soak_bench.py                                  # 4 sessions, 30 min: the README's
    .venv/bin/python benchmarks/soak_bench.py --minutes 4 --warm-up-minutes 1  # a quick check that it all works

It starts the real app (`streamlit run dashboard.py` on a free port, as tests/browser_support.streamlit_server does,
with a temporary folder of its own so that leftovers can be counted) and one headless Debian Chromium (CHROMIUM_ARGS
plus a fake camera playing tests/media/clip.y4m). Each of --sessions browser contexts is its own Streamlit session and
moves between pages through the sidebar, as a person would, looping over three steps (each session starts at a
different one, so the pages' work overlaps):

- Image: a photo made from bus.jpg, then one made from zidane.jpg (fresh crop, scale, mirror and JPEG quality every
  time, so no two uploads are the same bytes); done when the photo's caption is shown.
- Video: one of --video-variants MP4s per session made at start-up from clip.mp4 (different crops, sizes, trims,
  ping-pong starts and brightness; written with analysis.video_io.VideoWriter); done when the "Downloads" subheader
  appears (only the file uploader and that subheader are relied on; generous timeout, --video-timeout).
- Webcam: Start, stream 20-30 s (--stream-seconds), Stop.

Every --sample-seconds the server's whole process tree is read from /proc (resident memory summed over the processes,
threads, open file descriptors). Output on stdout, JSON lines only:

- one sample per line: {"t_s", "rss_mb", "main_rss_mb", "procs", "threads", "fds", "doing", "load"};
  `doing` is what each session is doing (I image, V video, W webcam, . done);
- one line per problem seen: {"t_s", "error": {session, loop, step, kind, message}}; kinds: exception (a Streamlit
  exception box), error_alert (an st.error box), traceback (traceback text on the page), timeout, browser (any other
  Playwright error), pageerror (an uncaught JavaScript error in the page);
- last, {"summary": {...}}: peak RSS, RSS at the end of warm-up (the first sample after --warm-up-minutes), at the
  deadline, at the end (when the last session has finished its step) and after the sessions closed, growth after
  warm-up (end and max against warm-up, in %), loops and steps per session, step times, errors (with the exception
  the server logged: the page's box is redacted by client.showErrorDetails = "none"), server-log tracebacks, the
  server's leftover temporary files. --failure-screenshots DIR keeps a screenshot of every failed step.

Progress in words goes to stderr. The target (the issue): peak under 2 GB, under 10 % growth after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "media")]

from browser_support import APP_IDLE, CHROMIUM_ARGS, UPLOAD_INPUT, require_chromium, streamlit_server  # noqa: E402
from fetch_media import ensure_media  # noqa: E402

from analysis.video_io import VideoWriter, read_frames  # noqa: E402

COMPONENT = 'iframe[title="streamlit_webrtc.component.webrtc_streamer"]'
STEPS = ("image", "video", "webcam")
STEP_LETTER = {"image": "I", "video": "V", "webcam": "W", "start": "s", "restart": "r", "done": "."}
PAGE_TITLES = {"image": "Image", "video": "Video", "webcam": "Webcam"}
TARGET_PEAK_MB = 2048
TARGET_GROWTH_PCT = 10.0
PAGE_TIMEOUT_MS = 60_000


# --- the server's process tree, from /proc ----------------------------------------------------------------------------


def server_pid(port: int) -> int:
    """The Streamlit server listening on `port` (its command line has `streamlit` and the port as an argument)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"streamlit" in arg for arg in argv) and str(port).encode() in argv:
                return int(entry.name)
    raise SystemExit(f"no Streamlit server found on port {port}")


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from the parent ids in /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])  # the name in (…) may hold spaces
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def process_figures(pid: int) -> tuple[float, int, int] | None:
    """(VmRSS in MB, threads, open file descriptors) of one process, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = int(fields.get("VmRSS", "0 kB").split()[0])  # a zombie has no VmRSS
    return rss_kb / 1024, int(fields["Threads"]), fds


def tree_sample(root: int) -> dict[str, float]:
    figures = {pid: process_figures(pid) for pid in process_tree(root)}
    alive = [f for f in figures.values() if f is not None]
    main = figures.get(root)
    return {"rss_mb": round(sum(f[0] for f in alive), 1), "main_rss_mb": round(main[0], 1) if main else float("nan"),
            "procs": len(alive), "threads": sum(f[1] for f in alive), "fds": sum(f[2] for f in alive)}


def folder_usage(folder: Path) -> tuple[int, float]:
    """(files, MB) under `folder`."""
    files, size = 0, 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                files += 1
                size += path.stat().st_size
    return files, round(size / 1e6, 1)


def exception_lines(log: str) -> list[str]:
    """The exception line (`Type: message`) ending each traceback in a log, in order."""
    found = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        for line in block.splitlines()[1:]:
            if line.strip() and not line.startswith((" ", "\t")):
                found.append(line.strip()[:300])
                break
    return found


def playwright_message(error: Exception) -> str:
    """Playwright's first line (e.g. `Locator.click: Timeout 60000ms exceeded.`) and what it was waiting for."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    waiting = next((line for line in lines[1:] if line.startswith(("- waiting for", "waiting for"))), None)
    return f"{lines[0]} {waiting.lstrip('- ')}" if waiting else lines[0]


# --- varied media -----------------------------------------------------------------------------------------------------


def photo_variant(source: Image.Image, rng: random.Random, path: Path) -> Path:
    """A different photo of the same scene: crop (85-100 % of each side), scale, maybe mirrored, JPEG quality."""
    width, height = source.size
    w, h = round(width * rng.uniform(0.85, 1.0)), round(height * rng.uniform(0.85, 1.0))
    x, y = rng.randint(0, width - w), rng.randint(0, height - h)
    picture = source.crop((x, y, x + w, y + h))
    scale = rng.uniform(0.75, 1.0)
    picture = picture.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        picture = ImageOps.mirror(picture)
    picture.save(path, "JPEG", quality=rng.randint(80, 95))
    return path


def make_video_variants(clip: Path, folder: Path, sessions: int, per_session: int, seed: int) -> list[list[Path]]:
    """`per_session` different MP4s for each session, from clip.mp4 (960x540, 60 frames at 30 fps): a crop of 80-100 %,
    an output size of 480 to 960 px wide, 45-90 frames played forwards and backwards from a random start, a brightness
    shift. All different bytes and different pictures, so no cache can answer one with another's analysis."""
    frames = [rgb for _, _, rgb in read_frames(clip)]
    height, width = frames[0].shape[:2]
    bounce = frames + frames[-2:0:-1]  # forwards then backwards: the movement stays continuous when looped
    rng = random.Random(seed)
    variants: list[list[Path]] = []
    for session in range(sessions):
        mine = []
        for k in range(per_session):
            crop = rng.uniform(0.8, 1.0)
            w, h = round(width * crop), round(height * crop)
            x, y = rng.randint(0, width - w), rng.randint(0, height - h)
            out_width = rng.choice([480, 640, 854, 960])
            count, start = rng.randint(45, 90), rng.randrange(len(bounce))
            gain = rng.uniform(0.85, 1.15)
            path = folder / f"s{session + 1}-clip-{k + 1:02d}.mp4"
            with VideoWriter(path, fps=30, scale_to_max_side=out_width, preset="veryfast") as writer:
                for i in range(count):
                    rgb = bounce[(start + i) % len(bounce)][y:y + h, x:x + w]
                    writer.write(np.clip(rgb * gain, 0, 255).astype(np.uint8), i / 30)
            mine.append(path)
        variants.append(mine)
    return variants


# --- the sessions -----------------------------------------------------------------------------------------------------


class StepError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass
class Session:
    index: int  # from 1
    doing: str = "start"
    loop: int = 0
    loops: int = 0  # full passes over the three steps
    clean_loops: int = 0  # of which every step succeeded
    restarts: int = 0
    done: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=lambda: {step: [] for step in STEPS})
    webcam_fps: list[float] = field(default_factory=list)


class Soak:
    def __init__(self, args: argparse.Namespace, base_url: str, media: Path, work: Path,
                 videos: list[list[Path]]) -> None:
        self.args, self.base_url, self.media, self.work, self.videos = args, base_url, media, work, videos
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.minutes * 60
        self.sessions = [Session(i + 1) for i in range(args.sessions)]
        self.errors: list[dict[str, object]] = []
        self.contexts: list[object] = []  # every session's last browser context, closed at the end
        self.log_offset = 0
        self.last_logged: str | None = None
        self.photos = {name: Image.open(media / f"{name}.jpg").convert("RGB") for name in ("bus", "zidane")}

    def t(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def record(self, session: Session, step: str, kind: str, message: str) -> None:
        error = {"session": session.index, "loop": session.loop, "step": step, "kind": kind,
                 "message": " ".join(message.split())[:400]}
        if kind in ("exception", "traceback", "error_alert"):
            # The page shows a redacted box (client.showErrorDetails = "none"); the server log has the exception.
            # With several sessions at once this is the newest one logged so far, not certainly this session's.
            self.read_log()
            error["server_log"] = self.last_logged
        self.errors.append(error | {"t_s": self.t()})
        print(json.dumps({"t_s": self.t(), "error": error}), flush=True)
        detail = error.get("server_log") or error["message"]
        print(f"[{self.t():7.1f} s] session {session.index} {step}: {kind}: {detail[:300]}", file=sys.stderr,
              flush=True)

    def read_log(self) -> None:
        """Note the newest exception the server has logged (the end of its newest traceback)."""
        with contextlib.suppress(OSError), open(self.base_url.log_path, errors="replace") as log:
            log.seek(self.log_offset)
            text = log.read()
            self.log_offset = log.tell()
            if found := exception_lines(text):
                self.last_logged = found[-1]

    # -- page helpers

    async def problems(self, page: object) -> StepError | None:
        """A Streamlit exception box, an st.error box or traceback text on the page, if there is one."""
        for selector, kind in (('[data-testid="stException"]', "exception"),
                               ('[data-testid="stAlertContentError"]', "error_alert")):
            boxes = page.locator(selector)
            if await boxes.count():
                text = await boxes.first.inner_text(timeout=5_000)
                return StepError(kind, text)
        body = await page.locator("body").inner_text(timeout=10_000)
        if "Traceback (most recent call last)" in body:
            return StepError("traceback", body[body.index("Traceback"):][:400])
        return None

    async def wait_for(self, page: object, wanted: object, timeout_ms: float, what: str) -> None:
        """Wait for `wanted` to be visible; an exception or error box that shows first ends the wait as a StepError."""
        bad = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        try:
            await wanted.or_(bad).first.wait_for(state="visible", timeout=timeout_ms)
        except PlaywrightTimeout:
            raise StepError("timeout", f"{what} did not appear within {timeout_ms / 1000:.0f} s") from None
        if (problem := await self.problems(page)) is not None:
            raise problem

    async def idle(self, page: object, timeout_ms: float = 30_000) -> None:
        """Wait for the script run to end, if it does (a page with a running fragment may never look idle)."""
        with contextlib.suppress(Exception):
            await page.locator(APP_IDLE).wait_for(state="attached", timeout=timeout_ms)

    async def open_page(self, page: object, step: str) -> None:
        """Go to a page through the sidebar (the same Streamlit session), or by its URL if there is no sidebar link."""
        title = PAGE_TITLES[step]
        link = page.locator('[data-testid="stSidebarNav"] a').filter(has_text=re.compile(rf"{title}$"))
        if await link.count():
            await link.first.click()
        else:
            await page.goto(f"{self.base_url}/{step}")
        await self.wait_for(page, page.get_by_role("heading", name=title, exact=True), PAGE_TIMEOUT_MS,
                            f"The {title} page")
        await self.idle(page)

    async def upload(self, page: object, path: Path) -> None:
        file_input = page.locator(UPLOAD_INPUT).first
        await file_input.wait_for(state="attached", timeout=PAGE_TIMEOUT_MS)
        await file_input.set_input_files(str(path))

    # -- the three steps

    async def image_step(self, page: object, session: Session, rng: random.Random) -> None:
        await self.open_page(page, "image")
        for name in ("bus", "zidane"):
            path = photo_variant(self.photos[name], rng, self.work / f"s{session.index}-{name}-{session.loop:03d}.jpg")
            await self.upload(page, path)
            caption = page.get_by_text(re.compile(rf"^{re.escape(path.name)}: \d+ × \d+ px"))
            await self.wait_for(page, caption, self.args.image_timeout * 1000, f"The caption of {path.name}")
            await self.idle(page, 60_000)
            path.unlink()

    async def video_step(self, page: object, session: Session, rng: random.Random) -> None:
        await self.open_page(page, "video")
        videos = self.videos[session.index - 1]
        path = videos[session.loop % len(videos)]
        downloads = page.get_by_role("heading", name="Downloads")
        earlier = await downloads.count() > 0  # results kept from the last visit: wait for them to go first
        await self.upload(page, path)
        if earlier:
            with contextlib.suppress(Exception):
                await downloads.first.wait_for(state="detached", timeout=60_000)
        await self.wait_for(page, downloads, self.args.video_timeout * 1000, f"The Downloads of {path.name}")
        await self.idle(page, 60_000)

    async def webcam_step(self, page: object, session: Session, rng: random.Random) -> None:
        await self.open_page(page, "webcam")
        camera = page.frame_locator(COMPONENT)
        await camera.get_by_role("button", name="Start").click(timeout=PAGE_TIMEOUT_MS)
        video = camera.locator("video")
        deadline = time.monotonic() + self.args.camera_timeout
        while True:
            with contextlib.suppress(Exception):
                if await video.first.evaluate("v => v.readyState >= 2 && v.videoWidth > 0", timeout=5_000):
                    break
            if (problem := await self.problems(page)) is not None:
                raise problem
            if time.monotonic() > deadline:
                raise StepError("timeout", f"the camera's processed picture did not play within "
                                           f"{self.args.camera_timeout:.0f} s of Start")
            await page.wait_for_timeout(500)
        low, high = self.args.stream_seconds
        await page.wait_for_timeout(rng.uniform(low, high) * 1000)
        with contextlib.suppress(Exception):  # the page's own figure, for the report; not a check
            box = page.get_by_test_id("stMetric").filter(
                has=page.get_by_test_id("stMetricLabel").filter(has_text="Processed"))
            text = await box.get_by_test_id("stMetricValue").inner_text(timeout=5_000)
            session.webcam_fps.append(float(re.search(r"[\d.]+", text).group()))
        if (problem := await self.problems(page)) is not None:
            raise problem
        await camera.get_by_role("button", name="Stop").click(timeout=PAGE_TIMEOUT_MS)
        await camera.get_by_role("button", name="Start").wait_for(timeout=PAGE_TIMEOUT_MS)
        await self.idle(page)

    async def screenshot(self, page: object, session: Session, step: str) -> None:
        """With --failure-screenshots: the page as it was when a step failed."""
        if self.args.failure_screenshots is None:
            return
        folder = Path(self.args.failure_screenshots)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"t{self.t():06.0f}-s{session.index}-loop{session.loop}-{step}.png"
        with contextlib.suppress(PlaywrightError):
            await page.screenshot(path=str(path), full_page=True, timeout=15_000)

    # -- one session

    async def new_page(self, context: object, session: Session) -> object:
        page = await context.new_page()
        page.on("pageerror", lambda error: self.record(session, session.doing, "pageerror", str(error)))
        await page.goto(self.base_url, timeout=PAGE_TIMEOUT_MS)
        await page.get_by_role("heading", name="PoseScope").wait_for(timeout=PAGE_TIMEOUT_MS)
        return page

    async def run_session(self, browser: object, session: Session) -> None:
        rng = random.Random(self.args.seed * 1000 + session.index)
        await asyncio.sleep((session.index - 1) * self.args.stagger_seconds)
        run = {"image": self.image_step, "video": self.video_step, "webcam": self.webcam_step}
        order = STEPS[(session.index - 1) % 3:] + STEPS[:(session.index - 1) % 3]
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = await self.new_page(context, session)
            while time.monotonic() < self.deadline:
                clean = True
                for step in order:
                    if time.monotonic() >= self.deadline:
                        break
                    session.doing = step
                    started = time.monotonic()
                    try:
                        await run[step](page, session, rng)
                        if (problem := await self.problems(page)) is not None:
                            raise problem
                    except (StepError, PlaywrightError) as error:
                        session.failed[step] += 1
                        clean = False
                        if isinstance(error, StepError):
                            self.record(session, step, error.kind, error.message)
                            await self.screenshot(page, session, step)
                        else:
                            self.record(session, step, "timeout" if "Timeout" in type(error).__name__ else "browser",
                                        playwright_message(error))
                        await self.screenshot(page, session, step)
                        session.doing, session.restarts = "restart", session.restarts + 1
                        try:  # a fresh start: the app's home page, a new Streamlit session
                            await page.goto(self.base_url, timeout=PAGE_TIMEOUT_MS)
                            await page.get_by_role("heading", name="PoseScope").wait_for(timeout=PAGE_TIMEOUT_MS)
                        except PlaywrightError:
                            with contextlib.suppress(PlaywrightError):
                                await context.close()
                            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
                            page = await self.new_page(context, session)
                        continue
                    session.done[step] += 1
                    session.seconds[step].append(time.monotonic() - started)
                    print(f"[{self.t():7.1f} s] session {session.index} loop {session.loop + 1}: {step} "
                          f"{time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
                else:
                    session.loops += 1
                    session.clean_loops += clean
                session.loop += 1
        finally:
            session.doing = "done"
            self.contexts.append(context)

    async def sample_until(self, pid: int, stop: asyncio.Event, samples: list[dict[str, object]]) -> None:
        while True:
            sample = {"t_s": self.t()} | tree_sample(pid) | {
                "doing": "".join(STEP_LETTER[s.doing] for s in self.sessions),
                "load": round(os.getloadavg()[0], 2)}
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.args.sample_seconds)
                return

    async def run(self, pid: int) -> dict[str, object]:
        camera = self.media / "clip.y4m"
        flags = ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}",
                 "--use-fake-ui-for-media-stream"]
        samples: list[dict[str, object]] = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=require_chromium(), headless=True,
                                                       args=[*CHROMIUM_ARGS, *flags])
            stop = asyncio.Event()
            sampler = asyncio.create_task(self.sample_until(pid, stop, samples))
            outcomes = await asyncio.gather(*(self.run_session(browser, s) for s in self.sessions),
                                            return_exceptions=True)
            for session, outcome in zip(self.sessions, outcomes):
                if isinstance(outcome, BaseException):
                    self.record(session, "session", "browser", f"the session ended: {outcome!r}")
            stop.set()
            await sampler
            end = {"t_s": self.t()} | tree_sample(pid)  # the sessions are idle but still open
            for context in self.contexts:
                with contextlib.suppress(Exception):
                    await context.close()
            await asyncio.sleep(self.args.settle_seconds)
            closed = {"t_s": self.t()} | tree_sample(pid)
            print(json.dumps(closed | {"doing": "closed"}), flush=True)
            await browser.close()
        return {"samples": samples, "end": end, "closed": closed}


# --- the report -------------------------------------------------------------------------------------------------------


def growth(value: float | None, base: float | None) -> float | None:
    return round((value / base - 1) * 100, 1) if value and base else None


def summarise(args: argparse.Namespace, soak: Soak, measured: dict[str, object], log: str,
              leftovers: tuple[int, float], video_seconds: float) -> dict[str, object]:
    samples: list[dict[str, float]] = measured["samples"]  # type: ignore[assignment]
    end, closed = measured["end"], measured["closed"]
    warm_up_s = args.warm_up_minutes * 60
    after = [s for s in samples if s["t_s"] >= warm_up_s]
    warm = after[0] if after else None
    by_deadline = [s for s in samples if s["t_s"] <= args.minutes * 60]
    peak = max([*samples, end], key=lambda s: s["rss_mb"])
    after_max = max([s["rss_mb"] for s in after] + ([end["rss_mb"]] if warm else []), default=None)
    steps = {}
    for step in STEPS:
        times = [t for s in soak.sessions for t in s.seconds[step]]
        steps[step] = {"done": sum(s.done[step] for s in soak.sessions),
                       "failed": sum(s.failed[step] for s in soak.sessions),
                       "median_s": round(statistics.median(times), 1) if times else None,
                       "max_s": round(max(times), 1) if times else None}
    fps = [f for s in soak.sessions for f in s.webcam_fps]
    steps["webcam"]["processed_fps_median"] = round(statistics.median(fps), 1) if fps else None
    growth_end = growth(end["rss_mb"], warm["rss_mb"] if warm else None)
    growth_max = growth(after_max, warm["rss_mb"] if warm else None)
    # RSS swings by a few hundred MB with what the sessions are doing at the moment of a sample; the medians of
    # the first and the last five minutes after warm-up compare like with like.
    window_s = 5 * 60
    first = [s["rss_mb"] for s in after if s["t_s"] < warm_up_s + window_s]
    last = [s["rss_mb"] for s in by_deadline if s["t_s"] >= args.minutes * 60 - window_s and s["t_s"] >= warm_up_s]
    first_median = round(statistics.median(first), 1) if first else None
    last_median = round(statistics.median(last), 1) if last else None
    return {
        "sessions": args.sessions, "minutes": args.minutes, "warm_up_minutes": args.warm_up_minutes,
        "wall_s": end["t_s"], "samples": len(samples), "cpus": os.cpu_count(),
        "rss_mb_start": samples[0]["rss_mb"], "rss_mb_peak": peak["rss_mb"], "peak_t_s": peak["t_s"],
        "rss_mb_warm_up_end": warm["rss_mb"] if warm else None, "warm_up_sample_t_s": warm["t_s"] if warm else None,
        "rss_mb_at_deadline": by_deadline[-1]["rss_mb"] if by_deadline else None,
        "rss_mb_end": end["rss_mb"], "rss_mb_after_close": closed["rss_mb"],
        "growth_pct_end_vs_warm_up": growth_end, "growth_pct_max_vs_warm_up": growth_max,
        "rss_mb_median_first_5_min_after_warm_up": first_median, "rss_mb_median_last_5_min": last_median,
        "growth_pct_medians": growth(last_median, first_median),
        "target": {"peak_mb_under": TARGET_PEAK_MB, "growth_pct_under": TARGET_GROWTH_PCT,
                   "peak_ok": peak["rss_mb"] < TARGET_PEAK_MB,
                   "growth_ok": (growth_end is not None and growth_max is not None
                                 and max(growth_end, growth_max) < TARGET_GROWTH_PCT)},
        "procs_end": end["procs"],
        "threads": {"start": samples[0]["threads"], "warm_up_end": warm["threads"] if warm else None,
                    "end": end["threads"], "after_close": closed["threads"]},
        "fds": {"start": samples[0]["fds"], "warm_up_end": warm["fds"] if warm else None, "end": end["fds"],
                "after_close": closed["fds"]},
        "loops": [s.loops for s in soak.sessions], "clean_loops": [s.clean_loops for s in soak.sessions],
        "restarts": [s.restarts for s in soak.sessions],
        "steps": steps,
        "errors": len(soak.errors), "errors_by_kind": dict(Counter(e["kind"] for e in soak.errors)),
        "distinct_errors": [{"step": step, "kind": kind, "server_log": logged, "message": message, "count": n}
                            for (step, kind, logged, message), n in Counter(
                                (e["step"], e["kind"], e.get("server_log"), e["message"][:160])
                                for e in soak.errors).most_common(12)],
        "server_log_tracebacks": log.count("Traceback (most recent call last)"),
        "server_log_exceptions": dict(Counter(exception_lines(log)).most_common(12)),
        "server_tmp_leftovers": {"files": leftovers[0], "mb": leftovers[1]},
        "video_variants_made_s": round(video_seconds, 1),
        "load_average_end": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4, help="browser sessions at once (default 4)")
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the sessions loop (default 30)")
    parser.add_argument("--warm-up-minutes", type=float, default=5.0,
                        help="growth is measured from the first sample after this (default 5)")
    parser.add_argument("--sample-seconds", type=float, default=10.0, help="memory sample interval (default 10)")
    parser.add_argument("--stream-seconds", type=float, nargs=2, default=(20.0, 30.0), metavar=("MIN", "MAX"),
                        help="how long each webcam stream lasts, drawn between these (default 20 30)")
    parser.add_argument("--video-variants", type=int, default=6, help="different MP4s per session (default 6)")
    parser.add_argument("--image-timeout", type=float, default=180.0, help="seconds for a photo's result (180)")
    parser.add_argument("--video-timeout", type=float, default=900.0, help="seconds for a video's Downloads (900)")
    parser.add_argument("--camera-timeout", type=float, default=120.0, help="seconds for the camera to play (120)")
    parser.add_argument("--stagger-seconds", type=float, default=5.0, help="between the sessions' starts (default 5)")
    parser.add_argument("--settle-seconds", type=float, default=20.0,
                        help="after the sessions close, before the last memory sample (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="for the photo and video variations (default 1)")
    parser.add_argument("--failure-screenshots", metavar="DIR", help="save a screenshot of each failed step here")
    parser.add_argument("--malloc-arena-max", type=int, default=2,
                        help="MALLOC_ARENA_MAX for the server, as start.sh sets it (default 2; 0: leave it unset)")
    args = parser.parse_args()
    if args.sessions < 1 or args.video_variants < 1 or args.minutes <= 0:
        parser.error("--sessions, --video-variants and --minutes must be positive")

    media = ensure_media()
    work = Path(tempfile.mkdtemp(prefix="posescope-soak-"))
    server_tmp = work / "server-tmp"
    server_tmp.mkdir()
    try:
        started = time.monotonic()
        videos = make_video_variants(media / "clip.mp4", work, args.sessions, args.video_variants, args.seed)
        video_seconds = time.monotonic() - started
        print(f"{os.cpu_count()} CPUs; {args.sessions} sessions for {args.minutes:g} min (warm-up "
              f"{args.warm_up_minutes:g} min); {args.sessions * args.video_variants} video variants made in "
              f"{video_seconds:.1f} s in {work}", file=sys.stderr, flush=True)
        with contextlib.ExitStack() as stack:
            saved_tmpdir = os.environ.get("TMPDIR")
            os.environ["TMPDIR"] = str(server_tmp)  # the server's temporary files go here (its log file does not)
            if args.malloc_arena_max:
                os.environ["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
            try:
                url = stack.enter_context(streamlit_server())
            finally:
                if saved_tmpdir is None:
                    os.environ.pop("TMPDIR", None)
                else:
                    os.environ["TMPDIR"] = saved_tmpdir
            pid = server_pid(int(url.rsplit(":", 1)[1]))
            print(f"server {url}, pid {pid}, log {url.log_path}", file=sys.stderr, flush=True)
            soak = Soak(args, url, media, work, videos)
            measured = asyncio.run(soak.run(pid))
            log = url.log_path.read_text(errors="replace")
            leftovers = folder_usage(server_tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(args, soak, measured, log, leftovers, video_seconds)
    if summary["server_log_tracebacks"]:
        last = log[log.rindex("Traceback (most recent call last)"):]
        print(f"the server logged {summary['server_log_tracebacks']} traceback(s); the last:\n{last[:3000]}",
              file=sys.stderr, flush=True)
    print(f"server RSS: start {summary['rss_mb_start']} MB, peak {summary['rss_mb_peak']} MB at "
          f"{summary['peak_t_s']} s, after warm-up {summary['rss_mb_warm_up_end']} MB, end {summary['rss_mb_end']} MB "
          f"(growth {summary['growth_pct_end_vs_warm_up']} %, max {summary['growth_pct_max_vs_warm_up']} %), "
          f"after the sessions closed {summary['rss_mb_after_close']} MB; loops {summary['loops']}; "
          f"errors {summary['errors']}", file=sys.stderr, flush=True)
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
