"""video_io against real files, generated here with PyAV: what goes in must come back out."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from analysis.video_io import (
    ABORT_WAIT_S,
    VideoError,
    VideoWriter,
    probe,
    read_frames,
)

W, H = 160, 96
RED = np.array([220, 40, 40])
SQUARE = 16


def _frame(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Grey, with a red square whose left edge is at x = 2i, so a decoded frame tells its index."""
    rgb = np.full((height, width, 3), 60, np.uint8)
    rgb[16:16 + SQUARE, 2 * i:2 * i + SQUARE] = RED
    return rgb


def _red(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 150) & (rgb[..., 1] < 110)


def _square_index(rgb: np.ndarray) -> float:
    columns = np.nonzero(_red(rgb).any(axis=0))[0]
    return (columns.mean() - (SQUARE - 1) / 2) / 2


def _encode_clip(path: Path, count: int, fps: int = 30, rotation: float = 0, gop: int | None = None,
                 audio: bool = False) -> None:
    """An H.264 clip written directly with PyAV (with B-frames, unlike VideoWriter's output)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        if rotation:
            stream.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=44100, layout="mono") if audio else None
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(_frame(i), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if sound:
            _add_silence(container, sound, count / fps)


def _add_silence(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    for start in range(0, int(seconds * 44100), 1024):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def _write_with_writer(path: Path, count: int, **kwargs: object) -> None:
    with VideoWriter(path, **kwargs) as writer:
        for i in range(count):
            writer.write(_frame(i), i / 30)


def test_round_trip_keeps_count_size_times_colour_and_plays_in_browsers(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_with_writer(path, 30)

    frames = list(read_frames(path))
    assert [i for i, _, _ in frames] == list(range(30))
    assert [t for _, t, _ in frames] == pytest.approx([i / 30 for i in range(30)], abs=1e-3)
    for i, _, rgb in frames:
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
        assert _square_index(rgb) == pytest.approx(i, abs=0.5)
        assert np.abs(rgb[16 + SQUARE // 2, 2 * i + SQUARE // 2].astype(int) - RED).max() < 15

    info = probe(path)
    assert (info.width, info.height, info.rotation_deg, info.codec, info.has_audio) == (W, H, 0, "h264", False)
    assert info.fps == pytest.approx(30)
    assert info.duration_s == pytest.approx(1.0, abs=0.04)
    assert info.frame_count_estimate == 30
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "faststart puts the index before the media"


def test_variable_frame_rate_times_come_back(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mp4"
    times = [0.0, 0.033, 0.05, 0.12, 0.4, 0.41, 0.9, 0.95, 1.7]
    with VideoWriter(path) as writer:
        for i, t in enumerate(times):
            writer.write(_frame(i), t)

    frames = list(read_frames(path))
    assert [t for _, t, _ in frames] == pytest.approx(times, abs=0.0015)
    assert [round(_square_index(rgb)) for _, _, rgb in frames] == list(range(len(times)))
    assert probe(path).duration_s == pytest.approx(1.7 + 1 / 30, abs=0.01)


def test_writer_times_start_at_the_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "late.mp4"
    with VideoWriter(path) as writer:
        for i in range(3):
            writer.write(_frame(i), 5.0 + i / 10)
    assert [t for _, t, _ in read_frames(path)] == pytest.approx([0.0, 0.1, 0.2], abs=1e-3)


@pytest.mark.parametrize(("rotation", "turns"), [(90, 1), (180, 2), (-90, 3)])
def test_rotation_metadata_is_applied(tmp_path: Path, rotation: int, turns: int) -> None:
    path = tmp_path / "phone.mp4"
    _encode_clip(path, 3, rotation=rotation)

    info = probe(path)
    assert info.rotation_deg == turns * 90
    assert (info.width, info.height) == ((H, W) if turns % 2 else (W, H))
    frames = list(read_frames(path))
    assert len(frames) == 3
    for i, _, rgb in frames:
        expected = np.rot90(_frame(i), turns)
        assert rgb.shape == expected.shape and rgb.flags.c_contiguous
        assert np.sum(_red(rgb) != _red(expected)) < 0.1 * SQUARE**2, "the square is where it should be"


def test_trim_and_stride_seek_to_the_right_frames(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    _encode_clip(path, 60, gop=10)  # keyframes every 10 frames, so start_s seeks, then skips

    frames = list(read_frames(path, start_s=0.5, end_s=1.5, stride=4))
    assert [i for i, _, _ in frames] == list(range(15, 45, 4))
    assert [t for _, t, _ in frames] == pytest.approx([i / 30 for i in range(15, 45, 4)], abs=1e-3)
    assert [round(_square_index(rgb)) for _, _, rgb in frames] == list(range(15, 45, 4))

    assert [i for i, _, _ in read_frames(path, end_s=0.1)] == [0, 1, 2]


def test_max_side_shrinks_keeping_aspect_and_never_enlarges(tmp_path: Path) -> None:
    plain, rotated = tmp_path / "plain.mp4", tmp_path / "rotated.mp4"
    _encode_clip(plain, 2)
    _encode_clip(rotated, 2, rotation=90)

    assert next(read_frames(plain, max_side=80))[2].shape == (48, 80, 3)
    assert next(read_frames(rotated, max_side=80))[2].shape == (80, 48, 3)
    assert next(read_frames(plain, max_side=1000))[2].shape == (H, W, 3)


def test_writer_scales_and_keeps_sizes_even(tmp_path: Path) -> None:
    odd = np.full((181, 321, 3), 90, np.uint8)
    scaled, cropped = tmp_path / "scaled.mp4", tmp_path / "cropped.mp4"
    for path, max_side in ((scaled, 100), (cropped, None)):
        with VideoWriter(path, scale_to_max_side=max_side) as writer:
            writer.write(odd, 0.0)
            writer.write(odd, 0.04)

    info = probe(scaled)
    assert max(info.width, info.height) <= 100 and info.width % 2 == 0 and info.height % 2 == 0
    assert info.width / info.height == pytest.approx(321 / 181, rel=0.05)
    assert (probe(cropped).width, probe(cropped).height) == (320, 180)


def test_a_one_frame_video_works(tmp_path: Path) -> None:
    path = tmp_path / "one.mp4"
    _write_with_writer(path, 1)
    assert probe(path).frame_count_estimate == 1
    assert [(i, t) for i, t, _ in read_frames(path)] == [(0, 0.0)]


def test_probe_reports_audio(tmp_path: Path) -> None:
    path = tmp_path / "with_sound.mp4"
    _encode_clip(path, 10, audio=True)
    assert probe(path).has_audio


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.write_text("this is not a video\n" * 50)


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        _add_silence(container, container.add_stream("aac", rate=44100, layout="mono"), 0.5)


def _cut_before_index(path: Path) -> None:
    """Half of an MP4 whose index (moov) is at the end: the index is lost."""
    _encode_clip(path, 30)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(("name", "make", "words"), [
    ("empty.mp4", _empty, ["empty", "0 bytes", "MP4"]),
    ("notes.mp4", _text, ["not a video file"]),
    ("song.m4a", _audio_only, ["no video track", "audio only"]),
    ("cut.mp4", _cut_before_index, ["damaged"]),
    ("missing.mp4", None, ["could not be opened"]),
])
def test_bad_inputs_raise_a_human_message(tmp_path: Path, name: str, make, words: list[str]) -> None:
    path = tmp_path / name
    if make:
        make(path)
    for attempt in (lambda: probe(path), lambda: list(read_frames(path))):
        with pytest.raises(VideoError) as caught:
            attempt()
        message = str(caught.value)
        assert all(word in message for word in words), message
        assert "Traceback" not in message and "\n" not in message


def test_truncated_video_yields_what_decodes_then_says_so(tmp_path: Path) -> None:
    path = tmp_path / "truncated.mp4"
    _write_with_writer(path, 60)  # faststart: the index (moov) comes first and survives the cut
    data = path.read_bytes()
    media = data.index(b"mdat")
    path.write_bytes(data[: media + (len(data) - media) // 2])

    got = []
    with pytest.raises(VideoError, match="truncated") as caught:
        for i, _, rgb in read_frames(path):
            got.append(i)
            assert round(_square_index(rgb)) == i
    assert 0 < len(got) < 60
    assert f"{len(got)} frames were read" in str(caught.value)


def test_writer_thread_errors_surface_and_remove_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=r"shape \(h, w, 3\)"):
        with VideoWriter(path, queue_size=2) as writer:
            writer.write(_frame(0), 0.0)
            writer.write(np.zeros((H, W, 4), np.uint8), 0.04)
            for i in range(2, 50):  # the error arrives on a later write(), or at the latest on close
                writer.write(_frame(i), i / 30)
    assert not path.exists()

    with pytest.raises(ValueError, match="increase"):
        with VideoWriter(path) as writer:
            writer.write(_frame(0), 0.5)
            writer.write(_frame(1), 0.5)
    assert not path.exists()


def test_writer_removes_the_file_when_the_caller_fails(tmp_path: Path) -> None:
    path = tmp_path / "abandoned.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(path) as writer:
            writer.write(_frame(0), 0.0)
            raise RuntimeError("analysis failed")
    assert not path.exists()


def test_abort_removes_the_file_without_raising(tmp_path: Path) -> None:
    path = tmp_path / "cancelled.mp4"
    writer = VideoWriter(path)
    writer.write(_frame(0), 0.0)
    writer.write(np.zeros((2, 2), np.uint8), 0.1)  # an error waiting on the thread: abort must not raise it
    writer.abort()
    assert not path.exists()
    with pytest.raises(ValueError):
        writer.write(_frame(1), 0.2)


def test_writer_with_no_frames_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nothing.mp4"
    with pytest.raises(VideoError, match="No frames"):
        with VideoWriter(path):
            pass
    assert not path.exists()


def test_fraction_frame_rates_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, fps=30000 / 1001) as writer:
        for i in range(5):
            writer.write(_frame(i), float(i * Fraction(1001, 30000)))
    assert [t for _, t, _ in read_frames(path)] == pytest.approx([i * 1001 / 30000 for i in range(5)], abs=1e-4)


# stills for the frame scrubber

def test_a_full_disk_is_said_in_a_sentence(tmp_path: Path) -> None:
    # Every write to /dev/full fails as on a full disk (ENOSPC); the video's path is a link to it.
    path = tmp_path / "full.mp4"
    path.symlink_to("/dev/full")
    rng = np.random.default_rng(3)
    with pytest.raises(VideoError) as caught:
        with VideoWriter(path) as writer:
            for i in range(60):
                writer.write(rng.integers(0, 256, (H, W, 3), np.uint8), i / 30)
    assert str(caught.value) == ("The video could not be written: there is not enough disk space (No space left on "
                                 "device). Free some space and try again.")
    assert not path.is_symlink() and Path("/dev/full").exists()  # the link is removed, not the device


_TOO_LARGE = """
import resource, sys
import numpy as np
from analysis.video_io import VideoError, VideoWriter
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))  # writes past 100 kB: EFBIG
rng = np.random.default_rng(3)
try:
    with VideoWriter(sys.argv[1]) as writer:
        for i in range(60):
            writer.write(rng.integers(0, 256, (96, 160, 3), np.uint8), i / 30)
