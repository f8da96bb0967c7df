"""The one clip result: PoseSeries refuses arrays that are not a series, and a saved .npz is checked at the door.

The series here come from the real model on the real test clip; the bad files are made from a good one.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from analysis.engine import PoseSettings
from analysis.result import MAX_NPZ_UNPACKED_BYTES, ClipOptions, ClipResult, RecordingError, Source
from analysis.series import PoseSeries, SeriesError
from analysis.video import analyse_video


@pytest.fixture(scope="module")
def clip(media: Path) -> ClipResult:
    return analyse_video(media / "clip.mp4", PoseSettings(max_people=2), ClipOptions(stride=2), name="clip.mp4")


def arrays(series: PoseSeries) -> dict[str, np.ndarray]:
    return {"times_s": series.times_s, "frame_index": series.frame_index, "landmarks": series.landmarks,
            "world": series.world, "size": np.array([series.width, series.height])}


def npz(**saved: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **saved)
    return buffer.getvalue()


def test_a_clip_round_trips_through_npz_with_its_source_settings_and_warnings(clip: ClipResult) -> None:
    warned = ClipResult(clip.series, clip.source, clip.settings, clip.options, clip.elapsed_s, ("cut short",))
    back = ClipResult.from_npz(warned.to_npz(), name="ignored.npz")
    assert back.source == clip.source and back.source.name == "clip.mp4" and back.source.video is not None
    assert back.settings == PoseSettings(max_people=2) and back.options == ClipOptions(stride=2)
    assert back.warnings == ("cut short",) and back.elapsed_s == pytest.approx(clip.elapsed_s)
    np.testing.assert_array_equal(back.series.landmarks, clip.series.landmarks)
    np.testing.assert_array_equal(back.series.times_s, clip.series.times_s)
    assert back.capture_fps == pytest.approx(15.0)  # 30 frames/s over stride 2


def test_an_earlier_pose_series_without_metadata_still_opens(clip: ClipResult) -> None:
    back = ClipResult.from_npz(npz(**arrays(clip.series)), name="old.npz")
    assert back.source == Source("old.npz") and back.source.is_camera
    assert back.frames_per_s is None  # nothing says how long it took
    assert back.capture_fps == pytest.approx(15.0, rel=0.01)  # from the frame times


def test_select_slices_frames_and_people(clip: ClipResult) -> None:
    part = clip.select(frames=slice(5, 15), people=[1])
    assert part.series.frames == 10 and part.series.people == 1
    np.testing.assert_array_equal(part.series.landmarks[:, 0], clip.series.landmarks[5:15, 1])
    assert part.source == clip.source
    masked = clip.series.select(frames=clip.series.present[:, 1])
    assert masked.frames == int(clip.series.present[:, 1].sum()) and masked.present[:, 1].all()


def _with(clip: ClipResult, **changes: np.ndarray) -> bytes:
    return npz(**(arrays(clip.series) | changes))


def _times(clip: ClipResult, edit: Callable[[np.ndarray], None]) -> np.ndarray:
    times = clip.series.times_s.copy()
    edit(times)
    return times


@pytest.mark.parametrize(("change", "words"), [
    (lambda c: {"times_s": _times(c, lambda t: t.__setitem__(slice(3, 5), t[3:5][::-1]))}, "not in order"),
    (lambda c: {"times_s": _times(c, lambda t: t.__setitem__(4, t[3]))}, "1 frame times repeat the one before"),
    (lambda c: {"times_s": _times(c, lambda t: t.__setitem__(2, np.nan))}, "frame times are not numbers"),
    (lambda c: {"size": np.array([0, 540])}, "frame size 0 × 540 is not a picture size"),
    (lambda c: {"times_s": c.series.times_s[:0], "frame_index": c.series.frame_index[:0],
                "landmarks": c.series.landmarks[:0], "world": c.series.world[:0]}, "it holds no frames"),
    (lambda c: {"landmarks": c.series.landmarks[..., :3]}, "landmarks are not (frames, people, 33, 5)"),
    (lambda c: {"landmarks": c.series.landmarks.astype(np.float64)}, "landmarks are not"),
    (lambda c: {"frame_index": c.series.frame_index[:-1]}, "wrong shape or type"),
])
def test_a_damaged_series_is_refused_with_its_reason(clip: ClipResult, change: Callable, words: str) -> None:
    with pytest.raises(RecordingError) as refused:
        ClipResult.from_npz(_with(clip, **change(clip)))
    message = str(refused.value)
    assert message.startswith("This pose series cannot be opened: ") and words in message, message


def test_the_series_type_itself_refuses_bad_arrays(clip: ClipResult) -> None:
    s = clip.series
    with pytest.raises(SeriesError, match="not in order"):
        PoseSeries(s.times_s[::-1].copy(), s.frame_index, s.landmarks, s.world, s.width, s.height)


def test_an_npz_that_would_unpack_to_gigabytes_is_refused_before_unpacking() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("landmarks.npy", "w", force_zip64=True) as member:
        chunk = bytes(64 << 20)
        for _ in range(MAX_NPZ_UNPACKED_BYTES // len(chunk) + 1):
            member.write(chunk)
    data = buffer.getvalue()
    assert len(data) < 4 << 20  # a few MB on disk
    with pytest.raises(RecordingError, match=r"would unpack to 1\.1 GB, more than a pose series can hold"):
        ClipResult.from_npz(data)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 not really a zip", npz(weights=np.ones(3))])
def test_files_that_are_not_ours_say_so(data: bytes) -> None:
    with pytest.raises(RecordingError, match="not a PoseScope pose series"):
        ClipResult.from_npz(data)
