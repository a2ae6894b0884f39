"""replies detached: a reply attached by hand and detached again is announced to other laptops

Revision ID: 0010_replies_detached
Revises: 0009_who_did_what

Migration 0007's ``replies_read`` trigger names the message ids of the updated rows as they are
after the update. Detaching a reply (the director's Edit → Undo of "attach by hand") clears its
message id, so nothing was announced and other laptops kept counting it as that message's
reply. The trigger now names the ids before and after the update.
"""

from __future__ import annotations

from alembic import op

revision = "0010_replies_detached"
down_revision = "0009_who_did_what"
branch_labels = None
depends_on = None

BEFORE_AND_AFTER = (
    "PERFORM tabmail_notify('r', (SELECT jsonb_agg(DISTINCT message_id) FROM ("
    "SELECT message_id, kind FROM new_rows UNION ALL SELECT message_id, kind FROM old_rows) AS r "
    "WHERE message_id IS NOT NULL AND kind = 'reply'), 100);"
)
AFTER_ONLY = (
    "PERFORM tabmail_notify('r', (SELECT jsonb_agg(DISTINCT message_id) FROM new_rows "
    "WHERE message_id IS NOT NULL AND kind = 'reply'), 100);"
)


def _replace(body: str, transitions: str) -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION tabmail_replies_read() RETURNS trigger AS $$ "
        f"BEGIN {body} RETURN NULL; END $$ LANGUAGE plpgsql"
    )
    op.execute("DROP TRIGGER IF EXISTS tabmail_replies_read ON inbox_messages")
    op.execute(
        f"CREATE TRIGGER tabmail_replies_read AFTER UPDATE ON inbox_messages REFERENCING {transitions} "
        "FOR EACH STATEMENT EXECUTE FUNCTION tabmail_replies_read()"
    )


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    _replace(BEFORE_AND_AFTER, "OLD TABLE AS old_rows NEW TABLE AS new_rows")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    _replace(AFTER_ONLY, "NEW TABLE AS new_rows")
