"""Events published on the bus after each operation: small, frozen, past tense, ids only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TournamentImported:
    tournament_id: int


@dataclass(frozen=True, slots=True)
class BatchQueued:
    batch_id: int
    message_count: int


@dataclass(frozen=True, slots=True)
class MessageStateChanged:
    message_id: str
    batch_id: int
    state: str


@dataclass(frozen=True, slots=True)
class OutboxProgressed:
    batch_id: int | None
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class StatusesChanged:
    message_ids: tuple[str, ...]
    unmatched: int = 0


@dataclass(frozen=True, slots=True)
class AddressFlagsChanged:
    address_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PollFinished:
    ok: bool
    online: bool
    summary: str


@dataclass(frozen=True, slots=True)
class PersonChanged:
    person_id: int


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """Settings or secrets were saved: ``keys`` are setting keys and secret names."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SendingConnectionChanged:
    """The outbox's last attempt reached the provider (``online``) or could not connect."""

    online: bool
    detail: str


@dataclass(frozen=True, slots=True)
class InboxChecked:
    ok: bool
    online: bool
    summary: str


@dataclass(frozen=True, slots=True)
class InboxWaiting:
    """The mailbox is read again in ``seconds`` after trouble: ``problem`` in a few words
    ("connection lost"), ``detail`` what the server or the connection said. ``seconds`` None:
    not before the inbox settings or the IMAP password change (a refused login, a missing
    folder: trying the same again cannot help, and a provider locks an account that keeps
    failing its login)."""

    problem: str
    detail: str
    seconds: float | None


@dataclass(frozen=True, slots=True)
class RepliesReceived:
    message_ids: tuple[str, ...]  # our messages that got a (new) reply


@dataclass(frozen=True, slots=True)
class RepliesChanged:
    """Replies to these messages were read, or attached to / detached from them by hand."""

    message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutboxWaiting:
    """The outbox waits ``seconds`` before retrying ``count`` message(s); ``reason``: the last error."""

    batch_id: int | None
    seconds: float
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class DatabaseWaiting:
    """A write waits for another process's lock on the database (``message`` says so)."""

    message: str


@dataclass(frozen=True, slots=True)
class DatabaseLinkChanged:
    """The database server became unreachable (``online`` False, ``detail`` says why) or could
    be reached again; ``since``: when it was last read successfully (ISO time, UTC)."""

    online: bool
    detail: str
    since: str
