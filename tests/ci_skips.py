"""On CI (``CI=true``) a skipped test is a failure unless its reason is one CI cannot meet.

CI starts from a bare Debian machine as root and installs everything the tests need
(tools/system-deps.sh, the ``test`` and ``package`` extras), so a skip there means a test did not
run for a reason nobody chose. Loaded from tests/conftest.py as a plugin.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

# Skip reasons (their start) that a CI machine cannot meet, each with why. Anything else that
# skips while CI=true fails the run; to add a skip, install what it needs in tools/system-deps.sh
# or pyproject.toml instead, or name here why CI cannot have it.
SKIPS_CI_CANNOT_MEET: dict[str, str] = {
    "POSIX file modes": "only skipped on Windows; CI is Debian",
}


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    return text.removeprefix("Skipped: ")


def _unexpected(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The skip's reason when it must fail on CI, else None."""
    if not (report.skipped and on_ci()) or hasattr(report, "wasxfail"):
        return None
    reason = _reason(report)
    if any(reason.startswith(allowed) for allowed in SKIPS_CI_CANNOT_MEET):
        return None
    return reason


def _fail(report: pytest.TestReport | pytest.CollectReport, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"skipped on CI ({reason}): CI installs what the tests need, so this skip is a failure; "
        "meet the condition in tools/system-deps.sh or name it in tests/ci_skips.py SKIPS_CI_CANNOT_MEET"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    reason = _unexpected(report)
    if reason is not None:
        _fail(report, reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, None, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()  # type: ignore[attr-defined]
    reason = _unexpected(report)
    if reason is not None:
        _fail(report, reason)
