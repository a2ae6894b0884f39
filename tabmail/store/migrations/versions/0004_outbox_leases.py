"""outbox: the backend each message was queued for, and leases on messages being sent

Revision ID: 0004_outbox
Revises: 0003_inbox
Create Date: 2026-12-02 18:00:00

- messages.backend: the backend a message is sent through (smtp, sendgrid, file), kept from the
  moment it is queued; filled from its batch for existing messages.
- messages.lease_owner / lease_expires_at: who holds a message in 'sending' (host:pid:token) and
  until when, so a second tabmail process never mistakes a live process's work for a crash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabmail.store.models

revision = "0004_outbox"
down_revision = "0003_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backend", sa.String(length=50), server_default="", nullable=False))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", tabmail.store.models.UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE messages SET backend = "
        "(SELECT batches.backend FROM batches WHERE batches.id = messages.batch_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("backend")
