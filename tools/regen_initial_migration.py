"""Regenerate migration 0001 from the models (only until the first release ships)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from tabmail.store.db import MIGRATIONS_DIR, _alembic_config

versions = MIGRATIONS_DIR / "versions"
for old in versions.glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    url = f"sqlite:///{Path(tmp) / 'empty.sqlite3'}"
    cfg = _alembic_config(url)
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
for new in versions.glob("0001_*.py"):
    text = new.read_text().replace("tabmail.store.models.UTCDateTime()", "tabmail.store.models.UTCDateTime()")
    new.write_text(text)
    print(new)
