"""Training on a real Dask cluster on 127.0.0.1 (a LocalCluster, or `dask` scheduler and worker processes)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed
import pytest

from cryptopredict.artifact import MANIFEST_NAME, grid_of, read_artifact
from cryptopredict.errors import TrainingError
from cryptopredict.training.config import ClusterConfig
from tests.cluster_events import KillTheScheduler, KillTheWorker
from tests.helpers import DATA, ROOT, free_port, run_cli, stop
from tests.test_pool import _Refit

pytestmark = [pytest.mark.training, pytest.mark.server]  # what every test here needs (tests/conftest.py)

# Two pairs, two recent years of daily bars, 8 cutoffs: about 20 tasks of well under a second.
ARGS = (
    "--source", "csv", "--csv-dir", str(DATA), "--symbols", "BTC/USD,ETH/USD",
    "--start", "2024-01-01", "--backtest-cutoffs", "8", "--model-version", "test-cluster",
)  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two single-threaded worker processes (each under a nanny that restarts it if killed)."""
    # The scheduler's HTTP server on a free port: with dashboard_address=None it still takes 8787
    # and warns (an error in this suite) when another cluster holds it.
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1"
    ) as c:
        yield c


@pytest.fixture(scope="module")
def local_grids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The forecast grids of the same run through the local pool."""
    out = tmp_path_factory.mktemp("local")
    proc = run_cli("train.py", *ARGS, "--workers", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return _grids(out)


def _grids(out: Path) -> dict[str, Any]:
    """Per symbol, the forecast grid the artifact holds, as the grid it was written from."""
    return {slug: grid_of(fc) for slug, fc in read_artifact(out).forecasts.items()}


def _train_on(cluster: Any, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *ARGS, "--cluster", cluster.scheduler_address, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_cluster_run_writes_the_local_runs_grids(cluster: Any, local_grids: dict[str, Any], tmp_path: Path) -> None:
    """Fits and refits sent to Dask workers give the same forecast grids, value for value, as the local pool."""
    proc = _train_on(cluster, tmp_path)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "distributed." not in stderr  # the driver's progress lines only, no Dask logging
    assert _grids(tmp_path) == local_grids


def test_a_worker_killed_mid_run_is_survived(cluster: Any, local_grids: dict[str, Any], tmp_path: Path) -> None:
    """A worker killed the moment a fit is sent to it costs only time: the tasks move, the grids are unchanged."""
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        client.register_plugin(KillTheWorker())
        try:
            proc = _train_on(cluster, tmp_path)
            _, stderr = proc.communicate(timeout=300)
            killed = client.run_on_scheduler(_killed_worker)
        finally:
            client.unregister_scheduler_plugin(KillTheWorker.name)
    assert killed is not None, "no training task reached a worker: nothing was killed"
    assert proc.returncode == 0, stderr
    assert _grids(tmp_path) == local_grids


def _killed_worker(dask_scheduler: Any) -> int | None:
    """Run on the scheduler: the pid KillTheWorker killed, if any."""
    return dask_scheduler.plugins[KillTheWorker.name].killed


def _fail_on_eth(job: _Refit) -> str:
    if job.symbol == "ETH/USD":
        msg = "the optimiser gave up"
        raise RuntimeError(msg)
    return job.cutoff


def test_a_failed_task_names_its_pair_and_cutoff(cluster: Any) -> None:
    """A task that raises on a worker comes back, after its retries, as one line naming its pair and cutoff."""
    from cryptopredict.training.cluster import DaskExecutor

    jobs = [_Refit("BTC/USD", "2024-05-01"), _Refit("ETH/USD", "2024-06-01")]
    with DaskExecutor(ClusterConfig(address=cluster.scheduler_address, retries=1)) as executor:
        assert dict(executor.map(_fail_on_eth, jobs[:1])) == {jobs[0]: "2024-05-01"}
        with pytest.raises(TrainingError) as err:
            list(executor.map(_fail_on_eth, jobs))
    assert str(err.value) == "ETH/USD (refit at cutoff 2024-06-01): the optimiser gave up"


@contextlib.contextmanager
def _dask_processes(package: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A scheduler and a worker, `dask` processes of their own, importing cryptopredict (and this suite's
    scheduler plugins) from `package`'s folder; yields the scheduler's address and its process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), str(ROOT)])}
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    common: dict[str, Any] = {"cwd": package, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                          "--dashboard-address", "127.0.0.1:0"], **common),
        subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                         **common),
    ]  # fmt: skip
    try:
        yield address, procs[0]
    finally:
        for proc in procs:
            stop(proc)


@pytest.fixture
def other_code_cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and a worker running a copy of the package whose training code differs from this
    checkout's by one comment; yields the scheduler's address."""
    shutil.copytree(ROOT / "cryptopredict", tmp_path / "cryptopredict", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "cryptopredict" / "training" / "jobs.py", "a") as fh:
        fh.write("# an edit the workers were not restarted for\n")
    with _dask_processes(tmp_path) as (address, _):
        yield address


