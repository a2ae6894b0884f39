"""The demo tournament: loaded into an empty database so a first start shows something to explore."""

from __future__ import annotations

import logging

from tabmail.domain.events import TournamentImported
from tabmail.domain.imported import ImportResult
from tabmail.importers.csv_import import read_csv_folder
from tabmail.resources import resource
from tabmail.services.context import AppContext
from tabmail.services.practice import use_practice_by_default

log = logging.getLogger(__name__)

DEMO_NAME = "Demo Open"


def load_demo_if_empty(ctx: AppContext) -> ImportResult | None:
    """Import resources/demo as "Demo Open" when the database has no tournament; else None.
    A database where no backend was ever chosen then sends through the practice backend, so
    the demo shows the whole loop (send, a problem appears, fix, resend) without an account.

    Raises CsvImportError only if the bundled demo files are damaged.
    """
    if ctx.tournaments.list_all():
        return None
    bundle = read_csv_folder(resource("demo"), tournament_name=DEMO_NAME)
    bundle.tournament.source = "demo"
    result = ctx.tournaments.apply_import(bundle)
    log.info("loaded the demo tournament %s", result.slug)
    use_practice_by_default(ctx)
    ctx.bus.publish(TournamentImported(result.tournament_id))
    return result
