"""Helpers for the delivery-status tests: a tiny tournament and batches of sent messages."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update

from tabmail.domain.addresses import address_key
from tabmail.domain.imported import ImportBundle, PersonData, TournamentData
from tabmail.domain.notification import Event, Templates
from tabmail.domain.tournament import Role
from tabmail.providers.sendgrid import SendGridClient
from tabmail.services.context import AppContext
from tabmail.store.models import MessageRow
from tabmail.store.notifications import NewBatch, NewMessage
from tests.servers.sendgrid import SendGridTestServer


def small_tournament(ctx: AppContext, addresses: Sequence[str], slug: str = "mini") -> dict[str, int]:
    """A tournament with one adjudicator per address. Returns person id by address."""
    bundle = ImportBundle(
        tournament=TournamentData(slug=slug, name="Mini Open", short_name="Mini"),
        people=[
            PersonData(key=f"p{i}", name=f"Person {i}", role=Role.ADJUDICATOR, email=a)
            for i, a in enumerate(addresses)
        ],
    )
    result = ctx.tournaments.apply_import(bundle)
    people = ctx.tournaments.people(result.tournament_id)
    return {p.email or "": p.id for p in people}


def sent_batch(
    ctx: AppContext,
    messages: Sequence[tuple[str, str, str | None]],
    sent_at: datetime,
    *,
    slug: str = "mini",
    people: dict[str, int] | None = None,
    subject: str = "Draw for {{ ROUND }}",
) -> int:
    """A batch of messages (tabmail id, address, X-Message-Id or None), all marked sent."""
    tournament = ctx.tournaments.get(slug)
    batch_id = ctx.notifications.create_batch(
        NewBatch(
            tournament_id=tournament.id,
            round_id=None,
            event=Event.CUSTOM,
            audience=None,
            templates=Templates(subject, "Hello {{ USER }}"),
            backend="sendgrid",
            triggered_by="test",
        ),
        [
            NewMessage(
                id=mid,
                person_id=(people or {}).get(addr),
                recipient_name=f"Recipient {mid}",
                role="adjudicator",
                address=addr,
                address_key=address_key(addr) or "",
                envelope_from="tab@example.org",
                envelope_to=addr,
                subject="Draw",
                context={"USER": f"Recipient {mid}", "ROUND": "Round 1"},
                reasons=("you judge",),
                raw=b"Subject: Draw\r\n\r\nHello\r\n",
                message_id_header=f"<{mid}@example.org>",
            )
            for mid, addr, _ in messages
        ],
    )
    # as the outbox leaves them (claimed, then sent with the X-Message-Id), in one statement
    with ctx.db.session() as s:
        s.execute(
            update(MessageRow),
            [
                {"id": mid, "state": "sent", "attempts": 1, "sent_at": sent_at, "provider_message_id": x_id}
                for mid, _, x_id in messages
            ],
        )
    return batch_id


class ResetKeepingServer(SendGridTestServer):
    """The loopback server, except that while a reset set with ``rate_limited_until`` is in the
    future every answer on that path says ``X-RateLimit-Remaining: 0`` with that reset. (The base
    server replaces a fault's own X-RateLimit-* headers with its generic ones, so a scripted 429
    would otherwise announce a reset one second away.)"""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.resets: dict[str, int] = {}

    def rate_limited_until(self, path: str, reset_in: float) -> None:
        reset = math.ceil(self.clock.now() + reset_in)
        self.resets[path] = reset
        self.fail_rate_limited(reset_in=reset_in, path=path)

    def _rate_headers(self, path: str) -> dict[str, str]:
        headers = super()._rate_headers(path)
        for prefix, reset in self.resets.items():
            if path.startswith(prefix) and self.clock.now() < reset:
                names = {k.lower(): k for k in headers}
                headers[names["x-ratelimit-remaining"]] = "0"
                headers[names["x-ratelimit-reset"]] = str(reset)
        return headers


def send_through(
    ctx: AppContext,
    client: SendGridClient,
    addresses: Sequence[str],
    sent_at: datetime,
    *,
    people: dict[str, int] | None = None,
    prefix: str = "m",
    per_request: int = 1,
    between: Callable[[], object] | None = None,
) -> tuple[int, dict[str, str]]:
    """POST mail-sends with one personalization per address carrying custom_args tabmail_id (as
    the backend does), ``per_request`` personalizations per request, calling ``between`` after
    each request; then record them as a sent batch with their X-Message-Ids.
    Returns (batch id, tabmail id by address)."""
    ids = {address: f"{prefix}{n:04d}-{address.split('@')[0]}" for n, address in enumerate(addresses)}
    rows: list[tuple[str, str, str | None]] = []
    for start in range(0, len(addresses), per_request):
        chunk = addresses[start : start + per_request]
        answer = client.request(
            "POST",
            "/v3/mail/send",
            json={
                "personalizations": [
                    {"to": [{"email": a}], "custom_args": {"tabmail_id": ids[a]}} for a in chunk
                ],
                "from": {"email": "tab@example.org", "name": "Tab Room"},
                "subject": "Draw for Round 1",
                "content": [{"type": "text/plain", "value": "Hello"}],
            },
        )
        rows += [(ids[a], a, answer.message_id) for a in chunk]
        if between is not None:
            between()
    return sent_batch(ctx, rows, sent_at, people=people), ids
