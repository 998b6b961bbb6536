"""The one place training's independent jobs run: a local process pool, or a Dask cluster when given its address."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from types import TracebackType
from typing import TypeVar

from cryptopredict.training.config import TrainConfig
from cryptopredict.training.model import quiet_prophet
from cryptopredict.training.seam import Executor, Job, result_of

__all__ = ["Executor", "LocalPool", "open_executor"]

J = TypeVar("J", bound=Job)
R = TypeVar("R")


def open_executor(config: TrainConfig) -> Executor:
    """The run's executor: the Dask cluster at `config.cluster.address`, else a local pool of `worker_count()`."""
    if config.cluster.address:
        # Imported only here, not to break a circle (the Dask executor imports only the executor
        # base): without an address no Dask module is loaded and no Client created (a bare
        # distributed.Client() would quietly start a local cluster of its own).
        from cryptopredict.training.cluster import DaskExecutor

        return DaskExecutor(config.cluster)
    return LocalPool(config.worker_count())


class LocalPool:
    """Runs jobs in `workers` processes (in this one when workers <= 1); fits and refits share it."""

    def __init__(self, workers: int) -> None:
        self._pool = ProcessPoolExecutor(max_workers=workers, initializer=quiet_prophet) if workers > 1 else None

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._pool is not None:
            # On a failure, do not wait for the other symbols' jobs to finish.
            self._pool.shutdown(wait=True, cancel_futures=True)

    def map(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[J, R]]:
        """Yield (job, fn(job)) as each job finishes; a failure raises a TrainingError naming its job."""
        if self._pool is None:
            for job in jobs:
                yield job, result_of(job, lambda job=job: fn(job))
            return
        futures: dict[Future[R], J] = {self._pool.submit(fn, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            yield job, result_of(job, future.result)
