"""`tabmail --smoke-test`: start, load, quit, in a fresh process under the offscreen platform."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("TABMAIL_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "tabmail", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_smoke_test_starts_loads_and_quits(tmp_path: Path) -> None:
    db = tmp_path / "smoke.sqlite3"
    result = _run("--db", str(db), "--smoke-test", "--no-demo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "smoke test ok: 0 tournaments"
    assert db.is_file()  # the database was created and migrated


def test_a_database_that_cannot_be_opened_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-database.sqlite3"
    bad.write_bytes(b"this is not SQLite" * 100)
    result = _run("--db", str(bad), "--smoke-test", "--no-demo")
    assert result.returncode != 0
    assert "smoke test ok" not in result.stdout
    assert "tabmail: error:" in result.stderr


def test_the_smoke_test_quits_with_the_demos_mail_waiting_and_leaves_no_task_behind(tmp_path: Path) -> None:
    """With the demo loaded, mail waits to be sent: closing asked the quit question, the window
    stayed open, and the background tasks ran on into qasync's last processEvents outside the
    loop ("RuntimeError: no running event loop", 4-7 runs in 8 before the fix)."""
    for n in range(3):
        result = _run("--db", str(tmp_path / f"demo-{n}.sqlite3"), "--smoke-test")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "smoke test ok: 1 tournaments"
        assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr, result.stderr
