"""The panels of a video's background work, shared by the Video and Compare pages: an analysis's progress (with
its Cancel button), a follow-up job's (the review copy, the annotated video), and what the review player plays
meanwhile."""

from __future__ import annotations

import streamlit as st

from analysis import clips
from analysis.clips import ClipSession, VideoUpload
from analysis.jobs import Job, JobState
from views.player import Playback

POLL_S = 1.0


@st.fragment(run_every=POLL_S)
def job_panel(session: ClipSession, job: Job, key: str = "cancel_analysis") -> None:
    """The job's progress, refreshed on its own; once the job has finished, the whole page shows the outcome."""
    if job.state.finished:
        st.rerun(scope="app")
    bar, button = st.columns([7, 1], vertical_alignment="center")
    progress = job.progress
    bar.progress(progress.fraction if progress else 0.0, text=clips.job_sentence(job))
    button.button("Cancel", key=key, on_click=session.cancel, icon=":material/stop:",
                  help="Stop the analysis. Nothing is kept, and temporary files are removed.")
    if progress is not None and progress.remaining_s < POLL_S and job.wait(POLL_S):
        st.rerun(scope="app")  # due before the next poll: the results come the moment it ends, not up to 0.5 s later


@st.fragment(run_every=POLL_S)
def follow_up_panel(job: Job, what: str, doing: str) -> None:
    """A follow-up job's progress (the review copy, the annotated video); the page shows its outcome when done."""
    if job.state.finished:
        st.rerun(scope="app")
    progress = job.progress
    st.progress(progress.fraction if progress else 0.0, text=f"{what}. {clips.job_sentence(job, doing)}")


def playback(session: ClipSession, upload: VideoUpload, privacy: bool) -> Playback:
    """What the player plays: nothing in privacy mode; the review copy once made, and meanwhile the upload
    itself when the browser plays it."""
    if privacy:
        return Playback(note="Privacy mode: the video is not sent to the browser, so the skeleton is drawn on a "
                             "blank background.")
    copy = session.review_copy()
    if not isinstance(copy, Job):
        return Playback(copy)
    codec = upload.info.codec.upper()
    if copy.state is JobState.FAILED:
        session.forget_video(copy)
        if upload.playable and upload.mimetype:
            return Playback(upload.data, upload.mimetype)
        return Playback(note=f"Browsers cannot play this {codec} video and no copy could be made for them "
                             f"({copy.error}), so the skeleton is drawn on a blank background.")
    if upload.playable and upload.mimetype:
        follow_up_panel(copy, "Preparing frame-by-frame stepping (the video plays meanwhile)", "Copying")
        return Playback(upload.data, upload.mimetype)
    follow_up_panel(copy, f"Browsers cannot play {codec} video, so a copy is being made for them", "Copying")
    return Playback(note=f"Browsers cannot play {codec} video: the picture appears once its copy is ready (just "
                         "above). Until then the skeleton is drawn on a blank background.")
