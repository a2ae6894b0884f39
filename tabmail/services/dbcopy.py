"""``tabmail db copy``: open the source read-only and the target (created and migrated), copy,
and leave no half-made file behind when the copy is refused or fails."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tabmail.store.copy import Copier, CopyError, CopyReport, Progress
from tabmail.store.db import Database, resolve_url
from tabmail.store.merge import Merger, MergeReport
from tabmail.store.secrets import SecretStore

if TYPE_CHECKING:
    import keyring.backend

__all__ = ["CopyError", "CopyReport", "MergeReport", "copy_database", "merge_database"]


def _open(url: str, secrets: SecretStore, *, read_only: bool) -> Database:
    # A server's password comes from the keyring (or TABMAIL_DB_PASSWORD), never the URL.
    password = None if url.startswith("sqlite") else secrets.get("db-password")
    return Database(url, read_only=read_only, password=password)


def copy_database(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    tournament: str | None = None,
    keyring_backend: keyring.backend.KeyringBackend | None = None,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy ``source`` (a whole database, or one tournament's record) into the empty ``target``.
    Raises CopyError (or DatabaseError) in one line; a mismatch is in the report, uncommitted."""
    report = _run(source, target, keyring_backend, lambda s, d: Copier(s, d, progress).run(tournament))
    assert isinstance(report, CopyReport)
    return report


def merge_database(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    tournament: str | None = None,
    skip_existing: bool = False,
    keyring_backend: keyring.backend.KeyringBackend | None = None,
    progress: Progress | None = None,
) -> MergeReport:
    """Add the source's tournaments (or one) that ``target`` lacks, with new ids, to whatever
    ``target`` holds. Raises CopyError in one line (a tournament already there, a message id
    clash); a mismatch is in the report, uncommitted."""
    report = _run(
        source,
        target,
        keyring_backend,
        lambda s, d: Merger(s, d, progress).run(tournament, skip_existing=skip_existing),
    )
    assert isinstance(report, MergeReport)
    return report


def _run(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    keyring_backend: keyring.backend.KeyringBackend | None,
    work: Callable[[Database, Database], CopyReport | MergeReport],
) -> CopyReport | MergeReport:
    secrets = SecretStore(keyring_backend)
    src_url, dst_url = resolve_url(source), resolve_url(target)
    if src_url == dst_url:
        raise CopyError(f"the source and the target are the same database ({src_url.split('?')[0]})")
    src = _open(src_url, secrets, read_only=True)
    try:
        src.migrate()  # read-only: refuses a source whose schema is older than this tabmail's
        new_file: Path | None = None
        if dst_url.startswith("sqlite:///"):
            path = Path(dst_url.removeprefix("sqlite:///"))
            new_file = None if path.exists() else path
        dst = _open(dst_url, secrets, read_only=False)
        try:
            if dst.read_only:
                raise CopyError(f"the target {dst.describe()} cannot be written")
            dst.migrate()
            report = work(src, dst)
        except BaseException:
            dst.dispose()
            _remove(new_file)
            raise
        dst.dispose()
        if not report.committed:
            _remove(new_file)
        return report
    finally:
        src.dispose()


def _remove(path: Path | None) -> None:
    """A file this copy created and did not fill goes again (its WAL files too)."""
    if path is None:
        return
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
