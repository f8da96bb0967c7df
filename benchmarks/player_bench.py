"""Upload to results: the library and the Video page as a ratio to pose inference alone (issue 10, §3); and
the latency of a step or a scrub in the review player.

    python benchmarks/player_bench.py                        # one 10 s phone clip, one run of each: ~2 min
    python benchmarks/player_bench.py --runs 3               # each measurement 3 times, each printed, and the median
    python benchmarks/player_bench.py --skip-page --seconds 4
    python benchmarks/player_bench.py --skip-steps           # without (d)

The input is real footage, neither looped nor upscaled: clip 0 of benchmarks/batch_bench.py (Pose2Sim's 1080x1920
portrait 60 fps camera takes, joined, H.264 High yuv420p at 16 Mbit/s as a phone would; made once, in the same
cache folder). In one run it measures, in this order:
  inference   (a) MediaPipe pose estimation alone: the clip's frames decoded beforehand at the analysis size
              (ClipOptions().analysis_max_side), then one VIDEO-mode PoseEngine(PoseSettings()) on them, in a
              fresh process; measured before and after the other runs, and the faster of the two is the
              reference every ratio is taken against, so that the machine's drift never flatters a ratio;
  library     (b) analysis.video.analyse_video(clip, PoseSettings(), ClipOptions(), annotated_path=None) in a
              fresh process (whose model was loaded once before, as a server's has), wall time of the call;
  page        (c) the real app (streamlit run, headless Debian Chromium): the Video page open and idle, then the
              time from set_input_files of the clip on its uploader until the results view shows ("Joint
              angles"); each run uploads a byte-wise distinct copy (an MP4 `free` box appended: same video,
              another content hash), so that no run is answered from the analysis cache.
  steps       (d) once, after the runs, in the same Chromium: stepping and scrubbing in the review player. A
              distinct copy of the 1 s warm-up clip (60 frames) is uploaded; once its review copy is in place
              (the seconds after the results it took are printed), real input: → 25 times, ← 25 times, then 30
              mouse clicks at pseudo-random places on the player's timeline. The latency of each is from the
              keydown or pointerdown until the video, not seeking, presents another frame (player.js draws the
              overlay in that same video-frame callback); median, p95, max and count per kind (target: p95 under
              50 ms), and how many got no new frame within 2 s or ended on another frame than expected. The short
              clip because a seek costs decoding from the keyframe before (the copy has one every 12 frames, at
              most 1280 px), which a longer clip does not change, while its copy takes seconds, not a minute;
              and each of its 60 frames spans ~9 px of the timeline, so a click (never within 1 px of a boundary)
              names one frame. As for a user, each frame reached is reported to Python 120 ms later (a script
              rerun), here during the next action.
(a)–(c) give frames/s and the ratio to inference (target: at least 0.8). Before each measurement, the machine
is watched for a second while this benchmark is idle: other processes using CPU then are reported, as is the
load average at the start; on a busy machine the figures mean little.

Adding a measurement of throughput is one function returning Figures, and one entry in MEASUREMENTS (a browser
one takes the BrowserSession that the page measurements share: one server and one Chromium for the whole run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from analysis.engine import Mode, PoseEngine, PoseSettings  # noqa: E402
from analysis.result import ClipOptions  # noqa: E402
from analysis.video_io import probe, read_frames  # noqa: E402
from batch_bench import ENCODER, Recipe, default_cache, ensure_clips, in_fresh_process, machine_cpu_seconds  # noqa: E402

TARGET = 0.8
WARM_UP_SECONDS = 1.0  # the page's first analysis (imports, first model load) uses a clip this long, untimed
QUIET_WINDOW_S = 1.0
BUSY_CORES = 0.25  # other processes using more than this: the figures may be off
QUIET_WAIT_S = 120.0  # before each measurement, wait at most this long for the rest of the machine to be quiet
PAGE_TIMEOUT_MS = 300_000
ANALYSED = re.compile(r"analysed ([\d,]+) frames? in ([\d.]+) s")
STEP_TARGET_MS = 50.0  # issue 10: a step or a scrub shows its frame and overlay within this
STEPS = 25  # (d): → this many times, then ← as many
SCRUBS = 30
ACTION_TIMEOUT_MS = 2_000  # (d): an action with no new frame by then is a failure
SETTLE_MS = 50  # (d): after an action's frame is shown, before the next action


@dataclass(frozen=True)
class Bench:
    """What every measurement works on: the clip, its frame count and rate, and the settings analysed with."""

    clip: Path
    frames: int
    fps: int
    settings: PoseSettings = field(default_factory=PoseSettings)
    options: ClipOptions = field(default_factory=ClipOptions)


@dataclass(frozen=True)
class Figures:
    """One run of one measurement: `frames` analysed in `seconds` of wall time, and notes worth printing."""

    seconds: float
    frames: int
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


# --- the machine ------------------------------------------------------------------------------------------------


def others_busy_cores(window_s: float = QUIET_WINDOW_S) -> float | None:
    """Cores the rest of the machine keeps busy while this process sleeps for window_s (None off Linux)."""
    before = machine_cpu_seconds()
    time.sleep(window_s)
    after = machine_cpu_seconds()
    return None if before is None or after is None else (after - before) / window_s


def wait_until_quiet(limit_s: float) -> float | None:
    """Watch the machine, a second at a time, until the others use at most BUSY_CORES or limit_s has passed;
    what they used in the last second watched."""
    deadline = time.monotonic() + limit_s
    while (others := others_busy_cores()) is not None and others > BUSY_CORES and time.monotonic() < deadline:
        pass
    return others


class CpuWatch:
    """Our CPU time and the whole machine's over a stretch of work: how busy the others were.

    Ours is this process's, or with tree=True this process's and every descendant's that is alive at both ends
    (the app's server, Playwright's driver and Chromium).
    """

    def __init__(self, tree: bool = False) -> None:
        self._ours = _tree_cpu if tree else _own_cpu

    def __enter__(self) -> CpuWatch:
        self._own, self._machine, self._started = self._ours(), machine_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self._started
        self.own_cores = (self._ours() - self._own) / self.seconds
        machine = machine_cpu_seconds()
        self.others_cores = (None if machine is None or self._machine is None
                             else max(0.0, (machine - self._machine) / self.seconds - self.own_cores))


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _tree_cpu() -> float:
    """CPU seconds of this process and its living descendants, from Linux's /proc (this process alone elsewhere)."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                parents[int(entry.name)] = int(fields[1])
                used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    ours, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in ours]
        ours.update(children)
        frontier.extend(children)
    return _own_cpu() + sum(used.get(pid, 0.0) for pid in ours - {os.getpid()})


