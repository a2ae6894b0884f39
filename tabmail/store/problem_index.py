"""The condition of the partial index ``ix_messages_maybe_problem``, as SQL text.

Its own module, with no SQLAlchemy: the schema (models.py, migration 0011) builds the index from
it, and the problem query (problems.py, plain SQL) must use this very text for SQLite to pick
the index; importing the models for it would load SQLAlchemy in ``tabmail problems``.
"""

from __future__ import annotations

# Messages that may be a problem (or resend one): the Problems view and the problem counts read
# exactly these through a partial index, a few thousand rows out of a season's 100,000.
# Equalities, not IN lists: SQLite checks the condition on every UPDATE of a message's state
# (the row before and after), and each IN list built a lookup table each time, about half of
# what each outbox write cost per message (migration 0011).
MAYBE_PROBLEM_SQL = "({})".format(
    " OR ".join(
        [f"state = '{s}'" for s in ("failed", "uncertain", "skipped")]
        + [
            f"delivery_status = '{d}'"
            for d in ("bounced", "blocked", "dropped", "spam_report", "unsubscribed")
        ]
        + ["resend_of IS NOT NULL"]
    )
)
