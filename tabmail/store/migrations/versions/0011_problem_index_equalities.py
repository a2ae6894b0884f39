"""problem index without IN lists: changing a message's state no longer builds lookup tables

Revision ID: 0011_problem_index_equalities
Revises: 0010_replies_detached

SQLite evaluates a partial index's condition on every UPDATE of a column it names, for the row
before and after. Migration 0005 wrote ``ix_messages_maybe_problem``'s condition with IN lists,
and SQLite built a temporary lookup table for each list on each evaluation: about half of what
each claim and each result the outbox writes cost (1,150 claims and results: ~75 against ~45 ms
of CPU). The same condition as a chain of equalities (``problem_index.MAYBE_PROBLEM_SQL``) selects the
same rows through the same index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tabmail.store.problem_index import MAYBE_PROBLEM_SQL

revision = "0011_problem_index_equalities"
down_revision = "0010_replies_detached"
branch_labels = None
depends_on = None

# Migration 0005's condition, as it wrote it.
WITH_IN_LISTS = (
    "(state IN ('failed', 'uncertain', 'skipped') "
    "OR delivery_status IN ('bounced', 'blocked', 'dropped', 'spam_report', 'unsubscribed') "
    "OR resend_of IS NOT NULL)"
)


def _index(condition: str) -> None:
    op.drop_index("ix_messages_maybe_problem", table_name="messages")
    op.create_index(
        "ix_messages_maybe_problem",
        "messages",
        ["batch_id"],
        unique=False,
        sqlite_where=sa.text(condition),
        postgresql_where=sa.text(condition),
    )


def upgrade() -> None:
    _index(MAYBE_PROBLEM_SQL)


def downgrade() -> None:
    _index(WITH_IN_LISTS)
