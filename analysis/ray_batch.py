"""A batch on Ray: one task per input on a pool of actors, each keeping its models, on one machine or a cluster.

Why actors and not Ray Data: tracking and filtering need a video's frames in order, so an input is the unit
of work (one video per task), and a MediaPipe model does not pickle: each actor builds its own, once. The
actors write each input's results where the driver says, so inputs and --out must be on a folder that
every node sees at the same path. Nothing here contacts any host but the cluster's: Ray's usage statistics
are switched off before Ray is imported, and no dashboard is started.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from analysis.batch import (Analyser, BatchInput, BatchRow, BatchSettings, Interrupted, RowHandler, failed_row,
                            one_thread_per_worker)

ATTEMPTS = 2  # a task that fails (its actor died, or it raised) is tried once more, then reported in its row


class RayError(RuntimeError):
    """Ray is missing or the cluster cannot be reached; the message says what to do."""


class _Worker:
    """A Ray actor: one thread for OpenCV and decoding (Ray gives each actor a CPU) and one Analyser, kept."""

    def __init__(self, settings: BatchSettings) -> None:
        one_thread_per_worker()
        self._analyser = Analyser(settings)

    def run(self, item: BatchInput, out: Path) -> BatchRow:
        return self._analyser.run(item, out)


def run_on_ray(items: Sequence[BatchInput], settings: BatchSettings, out: Path, address: str | None,
               actors: int | None, on_row: RowHandler, on_frames: Callable[[int], None]) -> None:
    """Analyse items on the Ray cluster at address (None: $RAY_ADDRESS, else a local instance), on `actors`
    actors (default: one per CPU of the cluster). A row arrives through on_row as each input is done, and its
    frames through on_frames (Ray reports whole inputs, not frames). Raises Interrupted on Ctrl-C."""
    if not items:
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        from ray.exceptions import RayError as RayFailure
    except ImportError:
        raise RayError('--ray needs Ray, which is not installed: pip install "posescope[ray]" '
                       "(or pip install ray==2.60.0).") from None
    try:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}})
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = address or os.environ.get("RAY_ADDRESS") or "a local instance"
        raise RayError(f"Ray could not be started or reached at {where}: {' '.join(str(error).split())}") from None
    try:
        count = min(len(items), actors or max(1, int(ray.cluster_resources().get("CPU", 1))))
        actor_class = ray.remote(num_cpus=1, max_restarts=1)(_Worker)
        idle = [actor_class.remote(settings) for _ in range(count)]
        queue = [(item, 1) for item in reversed(items)]
        running: dict[object, tuple[BatchInput, int, object]] = {}
        try:
            while queue or running:
                while queue and idle:
                    item, attempt = queue.pop()
                    actor = idle.pop()
                    running[actor.run.remote(item, out)] = (item, attempt, actor)
                (ready,), _ = ray.wait(list(running), num_returns=1)
                item, attempt, actor = running.pop(ready)
                try:
                    row = ray.get(ready)
                except RayFailure as error:
                    if not _alive(actor):
                        actor = actor_class.remote(settings)
                    idle.append(actor)
                    if attempt < ATTEMPTS:
                        queue.append((item, attempt + 1))
                    else:
                        on_row(item, failed_row(item, error))
                    continue
                idle.append(actor)
                on_frames(row.frames or 0)
                on_row(item, row)
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref)
            unfinished = [item for item, _, _ in running.values()]
            raise Interrupted(unfinished, len(queue)) from None
    finally:
        ray.shutdown()
        _remove_staging(out)


def _alive(actor: object) -> bool:
    """Whether an actor still answers: after a failed task, a dead one (its process killed) is replaced."""
    import ray

    try:
        ray.get(actor.__ray_ready__.remote(), timeout=30)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure to answer means it is gone
        return False
    return True


def _remove_staging(out: Path) -> None:
    """Staging folders of inputs whose actor was stopped mid-way (Ctrl-C, a killed node): never half results."""
    for partial in out.glob(".*.partial"):
        shutil.rmtree(partial, ignore_errors=True)
