"""Start-up cost is mostly imports: each command loads only what it uses. (The times themselves
are measured by ``python -m tests.bench startup``, not here.)"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_cli_foundation import BASE_ENV, tabmail

HEAVY = (
    "sqlalchemy",
    "alembic",
    "jinja2",
    "requests",
    "keyring",
    "email_validator",
    "PySide6",
    "asyncio",
    # PostgreSQL support loads only for a postgresql:// database (an Index naming
    # postgresql_where in the models once loaded SQLAlchemy's PostgreSQL dialect, ~30 ms)
    "sqlalchemy.dialects.postgresql",
    "psycopg",
)

LOADED_AFTER = """
import json, sys
from tabmail.launcher import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = {heavy!r}
print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


def loaded_after(*args: str, modules: tuple[str, ...] = HEAVY) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER.format(heavy=modules), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=BASE_ENV,
        timeout=60,
        check=False,
    )
    loaded: list[str] = json.loads(done.stderr.splitlines()[-1])
    return loaded


def test_version_and_help_load_nothing_heavy() -> None:
    assert loaded_after("--version") == []
    assert loaded_after("--help") == []
    assert loaded_after("send", "--help") == []


def test_reading_the_outbox_of_a_current_sqlite_file_loads_nothing_heavy(tmp_path: Path) -> None:
    """At head, ``tabmail outbox`` reads the file through sqlite3 alone (store/sql.py): no
    SQLAlchemy (~0.3 s of a fresh process), no Alembic, templates, HTTP or keyring."""
    db = str(tmp_path / "t.sqlite3")
    assert "alembic" in loaded_after("--db", db, "outbox")  # a new database: the schema is made
    assert loaded_after("--db", db, "outbox") == []
    assert loaded_after("--db", db, "--read-only", "outbox", "--all", "--json") == []


# What queueing a batch (send … --queue-only) does not use: sending, delivery tracking, the inbox.
NOT_FOR_QUEUEING = (
    "tabmail.services.outbox",
    "tabmail.backends.base",
    "tabmail.store.outbox_shared",
    "tabmail.store.tracking",
    "tabmail.store.inbox",
    "tabmail.store.problems",
    "tabmail.store.import_apply",  # and the import bundle's dataclasses
    "tabmail.domain.imported",
    "smtplib",
    "requests",
    "alembic",
)


def test_queueing_a_batch_loads_neither_sending_nor_tracking(tmp_path: Path) -> None:
    db = str(tmp_path / "t.sqlite3")
    demo = str(REPO / "resources" / "demo")
    assert loaded_after("--db", db, "import", "csv", demo, "--tournament", "Demo Open") != []
    queue = ["send", "draw", "--tournament", "demo-open", "--round", "1", "--queue-only", "--yes"]
    assert loaded_after("--db", db, *queue, modules=NOT_FOR_QUEUEING) == []


# SQLAlchemy's import alone is ~0.3 s of a fresh process (issue 9, item 21): on a SQLite file
# the send path is plain SQL (store/sql.py). The import and the schema's creation use it.
ORM = ("sqlalchemy", "tabmail.store.models", "alembic")


def test_sending_on_a_current_sqlite_file_loads_no_sqlalchemy(tmp_path: Path) -> None:
    db = str(tmp_path / "t.sqlite3")
    demo = str(REPO / "resources" / "demo")
    assert loaded_after("--db", db, "import", "csv", demo, "--tournament", "Demo Open", modules=ORM) != []
    assert (
        loaded_after("--db", db, "config", "set", "file.directory", str(tmp_path / "out"), modules=ORM) == []
    )
    send = ["send", "draw", "--tournament", "demo-open", "--round", "1", "--yes"]
    assert loaded_after("--db", db, *send, modules=ORM) == []
    assert len(list((tmp_path / "out").glob("*.eml"))) > 10  # it did send
    assert loaded_after("--db", db, "outbox", "run", modules=ORM) == []