except VideoError as error:
    print(error)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a POSIX file size limit")
def test_a_file_larger_than_the_disk_takes_is_said_in_a_sentence(tmp_path: Path) -> None:
    # A file size limit (as FAT32's 4 GB, here the process's own) fails a write with EFBIG. In a process of
    # its own, so that the limit does not reach this one.
    path = tmp_path / "large.mp4"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", _TOO_LARGE, str(path)], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == ("The video could not be written: there is not enough disk space for a file this "
                                   "large (File too large). Free some space, or make the video shorter.")
    assert not path.exists()


def _noise(count: int, height: int = 1080, width: int = 1920) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [rng.integers(0, 256, (height, width, 3), np.uint8) for _ in range(count)]


class _Blocked:
    """A call made on a thread of its own, timed, so that the test sees it wait and sees it end."""

    def __init__(self, call) -> None:  # type: ignore[no-untyped-def]
        self.started = self.ended = math.nan
        self.error: BaseException | None = None
        self._call = call
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.started = time.perf_counter()
        try:
            self._call()
        except BaseException as error:  # noqa: BLE001 - the test looks at it
            self.error = error
        finally:
            self.ended = time.perf_counter()

    def waiting_for(self, seconds: float) -> bool:
        return self.thread.is_alive() and time.perf_counter() - self.started > seconds


