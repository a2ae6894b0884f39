"""unbounded strings on PostgreSQL: the same values fit on both engines

Revision ID: 0008_unbounded_strings
Revises: 0007_live_changes

The models declare lengths (String(200), ...). SQLite never enforced them, so a tournament named
in 300 characters, a long provider id or an error text imported and sent fine on a laptop, and
then failed on PostgreSQL ("value too long for type character varying(200)"), or could not be
copied there. On PostgreSQL every VARCHAR(n) column of tabmail's tables becomes VARCHAR without
a length (no table rewrite: the stored values do not change). SQLite: nothing to do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_unbounded_strings"
down_revision = "0007_live_changes"
branch_labels = None
depends_on = None

_BOUNDED = sa.text(
    "SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND data_type = 'character varying' "
    "AND character_maximum_length IS NOT NULL AND table_name <> 'alembic_version' "
    "ORDER BY table_name, ordinal_position"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    prep = bind.dialect.identifier_preparer
    for table, column in bind.execute(_BOUNDED).all():
        op.execute(f"ALTER TABLE {prep.quote(table)} ALTER COLUMN {prep.quote(column)} TYPE varchar")


def downgrade() -> None:
    """Lengths are not put back: a value longer than one would make the downgrade fail."""
