"""How a live stream is doing: per-frame timings, rates, lag, and the figures the Webcam page shows.

Small fixed rings of times and counts, written by the streaming thread and read by the page's script
threads under a lock; nothing here grows with the length of a stream.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

STATS_FRAMES = 240  # processing times and finish times kept for the figures (8 s at 30 frames/s)


@dataclass(frozen=True)
class LiveStats:
    """How the stream is doing. Times in milliseconds.

    received: frames that reached the processor; processed: frames analysed and sent back; dropped:
    stale frames skipped because a newer one had arrived meanwhile (received = processed + dropped, and the
    frame being processed).
    fps: frames processed per second over the last two seconds; camera_fps: frames arriving per second.
    processing_ms_*: the whole per-frame path (conversion, pose, angles, drawing) over the last frames.
    lag_ms: how much later than the quickest frame of this stream the newest frame reached processing;
    it stays near 0 when nothing queues up. since_last_frame_s: how long ago the last frame was processed.
    model: the complexity in use; loading: one being loaded; error: why none could be, or why the last
    frame could not be processed.
    """

    received: int = 0
    processed: int = 0
    dropped: int = 0
    fps: float = 0.0
    camera_fps: float = 0.0
    processing_ms_p50: float = math.nan
    processing_ms_p95: float = math.nan
    lag_ms: float = math.nan
    since_last_frame_s: float = math.inf
    people: int = 0
    width: int = 0
    height: int = 0
    model: str | None = None
    loading: str | None = None
    error: str | None = None


class FrameTimings:
    """Per-frame processing times, finish times and arrivals in small fixed rings, for the page and the HUD."""

    def __init__(self, size: int = STATS_FRAMES) -> None:
        self._lock = threading.Lock()
        self._durations = np.full(size, np.nan)
        self._finished = np.full(size, np.nan)
        self._processed_then = np.zeros(size)  # frames processed up to and including that one
        self._arrivals = np.full(size, np.nan)  # when a batch of frames reached the processor
        self._received_then = np.zeros(size)  # frames received up to and including that batch
        self._count = self._batches = 0
        self.received = self.dropped = 0
        self.lag_ms = math.nan

    def arrived(self, frames: int, now_s: float) -> None:
        with self._lock:
            self.received += frames
            self.dropped += frames - 1
            slot = self._batches % len(self._arrivals)
            self._arrivals[slot], self._received_then[slot] = now_s, self.received
            self._batches += 1

    def done(self, duration_s: float, finished_s: float) -> None:
        with self._lock:
            slot = self._count % len(self._durations)
            self._durations[slot] = duration_s
            self._finished[slot] = finished_s
            self._count += 1
            self._processed_then[slot] = self._count

    def figures(self, now_s: float) -> tuple[int, float, float, float, float, float]:
        """(processed, processed fps, camera fps, p50 ms, p95 ms, seconds since the last frame); rates over 2 s."""
        with self._lock:
            durations, finished, processed = self._durations.copy(), self._finished.copy(), self._count
            done, arrivals, received = self._processed_then.copy(), self._arrivals.copy(), self._received_then.copy()
        idle = now_s - np.nanmax(finished) if processed else math.inf
        fps = _rate(finished, done, now_s)
        camera_fps = _rate(arrivals, received, now_s)
        known = durations[~np.isnan(durations)] * 1000
        if not len(known):
            return processed, fps, camera_fps, math.nan, math.nan, idle
        p50, p95 = np.percentile(known, [50, 95])
        return processed, fps, camera_fps, float(p50), float(p95), idle


def _rate(times: np.ndarray, counts: np.ndarray, now_s: float, over_s: float = 2.0) -> float:
    """Events per second over the last `over_s` from a ring of times and the cumulative counts at those times.
    A stream that stalled (nothing for a second) reads 0, not its old rate."""
    recent = times >= now_s - over_s
    if recent.sum() < 2 or now_s - np.nanmax(times) > 1.0:
        return 0.0
    first, last = np.argmin(np.where(recent, times, np.inf)), np.argmax(np.where(recent, times, -np.inf))
    if times[last] <= times[first]:
        return 0.0
    return float((counts[last] - counts[first]) / (times[last] - times[first]))


class StreamClock:
    """Turns each frame's media time into one increasing session time, and measures how late frames arrive.

    A stream's media time starts anew each time the camera starts; the session time (seconds on the
    monotonic clock of this process) keeps increasing across streams, as MediaPipe's VIDEO mode needs.
    The lag is the frame's delay (now - media time) above the smallest delay seen in this stream: 0 when
    frames are handled as they come, growing if they queued up anywhere before processing.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._last_media = math.nan
        self._last_time = -math.inf
        self._min_delay = math.inf

    def __call__(self, media_s: float | None, now_s: float) -> tuple[float, float]:
        if media_s is None:
            media_s = now_s
        # A new stream: media time went back, or jumped (a paused or restarted camera).
        if not (self._last_media < media_s <= self._last_media + 2.0):
            self._offset = now_s - media_s
            self._min_delay = math.inf
        self._last_media = media_s
        time_s = max(media_s + self._offset, self._last_time + 1e-3)
        self._last_time = time_s
        delay = now_s - time_s
        self._min_delay = min(self._min_delay, delay)
        return time_s, (delay - self._min_delay) * 1000
