"""The one execution seam: every job's result comes back with its job, and a failure names its pair."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cryptopredict.errors import TrainingError
from cryptopredict.training.pool import LocalPool


@dataclass(frozen=True, slots=True)
class _Job:
    symbol: str
    value: int


def _square(job: _Job) -> int:
    if job.value < 0:
        msg = "negative input"
        raise TrainingError(msg)
    return job.value**2


@pytest.mark.parametrize("workers", [1, 2])
def test_every_job_comes_back_with_its_result(workers: int) -> None:
    """map yields each job paired with fn(job), in this process or in a pool of them."""
    jobs = [_Job("BTC/USD", 2), _Job("ETH/USD", 3)]
    with LocalPool(workers) as executor:
        got = dict(executor.map(_square, jobs))
    assert got == {jobs[0]: 4, jobs[1]: 9}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_names_its_pair(workers: int) -> None:
    """A job's error comes back as a TrainingError that starts with the job's pair."""
    with LocalPool(workers) as executor, pytest.raises(TrainingError, match=r"^ETH/USD: negative input$"):
        list(executor.map(_square, [_Job("BTC/USD", 1), _Job("ETH/USD", -1)]))


@dataclass(frozen=True, slots=True)
class _Refit:
    symbol: str
    cutoff: str
    anchor: bool = False


def _refuse(job: _Refit) -> int:
    msg = "no convergence"
    raise TrainingError(msg)


@pytest.mark.parametrize(
    ("job", "named"),
    [
        (_Refit("ETH/USD", "2024-06-01"), "ETH/USD (refit at cutoff 2024-06-01)"),
        (_Refit("ETH/USD", "2026-04-19", anchor=True), "ETH/USD"),
    ],
)
def test_a_failed_refit_names_its_cutoff(job: _Refit, named: str) -> None:
    """A backtest refit's error names its pair and cutoff; the anchor refit's (at the data end) its pair."""
    with LocalPool(1) as executor, pytest.raises(TrainingError) as err:
        list(executor.map(_refuse, [job]))
    assert str(err.value) == f"{named}: no convergence"
