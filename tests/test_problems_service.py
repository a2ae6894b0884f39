"""Problems across tournaments (services/problems.py, store/problems.py) and `tabmail problems`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from tabmail.cli.main import main as cli_main
from tabmail.domain.notification import DeliveryStatus, MessageState
from tabmail.domain.problems import Category, category_of
from tabmail.services import problems as service
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.store.problem_index import MAYBE_PROBLEM_SQL
from tabmail.store.problems import CANDIDATES_SQL

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


def test_the_problem_query_reads_through_the_partial_index(ctx: AppContext) -> None:
    with ctx.db.engine.connect() as conn:
        if ctx.db.engine.dialect.name == "postgresql":
            # An empty table reads faster by a scan: forbid it, so the plan shows whether the
            # query's WHERE matches the partial index's predicate at all.
            conn.execute(text("SET enable_seqscan = off"))
            explain = "EXPLAIN"
        else:
            explain = "EXPLAIN QUERY PLAN"
        plan = conn.execute(text(f"{explain} SELECT id FROM messages WHERE {MAYBE_PROBLEM_SQL}")).all()
        assert any("ix_messages_maybe_problem" in str(row) for row in plan), plan
        # the repository's own query (store/problems.py)
        plan = conn.execute(text(f"{explain} {CANDIDATES_SQL}")).all()
        assert any("ix_messages_maybe_problem" in str(row) for row in plan), plan


def test_categories_fold_state_status_and_flag() -> None:
    from tabmail.domain.notification import FlagKind, Message

    def m(state: MessageState, status: DeliveryStatus = DeliveryStatus.UNKNOWN) -> Message:
        return Message("x", 1, None, "A", "a@example.org", state, delivery_status=status)

    assert category_of(m(MessageState.SENT, DeliveryStatus.BOUNCED)) is Category.BOUNCED
    assert category_of(m(MessageState.SENT, DeliveryStatus.BOUNCED), FlagKind.INVALID) is Category.INVALID
    assert category_of(m(MessageState.SENT, DeliveryStatus.SPAM_REPORT)) is Category.SPAM_REPORT
    assert category_of(m(MessageState.SENT, DeliveryStatus.OPENED)) is Category.DELIVERED
    assert category_of(m(MessageState.RETRYING)) is Category.PENDING
    assert category_of(m(MessageState.SENT)) is Category.SENT


def test_mark_resolved_needs_a_reason_and_a_problem(
    ctx: AppContext, db_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert load_demo_if_empty(ctx) is not None
    from tabmail.domain.notification import Audience, Event
    from tabmail.services import notify

    slug = ctx.tournaments.list_all()[0].slug
    batch = notify.enqueue(
        ctx, notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.TEAMS)
    ).batch_id
    ids = [m.id for m in ctx.notifications.messages(batch_id=batch)]
    ctx.notifications.mark_unsent(ids[0], MessageState.FAILED, "550 no such user")
    ctx.notifications.mark_sent(ids[1], "x", "250 ok", datetime.now(UTC))
    assert [p.message.id for p in service.unresolved(ctx)] == [ids[0]]
    with pytest.raises(service.ProblemError, match="say why"):
        service.mark_resolved(ctx, ids[0], "  ")
    with pytest.raises(service.ProblemError, match="no problem to resolve"):
        service.mark_resolved(ctx, ids[1], "fine")
    db = db_target
    assert cli_main(["--db", db, "problems", "--json"]) == 0
    assert ids[0] in capsys.readouterr().out
    assert cli_main(["--db", db, "problems", "resolve", ids[0], "--reason", "phoned him"]) == 0
    assert service.unresolved(ctx) == []
    assert cli_main(["--db", db, "problems"]) == 0
    assert "no unresolved problems" in capsys.readouterr().out
    assert cli_main(["--db", db, "problems", "unresolve", ids[0]]) == 0
    assert [p.message.id for p in service.unresolved(ctx)] == [ids[0]]


def test_smtp_batches_count_as_tracked_once_the_inbox_is_read(ctx: AppContext) -> None:
    """SMTP bounces arrive in the tab room's mailbox: a resend merely accepted by SMTP must not
    resolve its original while the inbox may still report it bounced."""
    assert load_demo_if_empty(ctx) is not None
    from tabmail.domain.notification import Audience, Event
    from tabmail.services import notify

    ctx.settings.set("backend", "smtp")
    slug = ctx.tournaments.list_all()[0].slug
    batch = notify.enqueue(
        ctx, notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.TEAMS)
    ).batch_id
    assert service.tracked_batch_ids(ctx, [(batch, "smtp")]) == set()
    assert service.tracked_batch_ids(ctx, [(batch, "sendgrid")]) == {batch}
    # an inbox-derived event on one of its messages (e.g. a DSN read before the server was unset)
    from tabmail.store.models import StatusEventRow

    first = ctx.notifications.messages(batch_id=batch)[0].id
    with ctx.db.session() as s:
        s.add(
            StatusEventRow(
                message_id=first,
                provider="inbox",
                provider_event_id="dsn-1",
                event="bounce",
                status="bounced",
                source="imap",
                event_time=datetime.now(UTC),
            )
        )
    assert service.tracked_batch_ids(ctx, [(batch, "smtp")]) == {batch}
    with ctx.db.session() as s:
        s.query(StatusEventRow).delete()
    assert service.tracked_batch_ids(ctx, [(batch, "smtp")]) == set()
    ctx.settings.set("imap.host", "imap.tab.example")
    assert service.tracked_batch_ids(ctx, [(batch, "smtp")]) == {batch}


def _failed_messages(ctx: AppContext, count: int) -> list[str]:
    """A draw queued for the demo's first round, its first ``count`` messages failed."""
    assert load_demo_if_empty(ctx) is not None
    from tabmail.domain.notification import Audience, Event
    from tabmail.services import notify

    slug = ctx.tournaments.list_all()[0].slug
    plan = notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.TEAMS)
    batch = notify.enqueue(ctx, plan).batch_id
    ids = [m.id for m in ctx.notifications.messages(batch_id=batch)][:count]
    assert len(ids) == count
    for i in ids:
        ctx.notifications.mark_unsent(i, MessageState.FAILED, "550 no such user")
    return ids