def imported_with(module: str, modules: tuple[str, ...] = ORM) -> list[str]:
    """Which of ``modules`` a fresh Python has loaded after importing ``module``."""
    code = (
        f"import json, sys, {module}; print(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=BASE_ENV,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_inbox_repository_is_plain_sql() -> None:
    """store/inbox.py (the mailbox's messages, the replies' counts ``tabmail status`` shows) runs
    through store/sql.py: importing it loads neither SQLAlchemy nor the ORM models."""
    assert imported_with("tabmail.store.inbox") == []


def test_the_tracking_repository_reads_without_sqlalchemy() -> None:
    """Its reads (``tabmail status``'s sources and latest events) are plain SQL; only storing
    events (store/tracking_ingest.py, made on the first ingest) loads the ORM."""
    assert imported_with("tabmail.store.tracking") == []
    assert imported_with("tabmail.store.tracking_ingest") == ["sqlalchemy", "tabmail.store.models"]


def test_the_problem_repository_and_service_load_no_sqlalchemy() -> None:
    """``tabmail problems`` and the Problems view read through plain SQL (store/problems.py);
    the partial index's condition lives in store/problem_index.py, not in the models."""
    assert imported_with("tabmail.store.problems, tabmail.services.problems") == []


def test_status_and_problems_on_a_current_sqlite_file_load_no_sqlalchemy(tmp_path: Path) -> None:
    """`tabmail status` and `tabmail problems` read through plain SQL (the tracking, problems
    and inbox repositories, and who last checked): 0.61 s best before, on the bench's small
    database, against item 19's 0.5 s for a read-only command."""
    from tabmail.domain.notification import MessageState
    from tabmail.services.context import AppContext

    db = str(tmp_path / "t.sqlite3")
    demo = str(REPO / "resources" / "demo")
    assert loaded_after("--db", db, "import", "csv", demo, "--tournament", "Demo Open", modules=ORM) != []
    queue = ["send", "draw", "--tournament", "demo-open", "--round", "1", "--queue-only", "--yes"]
    assert loaded_after("--db", db, *queue, modules=ORM) == []
    ctx = AppContext.open(db)
    try:
        failed = ctx.notifications.messages()[0].id
        ctx.notifications.mark_unsent(failed, MessageState.FAILED, "550 no such user")
        # no mailbox read: whether the inbox reported on the file batch is the tracking store's read
        assert loaded_after("--db", db, "problems", "--json", modules=ORM) == []
        status = ["--db", db, "status", "--tournament", "demo-open"]
        assert loaded_after(*status, modules=ORM) == []
        assert loaded_after(*status, "--json", modules=ORM) == []
        shown = tabmail(*status, "--json")
        assert shown.returncode == 0, shown.stderr
        (batch,) = json.loads(shown.stdout)["batches"]
        assert [m["state"] for m in batch["messages"] if m["id"] == failed] == ["failed"]
        assert (
            loaded_after("--db", db, "problems", "resolve", failed, "--reason", "phoned", modules=ORM) == []
        )
        assert ctx.problems.resolutions()[failed].reason == "phoned"  # it did resolve
        assert loaded_after("--db", db, "problems", "unresolve", failed, modules=ORM) == []
        assert ctx.problems.resolutions() == {}
    finally:
        ctx.close()


WINDOW_BUILT = """
import json, sys
from PySide6.QtWidgets import QApplication
from tabmail.services.context import AppContext
from tabmail.gui.main_window import MainWindow
app = QApplication([])
ctx = AppContext.open(sys.argv[1])
window = MainWindow(ctx)
window.show()
app.processEvents()
late = ("jinja2", "imapclient", "tabmail.services.inbox", "tabmail.gui.composer", "tabmail.gui.settings")
print(json.dumps(sorted(m for m in late if m in sys.modules)))
window.close()
ctx.close()
"""


def test_the_window_shows_before_the_dialogs_and_the_mailbox_reader_load(tmp_path: Path) -> None:
    """Templates, the composer, the settings dialog and the IMAP stack load when first used."""
    done = subprocess.run(
        [sys.executable, "-c", WINDOW_BUILT, str(tmp_path / "t.sqlite3")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=BASE_ENV | {"QT_QPA_PLATFORM": "offscreen"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_the_collector_is_paused_only_while_a_command_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cli.main pauses Python's cyclic collector while a command loads its modules and opens
    the database; once open, and whatever happens, it collects again (a test run, a long
    ``outbox run --wait``). What the start-up made is frozen once the database is open (a
    collection does not walk it again) and unfrozen when the command ends."""
    from tabmail.cli import common, send_cmds
    from tabmail.cli.main import main

    seen: list[bool] = []
    frozen: list[int] = []
    frozen_before = gc.get_freeze_count()

    def spy(args: Any) -> Any:
        seen.append(gc.isenabled())
        ctx = common.open_context(args)
        seen.append(gc.isenabled())
        frozen.append(gc.get_freeze_count())
        return ctx

    db = str(tmp_path / "t.sqlite3")
    assert gc.isenabled()
    assert main(["--db", db, "outbox"]) == 0  # a new database: made through the full path
    assert gc.isenabled()
    monkeypatch.setattr(send_cmds, "open_context", spy)
    assert main(["--db", db, "outbox"]) == 0
    assert gc.isenabled()
    assert main(["--db", str(tmp_path), "outbox"]) == 1  # a folder: refused in one line
    assert gc.isenabled()
    assert seen == [False, True, False]
    assert frozen[0] > frozen_before + 10_000, frozen  # the modules and the parser, at least
    assert gc.get_freeze_count() == frozen_before
