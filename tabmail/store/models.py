"""SQLAlchemy 2.x ORM models. Portable SQL only (SQLite by default, PostgreSQL later).

ORM objects never leave ``tabmail.store``: repositories convert them to domain dataclasses.
Sent records (batches, messages, events) never cascade-delete from tournament data: their
foreign keys to people, rounds and tournaments are nullable and set to NULL on delete.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tabmail.store.problem_index import MAYBE_PROBLEM_SQL

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC everywhere (SQLite has no time zones); hands back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """String(n) lengths below are what the values usually need, not limits: SQLite ignores
    them, and on PostgreSQL migration 0008 drops them, so both engines keep the same values."""

    metadata = MetaData(naming_convention=NAMING)


class TournamentRow(Base):
    __tablename__ = "tournaments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(100), default="")
    source: Mapped[str] = mapped_column(String(20), default="csv")
    source_url: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. edited templates
    # What the site said besides the lists, each key optional: {"public_team_standings": bool,
    # "team_standings": {"<team id>": {"points": n, "wins": n}}} (migration 0006).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InstitutionRow(Base):
    __tablename__ = "institutions"
    __table_args__ = (UniqueConstraint("tournament_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(50), default="")
    region: Mapped[str] = mapped_column(String(100), default="")


class VenueRow(Base):
    __tablename__ = "venues"
    __table_args__ = (UniqueConstraint("tournament_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))


class TeamRow(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("tournament_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(200), default="")
    code_name: Mapped[str] = mapped_column(String(200), default="")
    emoji: Mapped[str] = mapped_column(String(20), default="")
    break_categories: Mapped[list[str] | None] = mapped_column(JSON)  # names (migration 0006)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PersonRow(Base):
    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("tournament_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(320))
    email_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    email_problem: Mapped[str | None] = mapped_column(String(300))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id", ondelete="SET NULL"))
    url_key: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Adjudicators: {"independent": bool, "adj_core": bool, "conflicts": [names]} (migration 0006).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AddressChangeRow(Base):
    """Every change of a person's address, whoever made it (import, director, resend)."""

    __tablename__ = "address_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    old_address: Mapped[str | None] = mapped_column(String(320))
    new_address: Mapped[str | None] = mapped_column(String(320))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(50))
    # Who made the change, on which machine (migration 0009; NULL: before it was kept).
    changed_by: Mapped[str | None] = mapped_column(String(200))
    changed_on: Mapped[str | None] = mapped_column(String(200))


