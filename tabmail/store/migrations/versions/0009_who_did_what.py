"""who did what: the person and machine behind each batch, resend, address change and setting

Revision ID: 0009_who_did_what
Revises: 0008_unbounded_strings

Every new column is nullable: NULL means "recorded before tabmail kept it".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tabmail.store.models import UTCDateTime

revision = "0009_who_did_what"
down_revision = "0008_unbounded_strings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as t:
        t.add_column(sa.Column("triggered_on", sa.String(), nullable=True))
    with op.batch_alter_table("messages") as t:
        t.add_column(sa.Column("made_by", sa.String(), nullable=True))
        t.add_column(sa.Column("made_on", sa.String(), nullable=True))
    with op.batch_alter_table("address_changes") as t:
        t.add_column(sa.Column("changed_by", sa.String(), nullable=True))
        t.add_column(sa.Column("changed_on", sa.String(), nullable=True))
    with op.batch_alter_table("settings") as t:
        t.add_column(sa.Column("changed_by", sa.String(), nullable=True))
        t.add_column(sa.Column("changed_on", sa.String(), nullable=True))
        t.add_column(sa.Column("changed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("settings") as t:
        t.drop_column("changed_at")
        t.drop_column("changed_on")
        t.drop_column("changed_by")
    with op.batch_alter_table("address_changes") as t:
        t.drop_column("changed_on")
        t.drop_column("changed_by")
    with op.batch_alter_table("messages") as t:
        t.drop_column("made_on")
        t.drop_column("made_by")
    with op.batch_alter_table("batches") as t:
        t.drop_column("triggered_on")
