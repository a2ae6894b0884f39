"""How batches, messages and times read on screen: one place for the round view's words.

A message's *category* (``tabmail.domain.problems``) is what counts and problem rows say; its
*effective status* (the delivery status once the provider reported, else the outbox state) gives
the finer word of a row that is not a problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from tabmail.domain.notification import Audience, BulkNotification, Event, MessageState
from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.domain.practice import LABEL as PRACTICE_LABEL
from tabmail.domain.problems import ORDER, PROBLEM_CATEGORIES, Category
from tabmail.domain.problems import counts_text as domain_counts_text
from tabmail.gui.theme import Look, category_look, delivery_status_look, message_state_look

_STATES = frozenset(s.value for s in MessageState)

ROLE_NAMES = {"adjudicator": "Adjudicator", "speaker": "Speaker"}
BACKEND_NAMES = {"smtp": "SMTP", "sendgrid": "SendGrid", "file": "Files (dry run)", PRACTICE: PRACTICE_LABEL}
# A batch's count key for problems a resend or the director resolved (the rest count by Category).
RESOLVED = "resolved"
# A batch's worst category decides its row's icon and highlight.
BATCH_SEVERITY = ORDER


def status_look(status: str) -> Look:
    """The look of an outbox state or a delivery status (the finer word of a non-problem row)."""
    if status in _STATES:
        return message_state_look(status)
    return delivery_status_look(status)


def row_look(status: str, category: Category) -> Look:
    """A message row's look: problems and deferrals in the one vocabulary, the rest finer
    (Queued, Retrying, Processed, Opened...)."""
    if category in PROBLEM_CATEGORIES or category is Category.DEFERRED:
        return category_look(category)
    return status_look(status)


def counts_text(counts: Mapping[str, int]) -> str:
    """A batch's counts: ``"2 bounced · 1 blocked · 1 spam report · 1 resolved · 38 delivered"``."""
    return domain_counts_text({c: counts.get(c, 0) for c in Category}, resolved=counts.get(RESOLVED, 0))


def problem_total(counts: Mapping[str, int]) -> int:
    return sum(counts.get(c, 0) for c in PROBLEM_CATEGORIES)


KIND_TITLES = {
    Event.URLS: "Private URLs",
    Event.MOTIONS: "Motion release",
    Event.POINTS: "Team points",
    Event.REGISTRATION: "Registration",
}


def batch_title(batch: BulkNotification) -> str:
    if batch.event is Event.DRAW:
        who = {
            Audience.ADJUDICATORS: "adjudicators",
            Audience.TEAMS: "teams",
            Audience.ALL: "adjudicators and teams",
        }.get(batch.audience or Audience.ALL, "adjudicators and teams")
        title = f"Draw release · {who}"
    elif batch.event is Event.BALLOT:
        title = "Ballot receipts"
    elif batch.event in KIND_TITLES:
        title = KIND_TITLES[batch.event]
        if batch.event is Event.REGISTRATION and batch.audience is not None:
            title += f" · {batch.audience.value}"
    else:
        title = "Custom message"
        if batch.audience is Audience.ADJUDICATORS:
            title += " · adjudicators"
        elif batch.audience is Audience.TEAMS:
            title += " · teams"
    if batch.reroute_to:
        title += " · test mode"
    return title


def backend_words(name: str) -> str:
    return BACKEND_NAMES.get(name, name)


def aware(value: datetime | None) -> datetime | None:
    """Stored times are UTC; SQLite may hand them back naive."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def local_time(value: datetime | None, *, now: datetime | None = None, seconds: bool = False) -> str:
    """A stored UTC time in the laptop's time zone: just the time today, the day otherwise."""
    at = aware(value)
    if at is None:
        return ""
    local = at.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    clock = "%H:%M:%S" if seconds else "%H:%M"
    if local.date() == today:
        return local.strftime(clock)
    if local.year == today.year:
        return local.strftime(f"%a %d %b, {clock}")
    return local.strftime(f"%d %b %Y, {clock}")


def full_time(value: datetime | None) -> str:
    at = aware(value)
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if at else ""
