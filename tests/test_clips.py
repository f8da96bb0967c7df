"""Browser sessions' video analyses as jobs (analysis.clips), with the real model on real videos.

AppTest runs every app under one session id, so sessions are tested here through ClipSession, which the
Video page holds one of per browser session, and in a real browser in tests/test_browser_video.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis import clips
from analysis.clips import ClipSession
from analysis.engine import PoseSettings
from analysis.jobs import Job, JobState
from analysis.result import ClipOptions


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
    assert running.result.result.series.frames == 60 and waiting.result.result.series.frames == 30
    assert running.result.result.source.name == "clip.mp4" and waiting.result.result.source.name == "copy.mp4"
    assert running.result.preview[4:8] == b"ftyp" and len(running.result.stills) == 60


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
