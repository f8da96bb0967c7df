"""Videos for the browser's player: which sources it plays as they are, the review copy (proxy) every video
gets, which any browser plays and steps through fast, and the annotated video made on demand after an analysis.

The Video page plays the user's own video with the skeleton drawn over it on a canvas, finding the pose to
draw by the video's currentTime in the series' times_s. That only works if the video the browser plays
keeps the analysis's clock: the proxy holds every frame of the source at the time read_frames gives it
(a source whose first frame comes after 0 s has that frame from 0 s too), so at currentTime t it shows the
frame the analysis has at times_s == t.

Both videos stream: one frame decoded, drawn and queued for the encoder at a time. Both stop and report as
analyse_video does (analysis.stream.Watch), and leave no partial file behind.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from analysis.result import ClipOptions, ClipResult
from analysis.stream import SAME_TIME_S, Progress, Watch
from analysis.video import PreviewPainter, expected_frames
from analysis.video_io import PathLike, VideoError, VideoWriter, probe, read_frames

# Which files Chromium's <video> plays as they are: codecs by probe()'s name for them, containers by file
# suffix. Checked with Debian's Chromium 156 (software decoding): every pair below plays; HEVC (hardware
# only), MPEG-4 Part 2 and MJPEG play in no container, and nothing plays in AVI. Matroska (.mkv) plays too,
# but is left out: it is not a format browsers promise to play.
PLAYABLE_CODECS = frozenset({
    "h264",
    "vp8",
    "vp9",
    "av1",
    "libdav1d",  # AV1: FFmpeg names the codec after the decoder it picked, dav1d
})
PLAYABLE_CONTAINERS = frozenset({".mp4", ".m4v", ".mov", ".webm"})
REVIEW_KEYFRAME_EVERY = 12
# A source matched to an analysis may differ from the analysis's times by this much (the encoder's clock, and
# the series' float64 times, are far finer).
_MATCH_S = 1e-3


def browser_playable(codec: str, suffix: str) -> bool:
    """Whether the browser plays a file of this codec (VideoInfo.codec) and suffix (".MP4" or ".mp4") as it is;
    if not, the page plays a make_proxy() of it."""
    return codec in PLAYABLE_CODECS and suffix.lower() in PLAYABLE_CONTAINERS


def make_proxy(path: PathLike, out_path: PathLike, on_progress: Callable[[Progress], None] | None = None,
               stop: threading.Event | None = None, max_side: int = 1280) -> None:
    """Write an H.264 MP4 of the whole video for review only: upright, the longer side at most max_side,
    every frame at the time read_frames gives it (from 0 s at the start of the video), and a keyframe every
    REVIEW_KEYFRAME_EVERY frames. Browsers play it whatever the source's codec, and step through it fast: a
    seek decodes from the keyframe before, so a phone video's 1–4 s groups make each step of a 1080p clip
    take 0.3–1 s, where these take 20–30 ms (benchmarks/player_bench.py).

    Frames that repeat an earlier time are left out, as analyse_video leaves them out. A video that breaks
    off part-way gives the proxy of the part before the break, as the analysis keeps that part; VideoError
    for a file that is not a readable video. on_progress and stop: as analyse_video's (stop raises
    Cancelled); out_path is removed if anything fails or stops.
    """
    info = probe(path)
    watch = Watch(stop, on_progress, expected_frames(info, ClipOptions()), "making of the playback video")
    watch()
    painter = PreviewPainter(max_side)
    with VideoWriter(out_path, fps=info.fps or 30.0, keyframe_every=REVIEW_KEYFRAME_EVERY) as writer, \
            contextlib.closing(read_frames(path, max_side=max_side)) as frames:
        last_s = None
        for _, time_s, rgb in _up_to_a_break(frames):
            watch()
            if last_s is not None and time_s < last_s + SAME_TIME_S:
                continue
            rgb = painter.fit(rgb)
            if last_s is None and time_s >= SAME_TIME_S:
                writer.write(rgb, 0.0)  # the writer starts the video at its first frame: this one starts it at 0
            writer.write(rgb, time_s)
            last_s = time_s
            watch.frame_done()


def render_annotated(path: PathLike, result: ClipResult, out_path: PathLike,
                     on_progress: Callable[[Progress], None] | None = None,
                     stop: threading.Event | None = None) -> None:
    """Write the annotated H.264 MP4 of an analysis of the video at `path`, as analyse_video's annotated_path
    would have been: the same frames (result.options' range and stride), drawn alike (skeleton, or skeleton
    on the privacy background, at preview_max_side), at the analysis's times (from its first frame, at 0 s).

    Raises VideoError if the video is not the one analysed (its frames do not match the series'), or breaks
    off before the last analysed frame. on_progress and stop: as analyse_video's (stop raises Cancelled);
    out_path is removed if anything fails or stops.
    """
    series, options = result.series, result.options
    info = probe(path)
    watch = Watch(stop, on_progress, series.frames, "making of the annotated video")
    watch()
    painter = PreviewPainter(options.preview_max_side, options.privacy)
    with VideoWriter(out_path, fps=info.fps / options.stride or 30.0) as writer, \
            contextlib.closing(read_frames(path, options.start_s, options.end_s, options.stride,
                                           options.analysis_max_side)) as frames:
        done = 0
        for index, time_s, rgb in frames:
            watch()
            if index < series.frame_index[done]:  # a frame the analysis skipped (its time repeated)
                continue
            if index > series.frame_index[done] or abs(time_s - series.times_s[done]) > _MATCH_S:
                raise _not_analysed(Path(path))
            writer.write(painter.paint(rgb, series.frame(done)), float(series.times_s[done]))
            done += 1
            watch.frame_done()
            if done == series.frames:
                break
        if done < series.frames:
            raise _not_analysed(Path(path))


def _up_to_a_break(frames: Iterator[tuple[int, float, np.ndarray]]) -> Iterator[tuple[int, float, np.ndarray]]:
    """read_frames' frames, ending without an error where the video breaks off after at least one frame."""
    read = 0
    try:
        for item in frames:
            yield item
            read += 1
    except VideoError:
        if not read:
            raise


def _not_analysed(path: Path) -> VideoError:
    return VideoError(f"The frames of {path.name} are not the ones analysed: the annotated video can only be "
                      "made from the video the analysis was made from.")
