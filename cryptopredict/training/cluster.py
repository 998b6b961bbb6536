"""Training's jobs on a Dask cluster: the local pool's `map`, run by the workers of a scheduler given by address."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from distributed import Client, Future, as_completed
from distributed.client import FutureCancelledError

import cryptopredict
from cryptopredict import __version__
from cryptopredict.errors import CryptopredictError, TrainingError
from cryptopredict.training.config import ClusterConfig
from cryptopredict.training.model import quiet_prophet
from cryptopredict.training.seam import Job, result_of

__all__ = ["DaskExecutor", "check_versions", "code_digest"]

J = TypeVar("J", bound=Job)
R = TypeVar("R")

# What must match between this driver and the workers: the scheduler and pickling machinery
# (Dask's own list) and the libraries a job's result depends on.
_SCHEDULER_PACKAGES = ("dask", "distributed", "cloudpickle", "tornado", "toolz")
_WORKER_PACKAGES = (*_SCHEDULER_PACKAGES, "numpy", "pandas", "prophet", "cmdstanpy", "msgpack")


@dataclasses.dataclass(frozen=True, slots=True)
class _Task:
    """What a worker runs for one job: quiet Prophet (no pool initializer on Dask), put the frame back, call fn."""

    fn: Callable[[Any], Any]

    def __call__(self, job: Any, frame: Any) -> Any:
        quiet_prophet()
        if frame is not None:
            job = dataclasses.replace(job, frame=frame)
        return self.fn(job)


def _identity(value: Any) -> Any:
    return value


@functools.cache
def code_digest() -> str:
    """A digest of this package's Python source but the serving side: a worker runs its own copy of
    run_fit and run_refit, so the same __version__ is not enough; the same code is."""
    root = Path(cryptopredict.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*.py") if p.relative_to(root).parts[0] != "serving"):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _cryptopredict_version() -> str:
    """Run on the scheduler and the workers: unpickling it there already needs this package."""
    return f"{__version__} (code {code_digest()})"


class _SchedulerLost(Exception):
    """The client lost its scheduler: every task of the run is gone, whatever its pair (not a pair's failure)."""


def _result(future: Future) -> Any:
    """The task's result; a remote error as one line (Dask's own messages run to several)."""
    try:
        return future.result()
    except CryptopredictError:
        raise
    except FutureCancelledError as exc:
        if exc.reason == "scheduler-connection-lost":
            raise _SchedulerLost from None
        raise TrainingError(_first_line(exc)) from exc
    except Exception as exc:
        raise TrainingError(_first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _short(version: str | None) -> str | None:
    """Python as major.minor: pickles cross patch releases, not minor ones."""
    return ".".join(version.split(".")[:2]) if version else version


def check_versions(client: Client, address: str) -> None:
    """Raise a one-line TrainingError when the scheduler or a worker runs other versions than this driver
    (of this package's code, Python, Dask and the libraries a result depends on)."""
    try:
        # The scheduler unpickles the tasks too, so both need this package (the worker image has it).
        ours = {"the scheduler": client.run_on_scheduler(_cryptopredict_version)}
        ours |= {f"worker {name}": v for name, v in client.run(_cryptopredict_version).items()}
    except Exception as exc:  # whatever the remote unpickling raised, said in one line
        msg = f"the Dask cluster at {address} cannot run cryptopredict's tasks: {_first_line(exc)}"
        raise TrainingError(msg) from None
    mine = _cryptopredict_version()
    mismatches = [f"{who} has cryptopredict {v}, this driver {mine}" for who, v in ours.items() if v != mine]
    versions = client.get_versions(packages=list(_WORKER_PACKAGES))
    packages = versions["client"]["packages"]
    others: list[tuple[str, dict[str, Any] | None, tuple[str, ...]]] = [
        ("the scheduler", versions["scheduler"], _SCHEDULER_PACKAGES)
    ]
    others += [(f"worker {name}", info, _WORKER_PACKAGES) for name, info in versions["workers"].items()]
    for who, info, names in others:
        theirs = info.get("packages", {}) if isinstance(info, dict) else {}
        if _short(theirs.get("python")) != _short(packages.get("python")):
            mismatches.append(f"{who} has python {theirs.get('python')}, this driver {packages.get('python')}")
        mismatches += [
            f"{who} has {name} {theirs.get(name)}, this driver {packages.get(name)}"
            for name in names
            if theirs.get(name) != packages.get(name)
        ]
    if mismatches:
        more = f" (and {len(mismatches) - 3} more)" if len(mismatches) > 3 else ""
        msg = f"the Dask cluster at {address} runs other versions: {'; '.join(mismatches[:3])}{more}"
        raise TrainingError(msg)


class DaskExecutor:
    """Sends each job to the cluster as one task; results come back as the plain data the jobs return.

    Each distinct bar frame travels once (as a task of its own, so the scheduler can recompute it
    if the worker holding it dies) and the jobs refer to it. Fetching stays on the driver.
    """

    def __init__(self, settings: ClusterConfig) -> None:
        if not settings.address:
            msg = "a Dask executor needs a scheduler address"
            raise TrainingError(msg)
        self._settings = settings
        address = settings.address
        # The client's own retries and reconnects log lines of their own (Dask's logging settings
        # give distributed.client a level of its own); the one-line errors below say it all.
        for logger in ("distributed", "distributed.client"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        try:
            self._client = Client(address, timeout=settings.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            msg = f"cannot reach the Dask scheduler at {address}: {_first_line(exc)}"
            raise TrainingError(msg) from None
        try:
            try:
                self._client.wait_for_workers(1, timeout=settings.worker_timeout)
            except TimeoutError:
                msg = f"no worker joined the Dask scheduler at {address} within {settings.worker_timeout:g} s"
                raise TrainingError(msg) from None
            check_versions(self._client, address)
        except BaseException:
            self._client.close()
            raise
        self._pending: set[Future] = set()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # ClientExecutor.shutdown has no cancel_futures: cancel what is still queued ourselves, so a
        # failed run leaves no work behind on a shared cluster.
        if self._pending:
            self._client.cancel(list(self._pending))
            self._pending.clear()
        self._client.close()

    def map(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[J, R]]:
        """Yield (job, fn(job)) as each task finishes; a failure raises a TrainingError naming its job."""
        client, jobs = self._client, list(jobs)
        frames: dict[int, Future] = {}
        bare: list[Any] = []
        refs: list[Future | None] = []
        for job in jobs:
            frame = getattr(job, "frame", None)
            if frame is None or not dataclasses.is_dataclass(job):
                bare.append(job)
                refs.append(None)
                continue
            if id(frame) not in frames:
                frames[id(frame)] = client.submit(_identity, frame, pure=False)
            bare.append(dataclasses.replace(job, frame=None))
            refs.append(frames[id(frame)])
        if not jobs:
            return
        # Named keys, not hashed arguments (pure=False would do, but these read well on the
        # scheduler's dashboard and logs): the function, the job's pair, a number unique to this map.
        run = uuid.uuid4().hex[:12]
        name = getattr(fn, "__name__", "task")
        keys = [f"{name}-{job.symbol.replace('/', '-')}-{run}-{i}" for i, job in enumerate(jobs)]
        futures = client.map(_Task(fn), bare, refs, key=keys, pure=False, retries=self._settings.retries)
        by_future = dict(zip(futures, jobs, strict=True))
        self._pending.update(futures, frames.values())
        try:
            for done, future in enumerate(as_completed(futures, loop=client.loop)):
                job = by_future[future]
                self._pending.discard(future)
                try:
                    result = result_of(job, lambda future=future: _result(future))
                except _SchedulerLost:
                    msg = (
                        f"lost the Dask scheduler at {self._settings.address} mid-run "
                        f"({done} of {len(jobs)} tasks of this step had finished); nothing is written"
                    )
                    raise TrainingError(msg) from None
                yield job, result
        finally:
            left = [f for f in futures if f in self._pending]
            if left:
                client.cancel(left)
            self._pending.difference_update(futures, frames.values())
            client.cancel(list(frames.values()))
