"""inbox messages: what was read from the tab room's mailbox over IMAP

Revision ID: 0003_inbox
Revises: 0002_resolutions
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabmail.store.models

revision = '0003_inbox'
down_revision = '0002_resolutions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('folder', sa.String(length=300), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('received_at', tabmail.store.models.UTCDateTime(), nullable=True),
    sa.Column('processed_at', tabmail.store.models.UTCDateTime(), nullable=False),
    sa.Column('header_message_id', sa.String(length=300), nullable=True),
    sa.Column('from_address', sa.String(length=320), nullable=True),
    sa.Column('from_key', sa.String(length=320), nullable=True),
    sa.Column('from_name', sa.String(length=300), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('matched_by', sa.String(length=30), nullable=True),
    sa.Column('different_sender', sa.Boolean(), nullable=False),
    sa.Column('reply_text', sa.Text(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=True),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.Column('read_at', tabmail.store.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_inbox_messages_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_inbox_messages_person_id_people'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_messages')),
    sa.UniqueConstraint('key', name=op.f('uq_inbox_messages_key'))
    )
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_messages_from_key'), ['from_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_messages_person_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_message_id'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_kind'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_from_key'))
    op.drop_table('inbox_messages')
