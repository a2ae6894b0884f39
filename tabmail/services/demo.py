"""The demo tournament: loaded into an empty database so a first start shows something to explore."""

from __future__ import annotations

import logging
import random
import string

from tabmail.domain.events import TournamentImported
from tabmail.domain.imported import ImportBundle, ImportResult
from tabmail.domain.tournament import Role
from tabmail.importers.csv_import import read_csv_folder
from tabmail.resources import resource
from tabmail.services.context import AppContext
from tabmail.services.practice import use_practice_by_default

log = logging.getLogger(__name__)

DEMO_NAME = "Demo Open"
# The demo's pretend Tabbycat site (.example: a name reserved for examples, RFC 2606): private
# URLs are {DEMO_SITE}/demo-open/privateurls/{url_key}/ as on a real site, never reachable.
DEMO_SITE = "https://tabbycat.demo.example"
URL_KEY_CHARS = string.ascii_lowercase + string.digits  # Tabbycat's: 8 of these, e.g. "0143zvxv"
URL_KEY_LENGTH = 8


def _give_url_keys(bundle: ImportBundle) -> None:
    """Private URL keys as Tabbycat's "Generate private URLs" makes them, the same at every load
    (seeded by the person), unique in the tournament. The last speaker has none (added after the
    keys were generated, as happens), so "Send Private URLs…" shows that state too."""
    bundle.tournament.source_url = DEMO_SITE
    speakers = sorted(p.key for p in bundle.people if p.role is Role.SPEAKER)
    without = speakers[-1] if speakers else None
    used: set[str] = set()
    for person in bundle.people:
        person.url_key_known = True
        if person.key == without:
            person.url_key = None
            continue
        rng = random.Random(f"{DEMO_NAME}/{person.key}")
        key = "".join(rng.choices(URL_KEY_CHARS, k=URL_KEY_LENGTH))
        while key in used:
            key = "".join(rng.choices(URL_KEY_CHARS, k=URL_KEY_LENGTH))
        used.add(key)
        person.url_key = key


def load_demo_if_empty(ctx: AppContext) -> ImportResult | None:
    """Import resources/demo as "Demo Open" when the database has no tournament; else None.
    Its people get private URL keys on a pretend site (the CSV format has none), so the demo
    can send private URLs too.
    A database where no backend was ever chosen then sends through the practice backend, so
    the demo shows the whole loop (send, a problem appears, fix, resend) without an account.

    Raises CsvImportError only if the bundled demo files are damaged.
    """
    if ctx.tournaments.list_all():
        return None
    bundle = read_csv_folder(resource("demo"), tournament_name=DEMO_NAME)
    bundle.tournament.source = "demo"
    _give_url_keys(bundle)
    result = ctx.tournaments.apply_import(bundle)
    log.info("loaded the demo tournament %s", result.slug)
    use_practice_by_default(ctx)
    ctx.bus.publish(TournamentImported(result.tournament_id))
    return result