# --- (a) inference alone, and (b) the library, each in a fresh process ---------------------------------------------


def inference_alone(bench: Bench) -> Figures:
    """Pose estimation alone on the clip's frames, decoded beforehand at the analysis size."""
    decoded = [rgb for _, _, rgb in read_frames(bench.clip, max_side=bench.options.analysis_max_side)]
    with PoseEngine(bench.settings, Mode.VIDEO) as engine:
        engine.detect_frame(decoded[0], 0)  # warm-up
        with CpuWatch() as watch:
            for i, rgb in enumerate(decoded[1:], start=1):
                engine.detect_frame(rgb, round(i * 1000 / bench.fps))
    return Figures(watch.seconds, len(decoded) - 1,
                   {"size": f"{decoded[0].shape[1]}x{decoded[0].shape[0]}", **_cpu_notes(watch)})


def library(bench: Bench) -> Figures:
    """analyse_video without an annotated video: what upload → results costs beyond staging the file."""
    from analysis.video import analyse_video

    with PoseEngine(bench.settings, Mode.VIDEO):  # a server has loaded the model before: so has this process
        pass
    with CpuWatch() as watch:
        result = analyse_video(bench.clip, bench.settings, bench.options, annotated_path=None)
    if result.warnings:
        raise SystemExit(f"analyse_video warned: {result.warnings}")
    return Figures(watch.seconds, result.series.frames, _cpu_notes(watch))


def _cpu_notes(watch: CpuWatch) -> dict[str, object]:
    notes: dict[str, object] = {"cpu_cores": round(watch.own_cores, 2)}
    if watch.others_cores is not None:
        notes["others_cores"] = round(watch.others_cores, 2)
    return notes


# --- (c) and other measurements in the browser -------------------------------------------------------------------


