"""What every executor of training's jobs shares: the job and executor shapes, and how a job's failure is named."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Protocol, TypeVar

from cryptopredict.errors import CryptopredictError, TrainingError

__all__ = ["Executor", "Job", "describe", "result_of"]


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
