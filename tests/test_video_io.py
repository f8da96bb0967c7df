"""video_io against real files, generated here with PyAV: what goes in must come back out."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from analysis.video_io import (
    MAX_STILLS,
    VideoError,
    VideoWriter,
    jpeg_stills,
    probe,
    read_frames,
    still_step,
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

def _decode_jpeg(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_still_step_keeps_at_most_max_stills() -> None:
    assert [still_step(n) for n in (0, 1, MAX_STILLS, MAX_STILLS + 1, 2 * MAX_STILLS, 2 * MAX_STILLS + 1)] == \
        [1, 1, 1, 2, 2, 3]
    for frames in (1, 599, 601, 9000, 54_321):
        assert len(range(0, frames, still_step(frames))) <= MAX_STILLS
    assert still_step(10, max_stills=3) == 4


def test_jpeg_stills_are_every_nth_frame_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_with_writer(path, 30)
    calls: list[None] = []
    stills = list(jpeg_stills(path, 4, on_frame=lambda: calls.append(None)))
    assert len(stills) == len(calls) == 8  # frames 0, 4, ..., 28
    for k, jpeg in enumerate(stills):
        assert jpeg[:2] == b"\xff\xd8"  # a JPEG
        rgb = _decode_jpeg(jpeg)
        assert rgb.shape == (H, W, 3)
        assert round(_square_index(rgb)) == 4 * k  # still k shows frame k × step


def test_jpeg_stills_shrink_to_max_side(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_with_writer(path, 3)
    assert [_decode_jpeg(j).shape for j in jpeg_stills(path, 1, max_side=80)] == [(48, 80, 3)] * 3


def test_jpeg_stills_of_a_broken_video_are_the_ones_decoded_without_an_error(tmp_path: Path) -> None:
    path = tmp_path / "truncated.mp4"
    _write_with_writer(path, 60)
    data = path.read_bytes()
    media = data.index(b"mdat")
    path.write_bytes(data[: media + (len(data) - media) // 2])
    assert 0 < len(list(jpeg_stills(path, 1))) < 60
    assert list(jpeg_stills(tmp_path / "missing.mp4", 1)) == []
