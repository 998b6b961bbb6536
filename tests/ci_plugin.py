"""Under CI=true a skipped test fails the session: a run without a tool must not look green."""

from __future__ import annotations

import pytest

from tests.helpers import on_ci

__all__ = ["pytest_collectreport", "pytest_runtest_logreport", "pytest_sessionfinish"]

_skipped: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Remember a module skipped whole at collection (as `require_tool` does)."""
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember every skipped test (an expected failure, xfail, is not a skip)."""
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under CI=true, any skip turns the session's exit status into a failure, naming what skipped."""
    if not (on_ci() and _skipped):
        return
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"CI=true: {len(_skipped)} test(s) skipped, which CI does not allow:", red=True)
        for nodeid in _skipped:
            reporter.write_line(f"  {nodeid}", red=True)
