"""Scheduler plugins that act at the moment a run's first fit or refit is handed to a worker, not after a sleep.

Registered with `Client.register_plugin`, they run inside the scheduler (a process of its own or a
LocalCluster's), so this module must be importable there (PYTHONPATH holds the checkout).
"""

from __future__ import annotations

import os
import signal
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = ["KillTheScheduler", "KillTheWorker"]


def _is_training_task(key: Any, finish: str) -> bool:
    """A fit or refit (keys run_fit-… / run_refit-…, as the Dask executor names them) just sent to a worker."""
    return finish == "processing" and str(key).startswith("run_")


class KillTheWorker(SchedulerPlugin):
    """SIGKILL the worker process a training task was just sent to, once."""

    name = "kill-the-worker"

    def __init__(self) -> None:
        self.killed: int | None = None

    def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if self.killed is not None or not _is_training_task(key, finish):
            return
        worker = self.scheduler.tasks[key].processing_on
        self.killed = worker.pid
        os.kill(worker.pid, signal.SIGKILL)


class KillTheScheduler(SchedulerPlugin):
    """SIGKILL the scheduler's own process as soon as a training task is sent to a worker."""

    name = "kill-the-scheduler"

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if _is_training_task(key, finish):
            os.kill(os.getpid(), signal.SIGKILL)