def _encoders() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "posescope-encode"}


def _wait(condition, timeout_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout_s
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        time.sleep(0.005)


def test_abort_from_another_thread_releases_a_write_waiting_on_a_full_queue(tmp_path: Path) -> None:
    # 4K noise takes x264 about half a second a frame here: with a queue of one the writing thread soon waits,
    # and abort() must release it at once, not when the encoder next takes a frame.
    path = tmp_path / "cancelled.mp4"
    before = _encoders()
    writer = VideoWriter(path, queue_size=1)
    frames = _noise(3, 2160, 3840)

    def write_many() -> None:
        for i in range(100):
            writer.write(frames[i % 3], i / 30)

    writing = _Blocked(write_many)
    _wait(lambda: writing.waiting_for(1.0))  # 100 frames take a minute: it is waiting on the queue
    aborted = time.perf_counter()
    writer.abort()
    took = time.perf_counter() - aborted
    writing.thread.join(5)
    assert not writing.thread.is_alive() and isinstance(writing.error, ValueError) and "aborted" in str(writing.error)
    assert writing.ended - aborted < 0.3, f"the waiting write() was released after {writing.ended - aborted:.2f} s"
    assert took < ABORT_WAIT_S + 0.5 and not path.exists()
    assert _encoders() <= before


def test_abort_from_another_thread_releases_a_close_waiting_on_a_slow_encoder(tmp_path: Path) -> None:
    # x264's "slower" preset takes about 2 s a 720p noise frame here, and holds frames back for its look-ahead:
    # close() waits for all of them. abort() releases it at once, returns within ABORT_WAIT_S even though the
    # encoder is in the middle of a frame, and the file is gone; the encoding thread ends after that frame.
    path = tmp_path / "cancelled.mp4"
    before = _encoders()
    writer = VideoWriter(path, preset="slower")
    for i, rgb in enumerate(_noise(6, 720, 1280)):
        writer.write(rgb, i / 30)
    closing = _Blocked(writer.close)
    _wait(lambda: closing.waiting_for(0.5))
    aborted = time.perf_counter()
    writer.abort()
    took = time.perf_counter() - aborted
    closing.thread.join(5)
    assert isinstance(closing.error, ValueError) and "aborted" in str(closing.error)
    assert closing.ended - aborted < ABORT_WAIT_S + 0.5, "the waiting close() was not released"
    assert took < ABORT_WAIT_S + 0.5 and not path.exists()
    _wait(lambda: _encoders() <= before)
    assert not path.exists()
