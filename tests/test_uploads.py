"""Uploads: hashed whole, staged once, named safely; a full disk gets a sentence; caches and jobs stay bounded."""

from __future__ import annotations

import resource
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from analysis.cache import BoundedCache, size_of
from analysis.jobs import JobRunner, JobState
from analysis.uploads import StagedFile, UploadError, content_digest, safe_stems
from analysis.stream import Cancelled


def test_two_files_that_differ_in_one_byte_anywhere_have_different_digests() -> None:
    size = 5 << 20
    original = bytearray(np.random.default_rng(0).integers(0, 256, size, np.uint8).tobytes())
    # Byte 70 000 lies outside every 64 KiB window the old sampled fingerprint read (windows start at size // 16).
    edited = bytearray(original)
    edited[70_000] ^= 1
    assert content_digest(bytes(original)) != content_digest(bytes(edited))
    assert content_digest(bytes(original)) == content_digest(memoryview(original))


def test_an_upload_is_staged_once_under_our_name_and_removed_on_close(tmp_path: Path) -> None:
    data = b"\x00\x01" * 100_000
    staged = StagedFile(data, "mp4", root=str(tmp_path))
    assert staged.path.name == "upload.mp4" and staged.path.read_bytes() == data
    assert staged.digest == content_digest(data) and staged.size == len(data)
    assert [p.name for p in tmp_path.iterdir()] == [staged.path.parent.name]  # one folder, one copy
    staged.close()
    staged.close()
    assert staged.closed and list(tmp_path.iterdir()) == []


def test_a_full_disk_while_staging_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    """The file-size limit makes the write fail as a full disk does (EFBIG; ENOSPC reads the same)."""
    previous_signal = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(UploadError) as refused:
            StagedFile(bytes(20 << 20), "mp4", root=str(tmp_path))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_signal)
    assert str(refused.value).startswith("There is not enough free disk space in the temporary folder")
    assert "21 MB file" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_names_that_are_or_become_the_same_get_their_own_stems() -> None:
    assert safe_stems(["IMG_0001.jpg", "IMG_0001.jpg", "a b.jpg", "a_b.jpg", "A_B.png", "../../etc/passwd", "**.jpg"]
                      ) == ["IMG_0001", "IMG_0001-2", "a_b", "a_b-2", "A_B-3", "passwd", "upload"]


def test_the_cache_keeps_to_its_entries_and_bytes() -> None:
    cache: BoundedCache[np.ndarray] = BoundedCache(max_entries=3, max_bytes=10_000)
    for key in "abcd":
        cache.put(key, np.zeros(1000, np.uint8))
    assert len(cache) == 3 and cache.get("a") is None  # the oldest went
    cache.get("b")  # used: now the newest
    cache.put("e", np.zeros(8000, np.uint8))
    assert cache.bytes <= 10_000 and cache.get("b") is not None and cache.get("c") is None
    cache.put("huge", np.zeros(20_000, np.uint8))
    assert cache.get("huge") is None and cache.bytes <= 10_000
    assert size_of({"x": (np.zeros(10, np.float32), b"abc")}) == 43


def test_jobs_queue_beyond_the_limit_say_their_place_and_can_be_cancelled() -> None:
    runner = JobRunner(workers=1)
    release = threading.Event()

    def slow(on_progress, stop):  # noqa: ANN001, ANN202
        while not release.wait(0.01):
            if stop.is_set():
                raise Cancelled
        return "done"

    first, second, third = (runner.submit(name, slow) for name in ("first", "second", "third"))
    deadline = time.monotonic() + 5
    while first.state is not JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.state is JobState.RUNNING and first.queue_position is None
    assert (second.queue_position, third.queue_position) == (1, 2)
    second.cancel()
    assert second.state is JobState.CANCELLED and third.queue_position == 1
    release.set()
    assert first.wait(5) and third.wait(5)
    assert (first.result, third.result) == ("done", "done") and first.state is JobState.DONE


def test_a_failing_job_keeps_its_sentence_and_an_unexpected_one_says_what_broke() -> None:
    runner = JobRunner(workers=1)

    def refused(on_progress, stop):  # noqa: ANN001, ANN202
        raise ValueError("This is not a video file we can read.")

    def broken(on_progress, stop):  # noqa: ANN001, ANN202
        raise RuntimeError("native crash")

    sentence, unexpected = runner.submit("a", refused), runner.submit("b", broken)
    assert sentence.wait(5) and unexpected.wait(5)
    assert sentence.state is JobState.FAILED and sentence.error == "This is not a video file we can read."
    assert unexpected.error == "The analysis failed unexpectedly (RuntimeError: native crash)."