def test_a_cluster_running_other_code_is_refused_in_one_line(other_code_cluster: str, tmp_path: Path) -> None:
    """Workers whose copy of the training code differs from the driver's (same __version__) fail the run in
    one line before any bars are fetched, naming the scheduler and what differs."""
    proc = run_cli("train.py", *ARGS, "--cluster", other_code_cluster, "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"train.py: error: the Dask cluster at {other_code_cluster} runs other versions: ")
    assert "the scheduler has cryptopredict" in lines[0]
    assert "(code " in lines[0]
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_an_unreachable_scheduler_fails_in_one_line(tmp_path: Path) -> None:
    """A scheduler address where nothing listens (a port this test holds, never listening) fails the run in one
    stderr line, after the connect timeout."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{held.getsockname()[1]}"
        proc = run_cli("train.py", *ARGS, "--cluster", address, "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"train.py: error: cannot reach the Dask scheduler at {address}: ")
    assert f"after {ClusterConfig().connect_timeout:g} s" in lines[0]
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_losing_the_scheduler_mid_run_fails_in_one_line(tmp_path: Path) -> None:
    """A real scheduler process killed the moment it sends a fit to a worker fails the run in one stderr line
    naming the scheduler, and no artifact is written."""
    with _dask_processes(ROOT) as (address, scheduler):
        with distributed.Client(address, set_as_default=False, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            client.register_plugin(KillTheScheduler())
        proc = run_cli("train.py", *ARGS, "--cluster", address, "--out", str(tmp_path), timeout=300)
        scheduler.wait(timeout=60)
    assert scheduler.returncode == -signal.SIGKILL
    assert proc.returncode == 1
    # The progress lines printed before the fits, then the one error: no log or traceback from Dask.
    *progress, last = proc.stderr.strip().splitlines()
    assert last.startswith(f"train.py: error: lost the Dask scheduler at {address} mid-run ("), proc.stderr
    assert progress[0].startswith("loading "), proc.stderr
    assert not [line for line in progress if "error" in line.lower() or "distributed" in line], proc.stderr
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_the_cluster_address_also_comes_from_the_environment(tmp_path: Path) -> None:
    """DASK_SCHEDULER_ADDRESS is --cluster's default: the run goes to (here: fails to reach) that scheduler."""
    address = f"tcp://127.0.0.1:{free_port()}"
    proc = run_cli("train.py", *ARGS, "--out", str(tmp_path), env={"DASK_SCHEDULER_ADDRESS": address}, timeout=60)
    assert proc.returncode == 1
    assert f"cannot reach the Dask scheduler at {address}" in proc.stderr


def test_without_an_address_dask_is_never_loaded(tmp_path: Path) -> None:
    """A local run imports no Dask module, so no Client (which would start a cluster of its own) can exist."""
    code = (
        "import sys; from cryptopredict.training.cli import main; "
        f"rc = main({[*ARGS, '--workers', '1', '--backtest-cutoffs', '0', '--out', str(tmp_path)]!r}); "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')); "
        "print(loaded); sys.exit(rc)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
