"""Who did what (#13 item 5): each batch, resend, address correction and setting change records
the person (the user.name setting of this machine, else the login name) and the machine."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tabmail.cli.main import main
from tabmail.domain.actor import login_name
from tabmail.domain.notification import Audience, Event
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.resend import resend
from tabmail.status.events import derive_status
from tests.keyrings import MemoryKeyring
from tests.status_support import sent_batch, small_tournament
from tests.test_resend import bounce, run_outbox

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HOST = socket.gethostname()


def test_the_login_name_until_user_name_is_set_for_this_machine(ctx: AppContext) -> None:
    assert (ctx.user, ctx.machine) == (login_name(), HOST)
    ctx.settings.set_text("user.name", "Alice Chief")
    assert ctx.user == "Alice Chief"
    assert ctx.settings.get("user.name") == "Alice Chief"
    # Kept per machine: another laptop on the same database does not see it as its own.
    assert ctx.settings.is_set("user.name")
    with ctx.db.session() as s:
        from tabmail.store.models import SettingRow

        assert s.get(SettingRow, f"user.name@{HOST}") is not None
        assert s.get(SettingRow, "user.name") is None


def test_a_batch_records_who_sent_it_and_from_which_machine(ctx: AppContext) -> None:
    assert load_demo_if_empty(ctx) is not None
    ctx.settings.set_text("user.name", "Alice Chief")
    result = notify.enqueue(
        ctx, notify.plan(ctx, "demo-open", Event.DRAW, round_seq=1, audience=Audience.ALL)
    )
    batch = ctx.notifications.get_batch(result.batch_id)
    assert (batch.triggered_by, batch.triggered_on) == ("Alice Chief", HOST)


def test_a_resend_and_its_address_correction_record_who_and_where(ctx: AppContext, tmp_path: Path) -> None:
    ctx.settings.set("backend", "file")
    ctx.settings.set("file.directory", str(tmp_path / "eml"))
    people = small_tournament(ctx, ["ann@example.org"])
    sent_batch(ctx, [("m-ann", "ann@example.org", "XA")], T0, people=people)
    ctx.tracking.ingest([bounce("m-ann", "ann@example.org")], derive=derive_status)
    ctx.settings.set_text("user.name", "Ben Deputy")
    result = asyncio.run(resend(ctx, "m-ann", "ann.fixed@example.org", now=T0 + timedelta(hours=1)))
    new = ctx.notifications.get(result.new_message_id or "")
    assert (new.made_by, new.made_on) == ("Ben Deputy", HOST)
    assert ctx.notifications.get("m-ann").made_by is None  # the batch's own message: the batch says
    history = ctx.tournaments.address_history(people["ann@example.org"])
    assert [(c.source, c.new, c.by, c.machine) for c in history] == [
        ("resend", "ann.fixed@example.org", "Ben Deputy", HOST)
    ]
    assert history[0].who_words() == f"Ben Deputy on {HOST}"


def test_a_setting_change_records_who_where_and_when(ctx: AppContext) -> None:
    ctx.settings.set_text("user.name", "Cat Tab")
    ctx.settings.set_text("from_address", "tab@league.example")
    by, on, at = ctx.settings.changes()["from_address"]
    assert (by, on) == ("Cat Tab", HOST)
    assert at is not None and abs((datetime.now(UTC) - at).total_seconds()) < 60


def test_cli_shows_who_in_status_people_history_and_config(
    db_target: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    ctx = AppContext.open(db_target, keyring_backend=MemoryKeyring())
    try:
        ctx.settings.set("backend", "file")
        ctx.settings.set("file.directory", str(tmp_path / "eml"))
        ctx.settings.set_text("user.name", "Dee Director")
        people = small_tournament(ctx, ["ann@example.org"])
        batch_id = notify.enqueue(ctx, notify.plan(ctx, "mini", Event.CUSTOM, audience=Audience.ALL)).batch_id
        run_outbox(ctx)
        mid = ctx.notifications.messages(batch_id=batch_id)[0].id
        ctx.tracking.ingest([bounce(mid, "ann@example.org")], derive=derive_status)
        resent = asyncio.run(resend(ctx, mid, "ann.fixed@example.org", now=T0 + timedelta(hours=1)))
    finally:
        ctx.close()
    who = f"Dee Director on {HOST}"
    assert main(["--db", db_target, "status", "--tournament", "mini", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (batch,) = data["batches"]
    assert (batch["triggered_by"], batch["triggered_on"]) == ("Dee Director", HOST)
    by_id = {m["id"]: m for m in batch["messages"]}
    assert (by_id[resent.new_message_id]["made_by"], by_id[resent.new_message_id]["made_on"]) == (
        "Dee Director",
        HOST,
    )
    assert main(["--db", db_target, "status", "--tournament", "mini"]) == 0
    out = capsys.readouterr().out
    assert f"by {who}," in out.splitlines()[0]
    assert f"(resend of {mid} by {who})" in out
    assert main(["--db", db_target, "people", "--tournament", "mini", "--history", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ann = next(r for r in rows if r["id"] == people["ann@example.org"])
    assert [(h["source"], h["by"], h["on"]) for h in ann["address_history"]] == [
        ("resend", "Dee Director", HOST)
    ]
    assert main(["--db", db_target, "people", "--tournament", "mini", "--history"]) == 0
    assert f"-> ann.fixed@example.org (by {who})" in capsys.readouterr().out
    assert main(["--db", db_target, "config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["settings"]["user.name"] == "Dee Director"
    # user.name itself was changed before it applied: by the login name.
    assert (shown["changed"]["user.name"]["by"], shown["changed"]["user.name"]["on"]) == (login_name(), HOST)
