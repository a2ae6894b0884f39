"""problem resolutions: problems the director marked resolved by hand

Revision ID: 0002_resolutions
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabmail.store.models

revision = "0002_resolutions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "problem_resolutions",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("resolved_at", tabmail.store.models.UTCDateTime(), nullable=False),
        sa.Column("resolved_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_problem_resolutions_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_problem_resolutions")),
    )


def downgrade() -> None:
    op.drop_table("problem_resolutions")
