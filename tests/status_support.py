"""Helpers for the delivery-status tests: a tiny tournament and batches of sent messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tabmail.domain.addresses import address_key
from tabmail.domain.imported import ImportBundle, PersonData, TournamentData
from tabmail.domain.notification import Event, Templates
from tabmail.domain.tournament import Role
from tabmail.services.context import AppContext
from tabmail.store.notifications import NewBatch, NewMessage


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
    for mid, _, x_id in messages:
        ctx.notifications.claim([mid])
        ctx.notifications.mark_sent(mid, x_id, "accepted", sent_at)
    return batch_id
