"""Import use cases: fetch or read a tournament, then upsert it in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tabmail.domain.events import TournamentImported
from tabmail.domain.imported import ImportResult
from tabmail.importers.csv_import import CsvLimits, read_csv_folder
from tabmail.importers.tabbycat import TabbycatClient, TabbycatLimits
from tabmail.services.context import AppContext

Progress = Callable[[str, int, int], None]


def import_tabbycat(
    ctx: AppContext,
    url: str,
    slug: str,
    progress: Progress | None = None,
    token: str | None = None,
    *,
    insecure: bool = False,
    limits: TabbycatLimits | None = None,
) -> ImportResult:
    """Import (or re-import) a tournament from a Tabbycat site. Raises TabmailError.

    ``insecure`` allows plain http:// to another machine (the token then travels in clear).
    ``limits`` default to TabbycatLimits with the tabbycat.import_timeout_seconds setting."""
    token = token or ctx.secrets.get("tabbycat-token")
    if limits is None:
        limits = TabbycatLimits(import_seconds=float(ctx.settings.get("tabbycat.import_timeout_seconds")))
    client = TabbycatClient(url, token, insecure=insecure, limits=limits)
    try:
        bundle = client.fetch_tournament(slug, progress=progress)
    finally:
        client.close()
    bundle.check_size()
    result = ctx.tournaments.apply_import(bundle)
    ctx.bus.publish(TournamentImported(result.tournament_id))
    return result


def import_csv(
    ctx: AppContext, folder: Path, name: str | None = None, limits: CsvLimits | None = None
) -> ImportResult:
    """Import a folder of CSV files. Bad rows are reported in the result; a fatal error raises
    (so does a folder past ``limits``, default CsvLimits)."""
    bundle = read_csv_folder(folder, tournament_name=name, limits=limits)
    bundle.check_size()
    result = ctx.tournaments.apply_import(bundle)
    ctx.bus.publish(TournamentImported(result.tournament_id))
    return result