class BrowserSession:
    """One server of the real app and one headless Chromium, shared by every browser measurement of a run.

    Each measurement gets a fresh browser context (its own Streamlit session) from new_tab(), and a byte-wise
    distinct copy of the clip from distinct_clip(), which the analysis cache has never seen.
    """

    def __init__(self, server: str, browser: object, scratch: Path) -> None:
        self.server, self.browser, self._scratch = server, browser, scratch
        self._copies = 0

    @contextlib.contextmanager
    def new_tab(self) -> Iterator[object]:
        context = self.browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        try:
            yield context.new_page()
        finally:
            context.close()

    def distinct_clip(self, clip: Path) -> Path:
        """A copy of clip with an MP4 `free` box appended (which every demuxer skips): the same video under
        another content hash."""
        self._copies += 1
        path = self._scratch / f"phone-{self._copies}.mp4"
        shutil.copyfile(clip, path)
        tag = f"posescope-bench {self._copies} {time.time_ns()}".encode()
        with path.open("ab") as f:
            f.write(struct.pack(">I4s", 8 + len(tag), b"free") + tag)
        return path

    def open_video_page(self, page: object) -> None:
        from browser_support import wait_for_app_idle
        from playwright.sync_api import expect

        page.goto(f"{self.server}/video")  # type: ignore[attr-defined]
        expect(page.get_by_role("heading", name="Video", exact=True)).to_be_visible(  # type: ignore[attr-defined]
            timeout=60_000)
        wait_for_app_idle(page)

    def upload_and_wait_for_results(self, page: object, clip: Path) -> tuple[CpuWatch, str]:
        """Upload clip on the open Video page; (the CPU watch from set_input_files until the results view shows:
        its seconds, the app's and the browser's cores, the others'; the page's caption of the analysis)."""
        from browser_support import UPLOAD_INPUT

        file_input = page.locator(UPLOAD_INPUT).first  # type: ignore[attr-defined]
        file_input.wait_for(state="attached", timeout=30_000)
        with CpuWatch(tree=True) as watch:
            file_input.set_input_files(str(clip))
            page.get_by_role("heading", name="Joint angles").wait_for(  # type: ignore[attr-defined]
                state="visible", timeout=PAGE_TIMEOUT_MS)
        caption = page.get_by_text(ANALYSED).first  # type: ignore[attr-defined]
        caption.wait_for(state="visible", timeout=30_000)
        return watch, caption.inner_text()


def warm_up_clip() -> Path:
    """The WARM_UP_SECONDS phone clip (made once, in the cache): the page's first analysis, and (d)."""
    recipe = Recipe.for_seconds(WARM_UP_SECONDS)
    return ensure_clips(default_cache() / f"{recipe.frames_per_clip}f", 1, recipe)[0]


@contextlib.contextmanager
def browser_session(bench: Bench) -> Iterator[BrowserSession]:
    """The app on a free port and Chromium; the page's first analysis (imports, model) done on a short clip."""
    from browser_support import launch_chromium, streamlit_server
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL", "1")  # closed tabs free their upload soon
    warm_up = warm_up_clip()
    with (tempfile.TemporaryDirectory(prefix="posescope-player-bench-") as scratch, streamlit_server() as server,
          sync_playwright() as playwright):
        browser = launch_chromium(playwright)
        try:
            session = BrowserSession(server, browser, Path(scratch))
            with session.new_tab() as page:
                session.open_video_page(page)
                watch, _ = session.upload_and_wait_for_results(page, session.distinct_clip(warm_up))
                print(f"    page warm-up ({Recipe.for_seconds(WARM_UP_SECONDS).frames_per_clip} frames, untimed): "
                      f"{watch.seconds:.1f} s", flush=True)
            yield session
        finally:
            browser.close()


def page_upload_to_results(bench: Bench, session: BrowserSession) -> Figures:
    """(c) The Video page: from choosing the file until the results view shows."""
    clip = session.distinct_clip(bench.clip)
    try:
        with session.new_tab() as page:
            session.open_video_page(page)
            watch, caption = session.upload_and_wait_for_results(page, clip)
    finally:
        clip.unlink()
    found = ANALYSED.search(caption)
    assert found is not None  # the wait above matched it
    frames, analysis_s = int(found.group(1).replace(",", "")), float(found.group(2))
    if frames != bench.frames:
        raise SystemExit(f"the page analysed {frames} frames, not the clip's {bench.frames}: {caption!r}")
    return Figures(watch.seconds, frames, {"server_analysis_s": analysis_s,
                                           "staging_and_page_s": round(watch.seconds - analysis_s, 1),
                                           **_cpu_notes(watch)})


