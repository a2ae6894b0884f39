"""live changes: on PostgreSQL, every change other laptops show is announced with NOTIFY

Revision ID: 0007_live_changes
Revises: 0006_notification_kinds

Statement triggers (PostgreSQL only; SQLite keeps its in-process bus) call ``pg_notify`` on the
channel ``tabmail_changes`` in the transaction that makes the change, so a notification is
delivered exactly when the change is committed and visible. The payload is small JSON:
``{"k": kind, "o": application_name of the writer, "i": [ids]}``; never a secret, never a body.
A list longer than what fits in one notification (8,000 bytes) is sent in chunks.

Kinds (``tabmail/store/live.py`` reads them): ``m`` messages added or changed (state, delivery
status, address, error): ``[id, batch_id, state]`` each; ``s`` delivery events or resolutions
of these message ids; ``f`` address flags of these address keys; ``p`` these people changed;
``t`` these tournaments were imported (or got rounds); ``r`` replies to these message ids.
"""

from __future__ import annotations

from alembic import op

revision = "0007_live_changes"
down_revision = "0006_notification_kinds"
branch_labels = None
depends_on = None

# One pass over the list: rows grouped into chunks by their position (a loop re-reading the
# whole list per chunk took minutes for a 100,000-row statement).
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION tabmail_notify(kind text, items jsonb, chunk integer) RETURNS void AS $$
DECLARE
    part jsonb;
BEGIN
    IF items IS NULL OR jsonb_array_length(items) = 0 THEN
        RETURN;
    END IF;
    FOR part IN
        SELECT jsonb_agg(e ORDER BY ord)
        FROM jsonb_array_elements(items) WITH ORDINALITY AS t(e, ord)
        GROUP BY (ord - 1) / chunk
        ORDER BY (ord - 1) / chunk
    LOOP
        PERFORM pg_notify('tabmail_changes', jsonb_build_object(
            'k', kind, 'o', current_setting('application_name'), 'i', part)::text);
    END LOOP;
END $$ LANGUAGE plpgsql
"""

# (trigger name, table, event, transition tables, the function's body: one PERFORM)
TRIGGERS: list[tuple[str, str, str, str, str]] = [
    (
        "messages_added",
        "messages",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('m', (SELECT jsonb_agg(jsonb_build_array(id, batch_id, state)) "
        "FROM new_rows), 60);",
    ),
    (
        "messages_changed",
        "messages",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        # A lease renewed (only lease_expires_at moves) is no change anyone looks at.
        "PERFORM tabmail_notify('m', (SELECT jsonb_agg(jsonb_build_array(n.id, n.batch_id, n.state)) "
        "FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE "
        "o.state IS DISTINCT FROM n.state OR o.delivery_status IS DISTINCT FROM n.delivery_status "
        "OR o.address IS DISTINCT FROM n.address OR o.last_error IS DISTINCT FROM n.last_error "
        "OR o.attempts IS DISTINCT FROM n.attempts OR o.status_reason IS DISTINCT FROM n.status_reason "
        "OR o.send_despite_flag IS DISTINCT FROM n.send_despite_flag), 60);",
    ),
    (
        "status_events_added",
        "status_events",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('s', (SELECT jsonb_agg(DISTINCT message_id) FROM new_rows "
        "WHERE message_id IS NOT NULL), 100);",
    ),
    (
        "resolutions_added",
        "problem_resolutions",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('s', (SELECT jsonb_agg(DISTINCT message_id) FROM new_rows), 100);",
    ),
    (
        "resolutions_removed",
        "problem_resolutions",
        "DELETE",
        "OLD TABLE AS old_rows",
        "PERFORM tabmail_notify('s', (SELECT jsonb_agg(DISTINCT message_id) FROM old_rows), 100);",
    ),
    (
        "flags_added",
        "address_flags",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('f', (SELECT jsonb_agg(DISTINCT address_key) FROM new_rows), 20);",
    ),
    (
        "flags_changed",
        "address_flags",
        "UPDATE",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('f', (SELECT jsonb_agg(DISTINCT address_key) FROM new_rows), 20);",
    ),
    (
        "people_changed",
        "people",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('p', (SELECT jsonb_agg(n.id) FROM new_rows n JOIN old_rows o "
        "ON o.id = n.id WHERE o.email IS DISTINCT FROM n.email "
        "OR o.email_valid IS DISTINCT FROM n.email_valid "
        "OR o.email_problem IS DISTINCT FROM n.email_problem OR o.name IS DISTINCT FROM n.name "
        "OR o.active IS DISTINCT FROM n.active), 500);",
    ),
    (
        "tournaments_added",
        "tournaments",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('t', (SELECT jsonb_agg(id) FROM new_rows), 500);",
    ),
    (
        "rounds_added",
        "rounds",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('t', (SELECT jsonb_agg(DISTINCT tournament_id) FROM new_rows), 500);",
    ),
    (
        "replies_added",
        "inbox_messages",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('r', (SELECT jsonb_agg(DISTINCT message_id) FROM new_rows "
        "WHERE message_id IS NOT NULL AND kind = 'reply'), 100);",
    ),
    (
        "replies_read",
        "inbox_messages",
        "UPDATE",
        "NEW TABLE AS new_rows",
        "PERFORM tabmail_notify('r', (SELECT jsonb_agg(DISTINCT message_id) FROM new_rows "
        "WHERE message_id IS NOT NULL AND kind = 'reply'), 100);",
    ),
]


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(NOTIFY_FUNCTION)
    for name, table, event, transitions, body in TRIGGERS:
        op.execute(
            f"CREATE OR REPLACE FUNCTION tabmail_{name}() RETURNS trigger AS $$ "
            f"BEGIN {body} RETURN NULL; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER tabmail_{name} AFTER {event} ON {table} REFERENCING {transitions} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION tabmail_{name}()"
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name, table, _event, _transitions, _body in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS tabmail_{name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS tabmail_{name}()")
    op.execute("DROP FUNCTION IF EXISTS tabmail_notify(text, jsonb, integer)")
