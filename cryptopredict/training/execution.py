"""The one place training's independent jobs run: today a local process pool."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from types import TracebackType
from typing import Protocol, TypeVar

from cryptopredict.errors import CryptopredictError, TrainingError
from cryptopredict.training.model import quiet_prophet

__all__ = ["Executor", "Job"]


class Job(Protocol):
    """Anything sent to the executor names the pair it works on."""

    @property
    def symbol(self) -> str: ...


J = TypeVar("J", bound=Job)
R = TypeVar("R")


class Executor:
    """Runs jobs in `workers` processes (in this one when workers <= 1); use it as a context manager.

    Fits and backtest refits share one pool. A later executor (a Dask cluster) replaces this class
    and nothing else: the rest of training only calls `map`.
    """

    def __init__(self, workers: int) -> None:
        self._pool = ProcessPoolExecutor(max_workers=workers, initializer=quiet_prophet) if workers > 1 else None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._pool is not None:
            # On a failure, do not wait for the other symbols' jobs to finish.
            self._pool.shutdown(wait=True, cancel_futures=True)

    def map(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[J, R]]:
        """Yield (job, fn(job)) as each job finishes; a failure raises a TrainingError naming its pair."""
        if self._pool is None:
            for job in jobs:
                yield job, _result(job, lambda job=job: fn(job))
            return
        futures: dict[Future[R], J] = {self._pool.submit(fn, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            yield job, _result(job, future.result)


def _result(job: Job, get: Callable[[], R]) -> R:
    try:
        return get()
    except CryptopredictError as exc:
        if str(exc).startswith(f"{job.symbol}:"):
            raise
        msg = f"{job.symbol}: {exc}"
        raise TrainingError(msg) from exc