# --- (d) stepping and scrubbing in the review player -----------------------------------------------------------

# On the player's root: a keydown on it or a pointerdown on its timeline starts an action; it ends at the first
# moment the video is not seeking and presents another frame than at the start (data-shown-time, set in the
# player's video-frame callback, which draws the overlay too; or at `seeked`, if that frame came while seeking).
# Each action ended goes to r.__bench.done: its latency (ms), the frame drawn and the time shown.
RECORDER = """r => {
    const v = r.querySelector('video.ps-video'), bench = r.__bench = {pending: null, done: []};
    const start = () => { bench.pending = {at: performance.now(), from: r.dataset.shownTime}; };
    const end = () => {
        const pending = bench.pending;
        if (pending === null || v.seeking || r.dataset.shownTime === pending.from) return;
        bench.pending = null;
        bench.done.push({ms: performance.now() - pending.at, frame: Number(r.dataset.frame),
                         shown: Number(r.dataset.shownTime)}); };
    r.addEventListener('keydown', start, true);
    r.querySelector('canvas.ps-timeline').addEventListener('pointerdown', start, true);
    new MutationObserver(end).observe(r, {attributeFilter: ['data-shown-time']});
    v.addEventListener('seeked', end);
    }"""


@dataclass(frozen=True)
class Latencies:
    """(d) One kind of action: the latency of each that showed a new frame (ms), how many showed none within
    ACTION_TIMEOUT_MS, and how many ended on another frame than expected."""

    kind: str
    ms: tuple[float, ...]
    timeouts: int
    wrong: int

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.ms, n=20, method="inclusive")[18] if len(self.ms) > 1 else max(self.ms)

    @property
    def meets(self) -> bool:
        return bool(self.ms) and not self.timeouts and self.p95 < STEP_TARGET_MS

    def __str__(self) -> str:
        figures = (f"median {statistics.median(self.ms):.1f} ms, p95 {self.p95:.1f} ms, max {max(self.ms):.1f} ms, "
                   f"count {len(self.ms)}" if self.ms else "count 0")
        return (f"{figures}; no new frame within {ACTION_TIMEOUT_MS / 1000:.0f} s: {self.timeouts}, "
                f"wrong frame: {self.wrong}")


def timeline_frame(times: list[float], share: float) -> int:
    """The frame player.js seeks to for a press at `share` of the timeline's width."""
    t = times[0] + share * (times[-1] - times[0])
    return min(range(len(times)), key=lambda i: abs(times[i] - t))


def scrub_position(rng: random.Random, box: dict[str, float], times: list[float], shown: int) -> tuple[float, int]:
    """A pseudo-random x on the timeline and its frame: not the one shown, and not within 1 px of the boundary
    between two frames (where the page's float32 times could pick the other)."""
    while True:
        x = box["x"] + rng.uniform(1, box["width"] - 1)
        frames = {timeline_frame(times, (x + dx - box["x"]) / box["width"]) for dx in (-1, 0, 1)}
        if len(frames) == 1 and (frame := frames.pop()) != shown:
            return x, frame