class RoundRow(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("tournament_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    abbreviation: Mapped[str] = mapped_column(String(20), default="")
    stage: Mapped[str] = mapped_column(String(2), default="P")
    draw_status: Mapped[str] = mapped_column(String(2), default="N")
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    motions: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[seq, text, reference, info], ...]
    motions_released: Mapped[bool | None] = mapped_column(Boolean)  # None: unknown (migration 0006)
    available_teams: Mapped[list[int] | None] = mapped_column(JSON)  # team ids; None: unknown


class DebateRow(Base):
    __tablename__ = "debates"
    __table_args__ = (UniqueConstraint("round_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id", ondelete="SET NULL"))
    sides_confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    teams: Mapped[list[DebateTeamRow]] = relationship(
        cascade="all, delete-orphan", order_by="DebateTeamRow.id", lazy="selectin"
    )
    adjudicators: Mapped[list[DebateAdjudicatorRow]] = relationship(
        cascade="all, delete-orphan", order_by="DebateAdjudicatorRow.id", lazy="selectin"
    )


class DebateTeamRow(Base):
    __tablename__ = "debate_teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    debate_id: Mapped[int] = mapped_column(ForeignKey("debates.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    side: Mapped[str] = mapped_column(String(20))


class DebateAdjudicatorRow(Base):
    __tablename__ = "debate_adjudicators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    debate_id: Mapped[int] = mapped_column(ForeignKey("debates.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    position: Mapped[str] = mapped_column(String(20))


class BallotRow(Base):
    __tablename__ = "ballots"
    __table_args__ = (UniqueConstraint("debate_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    debate_id: Mapped[int] = mapped_column(ForeignKey("debates.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    discarded: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    motion_text: Mapped[str | None] = mapped_column(Text)
    # [{"adjudicator_id": int|None, "teams": [{"team_id", "side", "points", "win", "score",
    #   "speeches": [{"speaker_id", "score", "ghost"}]}]}]
    sheets: Mapped[list[Any]] = mapped_column(JSON, default=list)


class BatchRow(Base):
    """One send action (Tabbycat's BulkNotification), with the templates exactly as used."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tournament_id: Mapped[int | None] = mapped_column(
        ForeignKey("tournaments.id", ondelete="SET NULL"), index=True
    )
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id", ondelete="SET NULL"), index=True)
    tournament_slug: Mapped[str] = mapped_column(String(100), default="")  # kept if the tournament goes
    round_seq: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(20))
    audience: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    subject_template: Mapped[str] = mapped_column(Text)
    text_template: Mapped[str] = mapped_column(Text)
    html_template: Mapped[str | None] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(50))
    triggered_by: Mapped[str] = mapped_column(String(200), default="")
    triggered_on: Mapped[str | None] = mapped_column(String(200))  # the machine (migration 0009)
    reroute_to: Mapped[str | None] = mapped_column(String(320))
    # A scheduled release: the outbox leaves the batch alone until then (migration 0006).
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_state_next", "state", "next_attempt_at"),
        Index("ix_messages_batch_person", "batch_id", "person_id"),
        Index(
            "ix_messages_maybe_problem",
            "batch_id",
            # Messages that may be a problem or resend one (store/problem_index.py, migration
            # 0011). The migrations give PostgreSQL the same WHERE; naming postgresql_where here
            # would import SQLAlchemy's PostgreSQL dialect (~30 ms) in every start-up on SQLite.
            sqlite_where=text(MAYBE_PROBLEM_SQL),
        ),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    recipient_name: Mapped[str] = mapped_column(String(300))
    role: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    envelope_from: Mapped[str] = mapped_column(String(320), default="")
    envelope_to: Mapped[str] = mapped_column(String(320), default="")  # differs in test mode
    send_despite_flag: Mapped[bool] = mapped_column(Boolean, default=False)  # the director's override
    subject: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The exact bytes live in their own table: the outbox updates a message row twice per send,
    # and SQLite rewrites a whole row (blob included) on every update.
    body: Mapped[MessageBodyRow | None] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    raw: AssociationProxy[bytes | None] = association_proxy(
        "body", "raw", creator=lambda raw: MessageBodyRow(raw=raw)
    )
    message_id_header: Mapped[str | None] = mapped_column(String(300), index=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), index=True)
    sg_message_id: Mapped[str | None] = mapped_column(String(300), index=True)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery_status: Mapped[str] = mapped_column(String(20), default="unknown")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_reason: Mapped[str | None] = mapped_column(Text)
    resend_of: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    # The backend the message was queued for; only an explicit re-queue changes it.
    backend: Mapped[str] = mapped_column(String(50), default="", server_default="")
    # Who holds the message while it is 'sending' (host:pid:token) and until when (renewed).
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A resend: who asked for it, on which machine (migration 0009). A batch's own messages
    # leave these NULL: the batch says who sent it.
    made_by: Mapped[str | None] = mapped_column(String(200))
    made_on: Mapped[str | None] = mapped_column(String(200))


class MessageBodyRow(Base):
    """The exact raw message as sent (headers included), one per message."""

    __tablename__ = "message_bodies"
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class StatusEventRow(Base):
    __tablename__ = "status_events"
    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    provider: Mapped[str] = mapped_column(String(30))
    provider_event_id: Mapped[str] = mapped_column(String(300))
    event: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(30), default="")  # activity | logs | suppressions
    event_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    address: Mapped[str | None] = mapped_column(String(320))
    address_key: Mapped[str | None] = mapped_column(String(320), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AddressFlagRow(Base):
    """A bouncing (or otherwise undeliverable) address. History is kept: cleared rows stay."""

    __tablename__ = "address_flags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    address: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(20))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(50))
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_reason: Mapped[str | None] = mapped_column(String(300))


class InboxMessageRow(Base):
    """One message read from the tab room's mailbox (bounce, spam report, auto-reply, reply or
    ignored), once: ``key`` hashes its header block, so a re-read or a UIDVALIDITY rescan finds
    it already here. Bounces also become status_events (provider "inbox"); this row keeps the
    message itself and what it was attached to."""

    __tablename__ = "inbox_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    folder: Mapped[str] = mapped_column(String(300), default="")
    uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)
    uid: Mapped[int] = mapped_column(BigInteger, default=0)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    header_message_id: Mapped[str | None] = mapped_column(String(300))
    from_address: Mapped[str | None] = mapped_column(String(320))
    from_key: Mapped[str | None] = mapped_column(String(320), index=True)
    from_name: Mapped[str] = mapped_column(String(300), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    matched_by: Mapped[str | None] = mapped_column(String(30))
    different_sender: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_text: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SettingRow(Base):
    """Non-secret settings and small state (poll cursors). Secrets live only in the keyring."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    # The last change: who, on which machine, when (migration 0009).
    changed_by: Mapped[str | None] = mapped_column(String(200))
    changed_on: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ResolutionRow(Base):
    """A problem the director marked resolved by hand, with why (deleted again on undo).

    Problems resolved by a delivered resend need no row: that is derived from ``resend_of``.
    """

    __tablename__ = "problem_resolutions"
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_by: Mapped[str] = mapped_column(String(200), default="")


__all__ = [name for name in dir() if name.endswith("Row")] + [
    "Base",
    "UTCDateTime",
    "utcnow",
]
