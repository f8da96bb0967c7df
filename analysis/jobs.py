"""Long analyses as background jobs: they outlive the page's reruns, and a process-wide limit queues the rest.

A Streamlit script run stops whenever the user touches a widget; an analysis run inside it would start
again from frame 0. A Job runs on a worker thread of a JobRunner instead: the page only submits it, polls
its progress and reads its result, so sliders, charts and leaving the page never stop it. Only `cancel`
does. The runner runs at most `workers` jobs at once (pose estimation already uses the machine's cores);
the others wait in submission order and know their place in the queue.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Generic, TypeVar

from analysis.stream import Cancelled, Progress

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
# The work: given a progress callback and a stop event, return the result or raise. A ValueError's message
# (VideoError, ModelError, UploadError, …) is a sentence for the user; Cancelled means the stop was seen.
Work = Callable[[Callable[[Progress], None], threading.Event], T]


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class Job(Generic[T]):
    """One submitted piece of work. Read from any thread: state, progress, result, error, queue_position."""

    def __init__(self, key: str, work: Work[T], runner: JobRunner) -> None:
        self.key = key
        self._work, self._runner = work, runner
        self._stop = threading.Event()
        self._finished = threading.Event()
        self.state = JobState.QUEUED
        self.progress: Progress | None = None
        self.result: T | None = None
        self.error: str | None = None

    @property
    def queue_position(self) -> int | None:
        """1 for the next job to start, 2 for the one after…; None once it has started."""
        return self._runner.position(self)

    def cancel(self) -> None:
        """Stop the job (a queued one never starts); returns at once, `wait` for the end."""
        self._stop.set()
        if self._runner.withdraw(self):
            self._end(JobState.CANCELLED)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the job has finished; False on timeout."""
        return self._finished.wait(timeout_s)

    def _run(self) -> None:
        if self._stop.is_set():
            self._end(JobState.CANCELLED)
            return
        self.state = JobState.RUNNING
        try:
            self.result = self._work(self._report, self._stop)
        except Cancelled:
            self._end(JobState.CANCELLED)
        except ValueError as error:  # our errors' messages are sentences for the user
            self.error = str(error)
            self._end(JobState.FAILED)
        except Exception as error:  # noqa: BLE001 - a failed job must say so on the page, not kill the worker
            LOGGER.exception("Job %s failed", self.key)
            self.error = f"The analysis failed unexpectedly ({type(error).__name__}: {error})."
            self._end(JobState.FAILED)
        else:
            self._end(JobState.CANCELLED if self._stop.is_set() and self.result is None else JobState.DONE)

    def _report(self, progress: Progress) -> None:
        self.progress = progress
        if self._stop.is_set():
            raise Cancelled

    def _end(self, state: JobState) -> None:
        self.state = state
        self._work = None  # type: ignore[assignment]  # let go of what the work closed over (files, uploads)
        self._finished.set()


class JobRunner:
    """Runs submitted jobs on `workers` daemon threads, first come first served."""

    def __init__(self, workers: int = 1) -> None:
        self._waiting: deque[Job] = deque()
        self._ready = threading.Condition()
        self._threads = [threading.Thread(target=self._serve, name=f"job-worker-{i + 1}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, key: str, work: Work[T]) -> Job[T]:
        job: Job[T] = Job(key, work, self)
        with self._ready:
            self._waiting.append(job)
            self._ready.notify()
        return job

    def position(self, job: Job) -> int | None:
        with self._ready:
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return None

    def withdraw(self, job: Job) -> bool:
        """Take a job off the queue before it starts; False if it has started (or finished) already."""
        with self._ready:
            try:
                self._waiting.remove(job)
                return True
            except ValueError:
                return False

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._waiting:
                    self._ready.wait()
                job = self._waiting.popleft()
            job._run()  # noqa: SLF001 - the runner is the job's only caller
            # A finished job leaves reference cycles (frames, tracebacks, closures) around large arrays, and
            # Streamlit's collection after each script run is off (.streamlit/config.toml): collect here, once a job.
            gc.collect()
