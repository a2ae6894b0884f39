"""Inbox rows stored as the IMAP reader stores them, for GUI tests that are about what the
window shows (the reading itself runs against the real Dovecot in test_inbox_e2e.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from tabmail.domain.addresses import address_key
from tabmail.domain.notification import Event
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.importing import import_csv
from tabmail.store.models import PersonRow, TournamentRow
from tests.datafiles import data_path

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
_keys = itertools.count(1)


def add_inbox(
    ctx: AppContext,
    message_id: str | None,
    *,
    kind: str = "reply",
    read: bool = False,
    sender: str = "someone@example.org",
    subject: str = "Re: Round 1",
    text: str = "I cannot chair this room.",
    minutes: int = 0,
    detail: dict[str, Any] | None = None,
    from_name: str = "",
    at: datetime | None = None,
) -> int:
    """One inbox row attached to ``message_id`` (None: unmatched); returns its id."""
    n = next(_keys)
    person = ctx.inbox.people_of([message_id]).get(message_id) if message_id else None
    raw = (
        f"From: {sender}\r\nTo: tab@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <in{n}@example.org>\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        '\r\n> quoted history\r\n<img src="https://tracker.example/p.gif">\r\n'
    ).encode()
    ctx.inbox.add(
        [
            {
                "key": f"test-{n}",
                "folder": "INBOX",
                "uidvalidity": 1,
                "uid": n,
                "kind": kind,
                "received_at": at or T0 + timedelta(minutes=minutes or n),
                "processed_at": T0,
                "header_message_id": f"<in{n}@example.org>",
                "from_address": sender,
                "from_key": address_key(sender),
                "from_name": from_name,
                "subject": subject,
                "message_id": message_id,
                "person_id": person,
                "matched_by": "in_reply_to" if message_id else None,
                "different_sender": False,
                "reply_text": text if kind in ("reply", "auto_reply") else None,
                "detail": detail or {},
                "raw": raw,
                "truncated": False,
                "read_at": T0 if read else None,
            }
        ]
    )
    return max(e.id for e in ctx.inbox.entries(limit=None))


def two_team_sent(ctx: AppContext) -> dict[str, list[str]]:
    """Two Team with round 1's draw and the private URLs sent: {"draw": ids, "urls": ids}."""

    import_csv(ctx, data_path("two-team-csv"), "Two Team")
    ctx.settings.set_text("from_address", "tab@example.org")
    ctx.settings.set_text("backend", "file")
    with ctx.db.session() as s:  # as if from a Tabbycat site: private URL keys
        s.execute(update(TournamentRow).values(source_url="https://tab.example"))
        s.execute(update(PersonRow).values(url_key=PersonRow.name))
    draw = notify.enqueue(ctx, notify.plan(ctx, "two-team", Event.DRAW, round_seq=1))
    plan = notify.plan(ctx, "two-team", Event.URLS)
    urls = notify.enqueue(ctx, plan, selected=[p.key for p in plan.recipients])
    return {"draw": _sent(ctx, draw.batch_id), "urls": _sent(ctx, urls.batch_id)}


def _sent(ctx: AppContext, batch_id: int) -> list[str]:
    ids = [m.id for m in ctx.notifications.messages(batch_id=batch_id)]
    for mid in ids:
        ctx.notifications.mark_sent(mid, f"x-{mid}", "250 ok", T0)
    return ids
