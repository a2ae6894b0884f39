"""Writing a corrected address back to the Tabbycat site the tournament came from."""

from __future__ import annotations

from urllib.parse import urlsplit

from tabmail.domain.config import is_loopback_host
from tabmail.domain.errors import TabmailError
from tabmail.importers.tabbycat import TabbycatClient
from tabmail.services.context import AppContext


def can_write_back(ctx: AppContext, tournament_id: int) -> bool:
    t = ctx.tournaments.get_by_id(tournament_id)
    return t.source == "tabbycat" and bool(t.source_url)


def write_back_email(ctx: AppContext, person_id: int, *, token: str | None = None) -> str:
    """PATCH the person's current address on the Tabbycat site; records it in the address
    history. Returns a sentence for the director; raises TabmailError (the site's words)."""
    person = ctx.tournaments.get_person(person_id)
    t = ctx.tournaments.get_by_id(person.tournament_id)
    if t.source != "tabbycat" or not t.source_url:
        raise TabmailError(
            f"{t.name} was not imported from Tabbycat: there is nowhere to write {person.name}'s address"
        )
    if not person.email or not person.email_valid:
        raise TabmailError(f"{person.name} has no valid address to write back")
    parts = urlsplit(t.source_url)
    if parts.scheme == "http" and not is_loopback_host(parts.netloc):
        raise TabmailError(
            f"not writing {person.name}'s address back to {t.source_url}: over plain http:// the "
            "Tabbycat token would travel in clear; tabmail writes back only over https:// (or to "
            "this machine)"
        )
    client = TabbycatClient(t.source_url, token or ctx.secrets.get("tabbycat-token"))
    try:
        client.set_email(t.slug, person.role.value, person.external_id or "", person.email)
    finally:
        client.close()
    ctx.tournaments.record_write_back(person_id, person.email)
    return f"wrote {person.email} back to {t.source_url} for {person.name}"
