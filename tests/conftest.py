from __future__ import annotations

import os
import tempfile

# Before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.pop("TABMAIL_DB", None)
# Logs of the test run (and of its subprocesses) never go to the developer's real log folder.
os.environ["TABMAIL_LOG_DIR"] = tempfile.mkdtemp(prefix="tabmail-test-logs-")

from collections.abc import Iterator
from pathlib import Path

import pytest

from tabmail.services.context import AppContext
from tabmail.store.db import Database
from tabmail.store.secrets import MemoryKeyring

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data missing: {path}")
    return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "tabmail.sqlite3")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def keyring_backend() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def ctx(tmp_path: Path, keyring_backend: MemoryKeyring) -> Iterator[AppContext]:
    context = AppContext.open(tmp_path / "tabmail.sqlite3", keyring_backend=keyring_backend)
    yield context
    context.close()