def test_candidates_come_in_chunks_of_the_size_asked_in_order(ctx: AppContext) -> None:
    ids = _failed_messages(ctx, 5)
    chunks = list(ctx.problems.candidate_chunks(2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    found = [m for c in chunks for m in c]
    assert sorted(m.id for m in found) == sorted(ids)
    assert [(m.batch_id, m.created_at, m.id) for m in found] == sorted(
        (m.batch_id, m.created_at, m.id) for m in found
    )
    assert all(m.state is MessageState.FAILED and m.last_error == "550 no such user" for m in found)
    assert all(m.created_at is not None and m.created_at.tzinfo is UTC for m in found)
    assert [m.id for m in ctx.problems.candidates().messages] == [m.id for m in found]
    sent = ctx.problems.sent_for([found[0].batch_id])[found[0].batch_id]
    assert (sent.round_name, sent.event, sent.tournament_name) == ("Round 1", "draw", "Demo Open")


def test_sql_stream_reads_chunks_as_they_are_asked_for(ctx: AppContext) -> None:
    """Sql.stream (store/sql.py): ``size`` rows at a time; on PostgreSQL through a server-side
    cursor, open between chunks; a caller that stops early leaves the connection usable."""
    _failed_messages(ctx, 5)
    sql = "SELECT id FROM messages ORDER BY id"
    with ctx.db.sql() as q:
        every = [r[0] for r in q.rows(sql)]
        parts = q.stream(sql, None, 3)
        first = next(parts)
        if not q.sqlite:
            assert q.scalar("SELECT count(*) FROM pg_cursors") == 1
        rest = list(parts)
        sizes = [len(first)] + [len(part) for part in rest]
        assert sizes[:-1] == [3] * (len(sizes) - 1) and 1 <= sizes[-1] <= 3, sizes
        assert [r[0] for part in [first, *rest] for r in part] == every
        for part in q.stream(sql, None, 2):
            assert len(part) == 2
            break
        assert q.scalar("SELECT count(*) FROM messages") == len(every)


def test_resolving_twice_keeps_the_last_reason(ctx: AppContext) -> None:
    (first,) = _failed_messages(ctx, 1)
    at = datetime(2026, 12, 3, 18, 30, 5, 123456, tzinfo=UTC)
    ctx.problems.resolve(first, "phoned him", by="Ann", at=at)
    later = datetime(2026, 12, 3, 19, 0, tzinfo=UTC)
    assert ctx.problems.resolve(first, "wrote to his coach", by="Bo", at=later).reason == "wrote to his coach"
    (found,) = ctx.problems.resolutions().values()
    assert (found.message_id, found.reason, found.at, found.by) == (
        first,
        "wrote to his coach",
        later,
        "Bo",
    )
    assert ctx.problems.resolutions([first]) == {first: found}
    assert ctx.problems.resolutions(["nobody"]) == {} and ctx.problems.resolutions([]) == {}
    assert ctx.problems.unresolve(first) is True
    assert ctx.problems.unresolve(first) is False
    assert ctx.problems.resolutions() == {}