def timed_action(page: object, root: object, act: Callable[[], None]) -> dict[str, float] | None:
    """Do act (real input) and wait for its RECORDER entry, then SETTLE_MS; None if no new frame came in time."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    before = root.evaluate("r => r.__bench.done.length")  # type: ignore[attr-defined]
    act()
    try:
        entry = page.wait_for_function(  # type: ignore[attr-defined]
            "([r, n]) => r.__bench.done[n] || null", arg=[root, before], polling="raf",
            timeout=ACTION_TIMEOUT_MS).json_value()
    except PlaywrightTimeoutError:
        root.evaluate("r => { r.__bench.pending = null; }")  # type: ignore[attr-defined]
        return None
    page.wait_for_timeout(SETTLE_MS)  # type: ignore[attr-defined]
    return entry


def player_latencies(session: BrowserSession, quiet_wait_s: float) -> list[Latencies]:
    """(d) Steps with → and ←, and clicks on the timeline, in the review player: see the top of this file."""
    from browser_support import wait_for_app_idle
    from test_browser_player import FIND_PLAYER, SETTLED, STATE

    clip = warm_up_clip()
    times = [time_s for _, time_s, _ in read_frames(clip, max_side=64)]
    info = probe(clip)
    # The results settled and the player on its review copy (at most 1280 px, make_proxy's: smaller than the
    # upload), loaded, resting on a frame shown.
    copy_in_place = f"""side => {{ const r = ({FIND_PLAYER})(), v = r && r.querySelector('video.ps-video');
        return Boolean(v && ({SETTLED})() && v.getAttribute('src') && Math.max(v.videoWidth, v.videoHeight) < side
            && v.readyState >= 2 && !v.seeking && r.dataset.shownTime !== undefined); }}"""
    upload = session.distinct_clip(clip)
    outcomes: list[tuple[str, int, dict[str, float] | None]] = []  # kind, the frame expected, the RECORDER entry
    try:
        with session.new_tab() as page:
            session.open_video_page(page)
            session.upload_and_wait_for_results(page, upload)
            results_at = time.perf_counter()
            page.wait_for_function(  # type: ignore[attr-defined]
                copy_in_place, arg=max(info.width, info.height), polling=100, timeout=PAGE_TIMEOUT_MS)
            copy_s = time.perf_counter() - results_at
            wait_for_app_idle(page)  # type: ignore[arg-type]
            root = page.evaluate_handle(FIND_PLAYER).as_element()  # type: ignore[attr-defined]
            others = wait_until_quiet(quiet_wait_s)
            root.evaluate(RECORDER)

            def shown() -> int:
                return root.evaluate("r => Number(r.dataset.frame)")

            with CpuWatch(tree=True) as watch:
                page.locator(".ps-player").focus()  # type: ignore[attr-defined]
                for key, delta in [("ArrowRight", 1)] * STEPS + [("ArrowLeft", -1)] * STEPS:
                    expected = shown() + delta
                    outcomes.append((f"step {'→' if delta > 0 else '←'}", expected,
                                     timed_action(page, root, lambda key=key: page.keyboard.press(key))))
                timeline = page.locator(".ps-player canvas.ps-timeline")  # type: ignore[attr-defined]
                timeline.scroll_into_view_if_needed()
                rng = random.Random(10)
                for _ in range(SCRUBS):
                    box = timeline.bounding_box()
                    x, expected = scrub_position(rng, box, times, shown())
                    y = box["y"] + box["height"] / 2
                    outcomes.append(("scrub (timeline click)", expected,
                                     timed_action(page, root, lambda x=x, y=y: page.mouse.click(x, y))))
                late_state = root.evaluate(STATE)
    finally:
        upload.unlink()

    quiet = "" if others is None else f", others before {others:.2f} cores"
    busy = any(isinstance(value, float) and value > BUSY_CORES for value in (others, watch.others_cores))
    print(f"  (d) stepping and scrubbing in the review player ({len(times)} frames, a {box['width']:.0f} px timeline): "
          f"review copy in place "
          f"{copy_s:.1f} s after the results; {', '.join(f'{k} {v}' for k, v in _cpu_notes(watch).items())}{quiet}"
          + ("  ⚠ the machine is busy: these figures mean little" if busy else ""), flush=True)
    latencies = []
    for kind in dict.fromkeys(kind for kind, _, _ in outcomes):
        mine = [(expected, entry) for k, expected, entry in outcomes if k == kind]
        shown_at = [(expected, entry) for expected, entry in mine if entry is not None]
        wrong = [f"to frame {expected} ({times[expected]:.4f} s): drew frame {entry['frame']:.0f}, showed "
                 f"{entry['shown']:.4f} s" for expected, entry in shown_at
                 if entry["frame"] != expected or abs(entry["shown"] - times[expected]) > 1e-3]
        missed = [f"to frame {expected}: no new frame within {ACTION_TIMEOUT_MS / 1000:.0f} s"
                  for expected, entry in mine if entry is None]
        found = Latencies(kind, tuple(entry["ms"] for _, entry in shown_at), len(missed), len(wrong))
        latencies.append(found)
        print(f"    {kind}: {found}", flush=True)
        for problem in missed + wrong:
            print(f"      ⚠ {kind} {problem}", flush=True)
    if any(found.timeouts for found in latencies):
        print(f"      the player at the end: {late_state}", flush=True)
    return latencies


# --- running them ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    key: str
    title: str
    run: Callable[..., Figures]
    in_browser: bool = False


MEASUREMENTS = (
    Measurement("library", "(b) library, analyse_video(annotated_path=None)", library),
    Measurement("page", "(c) page, set_input_files → “Joint angles”", page_upload_to_results, in_browser=True),
)


def measure(title: str, work: Callable[[], Figures], quiet_wait_s: float) -> Figures:
    others = wait_until_quiet(quiet_wait_s)
    figures = work()
    quiet = "" if others is None else f", others before {others:.2f} cores"
    during = figures.notes.get("others_cores")
    busy = any(isinstance(value, float) and value > BUSY_CORES for value in (others, during))
    warning = "  ⚠ the machine is busy: this figure means little" if busy else ""
    notes = "".join(f", {key} {value}" for key, value in figures.notes.items())
    print(f"    {title}: {figures.frames} frames in {figures.seconds:.2f} s = {figures.fps:.1f} frames/s"
          f"{notes}{quiet}{warning}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="the clip's length (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each measurement (default: %(default)s)")
    parser.add_argument("--skip-page", action="store_true", help="leave out the measurements in the browser")
    parser.add_argument("--skip-steps", action="store_true",
                        help="leave out (d), stepping and scrubbing in the review player")
    parser.add_argument("--quiet-wait", type=float, default=QUIET_WAIT_S, metavar="S",
                        help="before each measurement, wait up to S seconds for other processes to be idle "
                             "(default: %(default)s; 0: don't wait)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.runs < 1:
        parser.error("--seconds and --runs must be positive")

    cores = os.cpu_count() or 1
    load = os.getloadavg()
    print(f"machine: {cores} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    if load[0] > BUSY_CORES * cores:
        print(f"  ⚠ the machine is busy (1-minute load {load[0]:.2f}): the figures may mean little")
    recipe = Recipe.for_seconds(args.seconds)
    clip = ensure_clips(default_cache() / f"{recipe.frames_per_clip}f", 1, recipe)[0]
    bench = Bench(clip, recipe.frames_per_clip, recipe.fps)
    megabits = clip.stat().st_size * 8 / 1e6 / (bench.frames / bench.fps)
    print(f"input: {clip} ({bench.frames} frames, {recipe.size[0]}x{recipe.size[1]} at {bench.fps} fps, H.264 "
          f"{ENCODER['profile']} {ENCODER['pix_fmt']}, {megabits:.1f} Mbit/s); model {bench.settings.complexity}, "
          f"analysis at {bench.options.analysis_max_side} px")

    chosen = [m for m in MEASUREMENTS if not (m.in_browser and args.skip_page)]
    steps = not (args.skip_page or args.skip_steps)
    results: dict[str, list[Figures]] = {m.key: [] for m in chosen}
    inference = [measure("(a) inference alone, before", lambda: in_fresh_process(inference_alone, bench),
                         args.quiet_wait)]
    with contextlib.ExitStack() as stack:
        session = (stack.enter_context(browser_session(bench)) if steps or any(m.in_browser for m in chosen)
                   else None)
        for run in range(1, args.runs + 1):
            print(f"  run {run} of {args.runs}")
            for m in chosen:
                work = ((lambda m=m: m.run(bench, session)) if m.in_browser
                        else (lambda m=m: in_fresh_process(m.run, bench)))
                results[m.key].append(measure(m.title, work, args.quiet_wait))
        latencies = player_latencies(session, args.quiet_wait) if session is not None and steps else []
    inference.append(measure("(a) inference alone, after", lambda: in_fresh_process(inference_alone, bench),
                             args.quiet_wait))

    reference = max(figures.fps for figures in inference)
    print(f"\ninference alone (a): {reference:.1f} frames/s, the faster of "
          f"{' and '.join(f'{f.fps:.1f}' for f in inference)} (before, after)")
    for m in chosen:
        ratios = [figures.fps / reference for figures in results[m.key]]
        rates = [figures.fps for figures in results[m.key]]
        verdict = "meets" if statistics.median(ratios) >= TARGET else "MISSES"
        print(f"{m.title}: " + ", ".join(f"{rate:.1f} frames/s ({ratio:.2f}×)" for rate, ratio in zip(rates, ratios))
              + (f"; median {statistics.median(rates):.1f} frames/s, {statistics.median(ratios):.2f}×" if len(ratios) > 1
                 else "") + f" — {verdict} the {TARGET}× target")
    for found in latencies:
        print(f"(d) {found.kind} in the review player: {found} — "
              f"{'meets' if found.meets else 'MISSES'} the {STEP_TARGET_MS:.0f} ms target (p95)")


if __name__ == "__main__":
    main()
