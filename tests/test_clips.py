"""Browser sessions' video analyses as jobs (analysis.clips), with the real model on real videos.

AppTest runs every app under one session id, so sessions are tested here through ClipSession, which the
Video page holds one of per browser session, and in a real browser in tests/test_browser_video.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from analysis import clips
from analysis.clips import ClipSession
from analysis.engine import PoseSettings
from analysis.jobs import Job, JobState
from analysis.result import ClipOptions
from analysis.video_io import read_frames


@pytest.fixture
def sessions() -> Iterator[list[ClipSession]]:
    clips.ANALYSES.clear()
    made: list[ClipSession] = []
    yield made
    for session in made:
        session.close()


def open_session(sessions: list[ClipSession], path: Path, name: str) -> ClipSession:
    session = ClipSession()
    sessions.append(session)
    session.use_upload(name, path.read_bytes(), name, "mp4")
    return session


def test_two_sessions_each_get_their_own_job_and_the_second_waits_its_turn(media: Path,
                                                                          sessions: list[ClipSession]) -> None:
    first = open_session(sessions, media / "clip.mp4", "clip.mp4")
    second = open_session(sessions, media / "clip.mp4", "copy.mp4")
    running = first.analysis(PoseSettings(), ClipOptions())
    for _ in range(200):
        if running.state is JobState.RUNNING:
            break
        running.wait(0.01)
    waiting = second.analysis(PoseSettings(), ClipOptions(stride=2))
    assert isinstance(running, Job) and isinstance(waiting, Job) and running is not waiting
    assert waiting.state is JobState.QUEUED and waiting.queue_position == 1
    assert clips.job_sentence(waiting) == ("Waiting for another analysis to finish: analyses run one at a time on "
                                           "this machine.")
    assert running.wait(120) and waiting.wait(120)
    assert (running.state, waiting.state) == (JobState.DONE, JobState.DONE)
    assert running.result.series.frames == 60 and waiting.result.series.frames == 30
    assert running.result.source.name == "clip.mp4" and waiting.result.source.name == "copy.mp4"


def test_the_annotated_video_is_a_follow_up_job_made_once_when_asked(media: Path, sessions: list[ClipSession]) -> None:
    clips.VIDEOS.clear()  # made once per process: not by an earlier test
    session = open_session(sessions, media / "clip.mp4", "clip.mp4")
    result = session.analysis(PoseSettings(), ClipOptions())
    if isinstance(result, Job):
        assert result.wait(120)
        result = result.result
    key = clips.analysis_key(session.upload.staged.digest, PoseSettings(), ClipOptions())
    assert session.annotated_video(key, result) is None  # nobody asked: nothing is made
    job = session.annotated_video(key, result, start=True)
    assert isinstance(job, Job) and session.annotated_video(key, result) is job  # asked again: the same
    assert job.wait(120) and job.state is JobState.DONE
    made = session.annotated_video(key, result)
    assert made is job.result and made[4:8] == b"ftyp"  # from the cache now


def test_an_avi_gets_a_review_copy_after_its_analysis(media: Path, tmp_path: Path,
                                                        sessions: list[ClipSession]) -> None:
    avi = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 30, (960, 540))
    for _, _, rgb in read_frames(media / "clip.mp4"):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    session = ClipSession()
    sessions.append(session)
    upload = session.use_upload("clip.avi", avi.read_bytes(), "clip.avi", "avi")
    assert not upload.playable and upload.info.codec == "mjpeg"
    analysis = session.analysis(PoseSettings(), ClipOptions())
    assert isinstance(analysis, Job)
    copy = session.review_copy()
    assert isinstance(copy, Job) and copy.state is JobState.QUEUED  # behind the analysis: never delays the poses
    assert analysis.wait(120) and copy.wait(120) and copy.state is JobState.DONE
    staged = tmp_path / "copy.mp4"
    staged.write_bytes(copy.result)
    times = [time_s for _, time_s, _ in read_frames(staged)]
    np.testing.assert_allclose(times, analysis.result.series.times_s, atol=1e-3)  # frame for frame the same times
    with av.open(str(staged)) as container:  # H.264 with a keyframe every 12 frames: any step decodes 12 at most
        stream = container.streams.video[0]
        keyframes = [packet.pts for packet in container.demux(stream) if packet.is_keyframe]
    assert stream.codec_context.name == "h264" and len(keyframes) == 5  # 60 frames


def test_asking_again_keeps_the_job_and_new_settings_replace_it(media: Path, sessions: list[ClipSession]) -> None:
    session = open_session(sessions, media / "clip.mp4", "clip.mp4")
    job = session.analysis(PoseSettings(), ClipOptions())
    assert session.analysis(PoseSettings(), ClipOptions()) is job  # a rerun of the page: the same job goes on
    replacement = session.analysis(PoseSettings(complexity="lite"), ClipOptions())
    assert replacement is not job and job.wait(30) and job.state is JobState.CANCELLED
    assert replacement.wait(120) and replacement.state is JobState.DONE
    done = session.analysis(PoseSettings(complexity="lite"), ClipOptions())
    assert done is replacement.result  # finished: from the cache, no job


def test_closing_a_session_cancels_its_job_and_removes_its_staged_file(media: Path,
                                                                       sessions: list[ClipSession]) -> None:
    session = open_session(sessions, media / "clip.mp4", "clip.mp4")
    staged = session.upload.staged
    job = session.analysis(PoseSettings(), ClipOptions())
    session.close()
    assert job.wait(30) and job.state in (JobState.CANCELLED, JobState.DONE)
    for _ in range(100):
        if staged.closed:
            break
        job.wait(0.05)
    assert staged.closed and not staged.path.exists() and session.upload is None
