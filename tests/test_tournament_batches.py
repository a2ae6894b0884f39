"""Tournament-wide batches (private URLs, registration) have no round: the store lists them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tabmail.services.context import AppContext
from tests.status_support import sent_batch, small_tournament

pytestmark = pytest.mark.timeout(60)
BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


def test_batches_without_a_round_are_listed_per_tournament(ctx: AppContext) -> None:
    people = small_tournament(ctx, ["a@example.org", "b@example.org"])
    small_tournament(ctx, ["c@example.org"], slug="other")
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    mine = sent_batch(ctx, [("m1", "a@example.org", "x1"), ("m2", "b@example.org", "x2")], now, people=people)
    sent_batch(ctx, [("o1", "c@example.org", "y1")], now, slug="other")
    tournament = ctx.tournaments.get("mini")

    listed = ctx.notifications.batches(tournament_id=tournament.id, no_round=True)

    assert [s.batch.id for s in listed] == [mine]
    assert listed[0].total == 2
    with pytest.raises(ValueError, match="round_id or no_round"):
        ctx.notifications.batches(round_id=1, no_round=True)
