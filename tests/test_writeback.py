"""Writing a corrected address back to the Tabbycat site (PATCH), on its own and from a resend."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Event, MessageState, Templates
from tabmail.domain.tournament import Role
from tabmail.services import importing, notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.outbox import Outbox
from tabmail.services.resend import resend
from tabmail.services.sending import build_backend
from tabmail.services.writeback import write_back_email
from tests.conftest import data_path
from tests.servers.tabbycat import Dataset, TabbycatServer

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


@pytest.fixture(scope="module")
def recordings() -> Dataset:
    return Dataset.from_recordings(data_path("tabbycat-api"))


@pytest.fixture
def server(recordings: Dataset) -> Iterator[TabbycatServer]:
    with TabbycatServer(recordings) as srv:
        yield srv


def _speaker(ctx: AppContext) -> tuple[int, str]:
    t = ctx.tournaments.get("bp88")
    person = next(p for p in ctx.tournaments.people(t.id) if p.role is Role.SPEAKER and p.email_valid)
    assert person.external_id is not None
    return person.id, person.external_id


def test_a_corrected_address_is_patched_on_the_site_and_comes_back_on_reimport(
    ctx: AppContext, server: TabbycatServer
) -> None:
    importing.import_tabbycat(ctx, server.url, "bp88", token="admin")
    pid, tabbycat_id = _speaker(ctx)
    ctx.tournaments.set_person_email(pid, "fixed.address@example.org", source="director")
    words = write_back_email(ctx, pid, token="admin")
    assert "fixed.address@example.org" in words
    assert server.patches == [
        (f"/api/v1/tournaments/bp88/speakers/{tabbycat_id}", {"email": "fixed.address@example.org"})
    ]
    assert ctx.tournaments.address_history(pid)[-1][1:4] == (
        "fixed.address@example.org",
        "fixed.address@example.org",
        "tabbycat",
    )
    again = importing.import_tabbycat(ctx, server.url, "bp88", token="admin")
    assert again.address_changes == []  # the site now says what we say
    assert ctx.tournaments.get_person(pid).email == "fixed.address@example.org"


def test_a_token_without_write_permission_is_told_plainly(ctx: AppContext, server: TabbycatServer) -> None:
    importing.import_tabbycat(ctx, server.url, "bp88", token="admin")
    pid, _ = _speaker(ctx)
    with pytest.raises(TabmailError, match="does not let this token change addresses") as info:
        write_back_email(ctx, pid, token="nonadmin")
    assert "nonadmin" not in str(info.value)
    assert server.patches == []


def test_a_csv_tournament_has_nowhere_to_write(ctx: AppContext) -> None:
    result = load_demo_if_empty(ctx)
    assert result is not None
    person = next(p for p in ctx.tournaments.people(result.tournament_id) if p.email_valid)
    with pytest.raises(TabmailError, match="was not imported from Tabbycat"):
        write_back_email(ctx, person.id)


def test_resend_writes_back_when_the_director_asked_for_it(
    ctx: AppContext, server: TabbycatServer, tmp_path: object
) -> None:
    importing.import_tabbycat(ctx, server.url, "bp88", token="admin")
    ctx.secrets.set("tabbycat-token", "admin")
    ctx.settings.set_text("from_address", "tab@example.org")
    ctx.settings.set_text("tabbycat.write_back", "true")
    pid, tabbycat_id = _speaker(ctx)
    plan = notify.plan(
        ctx, "bp88", Event.CUSTOM, person_ids=[pid], templates=Templates("Hi", "Hello {{ USER }}\n")
    )
    batch = notify.enqueue(ctx, plan)
    asyncio.run(Outbox(ctx.notifications, ctx.flags, lambda name: build_backend(ctx, name), ctx.bus).run())
    sent = ctx.notifications.messages(batch_id=batch.batch_id)[0]
    assert sent.state is MessageState.SENT
    result = asyncio.run(resend(ctx, sent.id, "corrected@example.org"))
    assert result.new_message_id is not None
    assert any("wrote corrected@example.org back" in n for n in result.notes)
    assert server.patches[-1] == (
        f"/api/v1/tournaments/bp88/speakers/{tabbycat_id}",
        {"email": "corrected@example.org"},
    )


def test_no_write_back_over_plain_http_to_another_machine(ctx: AppContext, server: TabbycatServer) -> None:
    importing.import_tabbycat(ctx, server.url, "bp88", token="admin")
    pid, _ = _speaker(ctx)
    with ctx.db.session() as s:  # as if imported from a LAN site with --insecure
        from tabmail.store.models import TournamentRow

        row = s.query(TournamentRow).filter_by(slug="bp88").one()
        row.source_url = "http://tab.example.org"
    with pytest.raises(TabmailError) as err:
        write_back_email(ctx, pid, token="admin")
    assert "over plain http:// the Tabbycat token would travel in clear" in str(err.value)
    assert "--insecure" not in str(err.value)
    assert server.patches == []
