"""This computer's name in claims and the lease length (services/machine.py): the environment
can set both for a tab room (and for tests playing several laptops); a bad value is one line."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tabmail.domain.actor import this_machine
from tabmail.domain.errors import TabmailError
from tabmail.services.machine import lease_seconds, machine_name
from tabmail.services.outbox import new_owner
from tests.outbox_support import REPO, cli_env


def test_the_machine_name_is_the_host_name_unless_the_environment_names_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TABMAIL_MACHINE", raising=False)
    assert machine_name() == socket.gethostname()
    monkeypatch.setenv("TABMAIL_MACHINE", "tabroom-2")
    assert machine_name() == "tabroom-2"
    assert new_owner().startswith("tabroom-2:")
    assert this_machine() == "tabroom-2"  # "who did what" names the same machine


@pytest.mark.parametrize("bad", ["a:b", "two words", "x" * 65, "tab\x1broom"])
def test_a_machine_name_that_cannot_be_one_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("TABMAIL_MACHINE", bad)
    with pytest.raises(TabmailError, match="TABMAIL_MACHINE must be a machine name"):
        machine_name()


def test_the_lease_is_60_seconds_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TABMAIL_LEASE_SECONDS", raising=False)
    assert lease_seconds() == 60.0
    monkeypatch.setenv("TABMAIL_LEASE_SECONDS", "2.5")
    assert lease_seconds() == 2.5
    for bad in ("soon", "0.5", "nan", "inf", "-3"):
        monkeypatch.setenv("TABMAIL_LEASE_SECONDS", bad)
        with pytest.raises(TabmailError, match="TABMAIL_LEASE_SECONDS must be a number of seconds"):
            lease_seconds()


def test_outbox_run_with_a_bad_lease_says_so_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tabmail", "--db", str(tmp_path / "t.sqlite3"), "outbox", "run"],
        cwd=REPO,
        env=cli_env(TABMAIL_LEASE_SECONDS="soon"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        "tabmail: error: TABMAIL_LEASE_SECONDS must be a number of seconds, at least 1, not 'soon'"
    ]
