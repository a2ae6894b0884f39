"""notification kinds: what private URLs, motions, points, registrations and scheduled batches need

Revision ID: 0006_notification_kinds
Revises: 0005_problem_index

Every new column is nullable: NULL means "the source did not say" (an older import).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tabmail.store.models import UTCDateTime

revision = "0006_notification_kinds"
down_revision = "0005_problem_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tournaments") as t:
        t.add_column(sa.Column("details", sa.JSON(), nullable=True))
    with op.batch_alter_table("teams") as t:
        t.add_column(sa.Column("break_categories", sa.JSON(), nullable=True))
    with op.batch_alter_table("people") as t:
        t.add_column(sa.Column("details", sa.JSON(), nullable=True))
    with op.batch_alter_table("rounds") as t:
        t.add_column(sa.Column("motions_released", sa.Boolean(), nullable=True))
        t.add_column(sa.Column("available_teams", sa.JSON(), nullable=True))
    with op.batch_alter_table("batches") as t:
        t.add_column(sa.Column("scheduled_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as t:
        t.drop_column("scheduled_at")
    with op.batch_alter_table("rounds") as t:
        t.drop_column("available_teams")
        t.drop_column("motions_released")
    with op.batch_alter_table("people") as t:
        t.drop_column("details")
    with op.batch_alter_table("teams") as t:
        t.drop_column("break_categories")
    with op.batch_alter_table("tournaments") as t:
        t.drop_column("details")
