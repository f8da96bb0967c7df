"""A batch on this machine: in this process, or in a pool of processes, one per core, each keeping its models.

Why processes, not threads: an analysis already keeps about one core busy with inference and has its own
decoding, drawing and encoding threads; a second one in another process shares no interpreter lock with it,
so its decoding and writing overlap the first one's inference.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from analysis.batch import (Analyser, BatchInput, BatchRow, BatchSettings, Interrupted, RowHandler, failed_row,
                            one_thread_per_worker)


def run_local(items: Sequence[BatchInput], settings: BatchSettings, out: Path, jobs: int, on_row: RowHandler,
              on_frames: Callable[[int], None]) -> None:
    """Analyse items, `jobs` at a time: in this process for one, else in a pool of processes, each with one
    OpenCV thread and its own models, so that one video's decoding overlaps another's inference.
    Raises Interrupted on Ctrl-C once the running inputs have removed their partial results."""
    if jobs <= 1 or len(items) <= 1:
        _run_here(items, settings, out, on_row, on_frames)
    else:
        _run_in_pool(items, settings, out, min(jobs, len(items)), on_row, on_frames)


def _run_here(items: Sequence[BatchInput], settings: BatchSettings, out: Path, on_row: RowHandler,
              on_frames: Callable[[int], None]) -> None:
    analyser = Analyser(settings)
    try:
        for done, item in enumerate(items):
            try:
                row = analyser.run(item, out, on_frames)
            except KeyboardInterrupt:
                raise Interrupted([item], len(items) - done - 1) from None
            except Exception as error:  # noqa: BLE001 - a breakdown on one input (a bug): its row says so, as in a pool
                row = failed_row(item, error)
            on_row(item, row)
    finally:
        analyser.close()


_worker: Analyser | None = None
_worker_frames: multiprocessing.SimpleQueue | None = None
_worker_stop: threading.Event | None = None


def _start_worker(settings: BatchSettings, frames: multiprocessing.SimpleQueue, stop: threading.Event) -> None:
    """A pool process: Ctrl-C is the parent's to handle (it sets `stop`), models kept."""
    global _worker, _worker_frames, _worker_stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    one_thread_per_worker()
    _worker, _worker_frames, _worker_stop = Analyser(settings), frames, stop


class _NotStarted(Exception):
    """A queued input that a worker took after the stop: nothing of it was done."""


def _run_in_worker(item: BatchInput, out: Path) -> BatchRow:
    assert _worker is not None and _worker_frames is not None and _worker_stop is not None
    if _worker_stop.is_set():
        raise _NotStarted
    return _worker.run(item, out, _worker_frames.put, _worker_stop)


def _run_in_pool(items: Sequence[BatchInput], settings: BatchSettings, out: Path, jobs: int, on_row: RowHandler,
                 on_frames: Callable[[int], None]) -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads (ours, MediaPipe's)
    frames, stop = context.SimpleQueue(), context.Event()
    reader = threading.Thread(target=_forward_frames, args=(frames, on_frames), name="batch-progress", daemon=True)
    reader.start()
    pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                                  initargs=(settings, frames, stop))
    futures = {pool.submit(_run_in_worker, item, out): item for item in items}
    reported: set[concurrent.futures.Future] = set()

    def report(future: concurrent.futures.Future) -> None:
        reported.add(future)
        item = futures[future]
        try:
            on_row(item, future.result())
        except Exception as error:  # noqa: BLE001 - a worker that broke down: its input's row says so
            on_row(item, failed_row(item, error))

    try:
        for future in concurrent.futures.as_completed(futures):
            report(future)
    except KeyboardInterrupt:
        stop.set()
        started = [f for f in futures if not f.cancel()]
        concurrent.futures.wait(started)
        left = [f for f in started if f not in reported]
        for finished in (f for f in left if f.exception() is None):
            report(finished)  # it was done before it saw the stop: its results are in place
        unfinished = [futures[f] for f in left if f.exception() is not None and not isinstance(f.exception(), _NotStarted)]
        not_started = sum(f.cancelled() or isinstance(f.exception(), _NotStarted) for f in futures)
        raise Interrupted(unfinished, not_started) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        frames.put(None)
        reader.join()


def _forward_frames(frames: multiprocessing.SimpleQueue, on_frames: Callable[[int], None]) -> None:
    while (count := frames.get()) is not None:
        on_frames(count)
