"""problems: a partial index on the messages that may be a problem (or resend one)

Revision ID: 0005_problem_index
Revises: 0004_outbox

The Problems view, the navigator's badges and the window title's count read these few thousand
rows of a season's 100,000 through it (tests/bench/bench_gui.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_problem_index"
down_revision = "0004_outbox"
branch_labels = None
depends_on = None

# As this migration wrote it (0011 rewrote it without IN lists).
MAYBE_PROBLEM_SQL = (
    "(state IN ('failed', 'uncertain', 'skipped') "
    "OR delivery_status IN ('bounced', 'blocked', 'dropped', 'spam_report', 'unsubscribed') "
    "OR resend_of IS NOT NULL)"
)


def upgrade() -> None:
    op.create_index(
        "ix_messages_maybe_problem",
        "messages",
        ["batch_id"],
        unique=False,
        sqlite_where=sa.text(MAYBE_PROBLEM_SQL),
        postgresql_where=sa.text(MAYBE_PROBLEM_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_maybe_problem", table_name="messages")
