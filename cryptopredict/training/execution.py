"""The one place training's independent jobs run: a local process pool, or a Dask cluster when given its address."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TypeVar

from cryptopredict.errors import CryptopredictError, TrainingError
from cryptopredict.training.model import quiet_prophet

if TYPE_CHECKING:
    from cryptopredict.training.config import TrainConfig

__all__ = ["Executor", "Job", "LocalPool", "describe", "open_executor", "result_of"]


class Job(Protocol):
    """Anything sent to the executor names the pair it works on."""

    @property
    def symbol(self) -> str: ...


J = TypeVar("J", bound=Job)
R = TypeVar("R")


class Executor(Protocol):
    """What training calls: `map` runs independent jobs wherever they run; use it as a context manager."""

    def __enter__(self) -> Executor: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def map(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[J, R]]:
        """Yield (job, fn(job)) as each job finishes; a failure raises a TrainingError naming its job."""
        ...


def open_executor(config: TrainConfig) -> Executor:
    """The run's executor: the Dask cluster at `config.cluster.address`, else a local pool of `worker_count()`."""
    if config.cluster.address:
        # Imported only here: without an address no Dask module is loaded and no Client created
        # (a bare distributed.Client() would quietly start a local cluster of its own).
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


def describe(job: Job) -> str:
    """The job as an error names it: its pair, and for a backtest refit its cutoff."""
    cutoff = getattr(job, "cutoff", None)
    if cutoff is None or getattr(job, "anchor", False):
        return job.symbol
    return f"{job.symbol} (refit at cutoff {cutoff})"


def result_of(job: Job, get: Callable[[], R], wrap: tuple[type[BaseException], ...] = (CryptopredictError,)) -> R:
    """`get()`, with an error of one of the `wrap` types re-raised as a TrainingError that names the job."""
    try:
        return get()
    except wrap as exc:
        if isinstance(exc, CryptopredictError) and str(exc).startswith(f"{job.symbol}:"):
            raise
        msg = f"{describe(job)}: {exc}"
        raise TrainingError(msg) from exc
