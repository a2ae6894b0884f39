"""The ONE place that decides how a status looks: colour, icon and words.

Every model asks here for the look of a ``MessageState``, a ``DeliveryStatus`` or an address
status; nothing else in ``gui/`` hard-codes a status colour. Each look has a tone (good,
pending, warning, bad, neutral), a short label, a sentence for tooltips and a glyph whose shape
carries the meaning, so colour is never the only cue. Colours come in a light and a dark set,
chosen from the current palette (a dark window colour means a dark theme).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette

from tabmail.domain.notification import DeliveryStatus, FlagKind, MessageState
from tabmail.domain.problems import LABELS, Category
from tabmail.gui import icons


class Tone(enum.StrEnum):
    GOOD = "good"
    PENDING = "pending"
    WARNING = "warning"
    BAD = "bad"
    NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class Look:
    tone: Tone
    label: str  # a few words, shown in the cell next to the icon
    description: str  # one sentence for the tooltip
    glyph: str  # one of icons.BADGE_GLYPHS


@dataclass(frozen=True, slots=True)
class _Colours:
    fg: str  # text on the normal base colour
    bg: str  # row/cell highlight behind normal text
    accent: str  # badge fill


# Chosen for contrast ≥ 4.5:1 of fg on both the base colour and bg, in each set.
_LIGHT: dict[Tone, _Colours] = {
    Tone.GOOD: _Colours("#1b6e2f", "#e4f3e8", "#2e8540"),
    Tone.PENDING: _Colours("#1f5a99", "#e7effa", "#3b7dd8"),
    Tone.WARNING: _Colours("#7a4f00", "#fff1cf", "#d99100"),
    Tone.BAD: _Colours("#a4231c", "#fde6e4", "#d0342c"),
    Tone.NEUTRAL: _Colours("#4f5358", "#eef0f2", "#80868b"),
}
_DARK: dict[Tone, _Colours] = {
    Tone.GOOD: _Colours("#8fd19e", "#1d3825", "#4caf63"),
    Tone.PENDING: _Colours("#9cc3f5", "#1b2b42", "#5b9be6"),
    Tone.WARNING: _Colours("#ffd27a", "#42340f", "#e0a526"),
    Tone.BAD: _Colours("#ff9b93", "#4a1e1c", "#e5534b"),
    Tone.NEUTRAL: _Colours("#c4c7cc", "#2d2f32", "#9aa0a6"),
}
# The test-mode banner must shout in both palettes: the same amber with near-black text.
BANNER_BG = "#f2b705"
BANNER_FG = "#241a00"

MESSAGE_STATE_LOOKS: dict[MessageState, Look] = {
    MessageState.QUEUED: Look(Tone.PENDING, "Queued", "Waiting in the outbox to be sent.", "clock"),
    MessageState.SCHEDULED: Look(
        Tone.PENDING,
        "Scheduled",
        "Waits for its batch's scheduled time; cancel the batch from its menu until then.",
        "clock",
    ),
    MessageState.SENDING: Look(Tone.PENDING, "Sending", "Being handed to the mail server now.", "arrow"),
    MessageState.SENT: Look(Tone.GOOD, "Sent", "Accepted by the mail server.", "check"),
    MessageState.RETRYING: Look(
        Tone.WARNING, "Retrying", "A temporary error; tabmail will try again shortly.", "retry"
    ),
    MessageState.FAILED: Look(
        Tone.BAD, "Failed", "The server refused this message; it will not be retried.", "cross"
    ),
    MessageState.SKIPPED: Look(
        Tone.NEUTRAL, "Skipped", "Not sent: the address is flagged as bouncing.", "minus"
    ),
    MessageState.UNCERTAIN: Look(
        Tone.WARNING,
        "Uncertain",
        "The connection dropped after the message was handed over; it may or may not have gone.",
        "warning",
    ),
}

DELIVERY_STATUS_LOOKS: dict[DeliveryStatus, Look] = {
    DeliveryStatus.UNKNOWN: Look(Tone.NEUTRAL, "No news yet", "No delivery event received yet.", "dot"),
    DeliveryStatus.PROCESSED: Look(
        Tone.PENDING, "Processed", "The provider accepted it and is delivering.", "clock"
    ),
    DeliveryStatus.DEFERRED: Look(
        Tone.WARNING, "Deferred", "The receiving server asked to try later.", "retry"
    ),
    DeliveryStatus.DELIVERED: Look(
        Tone.GOOD, "Delivered", "The receiving server accepted the message.", "check"
    ),
    DeliveryStatus.OPENED: Look(Tone.GOOD, "Opened", "The recipient opened the message.", "double_check"),
    DeliveryStatus.CLICKED: Look(
        Tone.GOOD, "Clicked", "The recipient clicked a link in the message.", "double_check"
    ),
    DeliveryStatus.BOUNCED: Look(Tone.BAD, "Bounced", "The address rejected the message.", "cross"),
    DeliveryStatus.BLOCKED: Look(Tone.BAD, "Blocked", "The receiving server blocked the message.", "cross"),
    DeliveryStatus.DROPPED: Look(
        Tone.BAD, "Dropped", "The provider refused to send it (e.g. a suppressed address).", "cross"
    ),
    DeliveryStatus.SPAM_REPORT: Look(
        Tone.BAD, "Marked as spam", "The recipient reported the message as spam.", "warning"
    ),
    DeliveryStatus.UNSUBSCRIBED: Look(
        Tone.WARNING, "Unsubscribed", "The recipient unsubscribed from these emails.", "minus"
    ),
}

# The one vocabulary's looks (tabmail.domain.problems): problem rows, counts, the Problems view.
_CATEGORY_STYLE: dict[Category, tuple[Tone, str, str]] = {
    Category.BOUNCED: (Tone.BAD, "cross", "The receiving server rejected the message for good."),
    Category.BLOCKED: (Tone.BAD, "cross", "The receiving server blocked the message (often a spam filter)."),
    Category.DROPPED: (
        Tone.BAD,
        "cross",
        "SendGrid refused to send it (the address is on one of its suppression lists).",
    ),
    Category.INVALID: (Tone.BAD, "at", "The address does not exist: its mailbox or domain is unknown."),
    Category.SPAM_REPORT: (Tone.BAD, "warning", "The recipient reported the message as spam."),
    Category.UNSUBSCRIBED: (Tone.WARNING, "minus", "The recipient unsubscribed from these emails."),
    Category.FAILED: (Tone.BAD, "cross", "The mail server refused this message; it will not be retried."),
    Category.UNCERTAIN: (
        Tone.WARNING,
        "warning",
        "The connection dropped after the message was handed over; it may or may not have gone.",
    ),
    Category.SKIPPED: (Tone.NEUTRAL, "minus", "Not sent: the address is flagged, or the send was cancelled."),
    Category.DEFERRED: (
        Tone.WARNING,
        "retry",
        "The receiving server asked to try later; SendGrid keeps trying.",
    ),
    Category.PENDING: (Tone.PENDING, "clock", "Waiting in the outbox, being sent, or waiting to retry."),
    Category.SENT: (Tone.GOOD, "check", "Accepted; no word on delivery yet."),
    Category.DELIVERED: (Tone.GOOD, "check", "The receiving server accepted the message."),
}
CATEGORY_LOOKS: dict[Category, Look] = {
    c: Look(tone, LABELS[c], description, glyph) for c, (tone, glyph, description) in _CATEGORY_STYLE.items()
}
RESOLVED_LOOK = Look(
    Tone.GOOD, "Resolved", "Resolved: a resend reached the recipient, or you marked it.", "check"
)

# What an address flag means, in the same words (participants, round rows, composer).
FLAG_LOOKS: dict[FlagKind, Look] = {
    FlagKind.HARD: Look(Tone.BAD, "Bouncing", "Mail to this address bounced.", "cross"),
    FlagKind.SOFT: Look(
        Tone.WARNING, "Bouncing (temporary)", "Mail to this address bounced for now.", "retry"
    ),
    FlagKind.BLOCKED: Look(Tone.BAD, "Blocked", "The receiving server blocks mail to this address.", "cross"),
    FlagKind.INVALID: Look(Tone.BAD, "Invalid address", "This mailbox or domain does not exist.", "at"),
    FlagKind.SPAM: Look(Tone.BAD, "Spam report", "This person reported a message as spam.", "warning"),
    FlagKind.UNSUBSCRIBED: Look(
        Tone.WARNING, "Unsubscribed", "This person unsubscribed from all mail from this account.", "minus"
    ),
}


def category_look(category: Category | str) -> Look:
    return CATEGORY_LOOKS[Category(category)]


def flag_look(kind: FlagKind | str) -> Look:
    return FLAG_LOOKS[FlagKind(kind)]


# Address statuses used by the participants view (and later the round views).
ADDRESS_LOOKS: dict[str, Look] = {
    "ok": Look(Tone.GOOD, "OK", "The address looks valid.", "check"),
    "invalid": Look(Tone.BAD, "Invalid address", "This is not a valid email address.", "at"),
    "missing": Look(Tone.WARNING, "No address", "No email address is known for this person.", "question"),
    "flagged": Look(Tone.BAD, "Bouncing", "Mail to this address has bounced.", "cross"),
    "inactive": Look(
        Tone.NEUTRAL, "Inactive", "No longer listed in the tournament's latest import.", "slash"
    ),
}


def message_state_look(state: MessageState | str) -> Look:
    return MESSAGE_STATE_LOOKS[MessageState(state)]


def delivery_status_look(status: DeliveryStatus | str) -> Look:
    return DELIVERY_STATUS_LOOKS[DeliveryStatus(status)]


def address_look(status: str) -> Look:
    return ADDRESS_LOOKS[status]


def is_dark(palette: QPalette | None = None) -> bool:
    """Dark when the window colour is darker than its text: works for any platform theme."""
    pal = palette if palette is not None else QGuiApplication.palette()
    window = pal.color(QPalette.ColorRole.Window)
    text = pal.color(QPalette.ColorRole.WindowText)
    return window.lightness() < text.lightness()


class Theme:
    """Colours and icons for the current palette. Cheap to create; caches its icons."""

    def __init__(self, palette: QPalette | None = None) -> None:
        self._palette = palette
        self._icons: dict[tuple[str, bool], QIcon] = {}

    @property
    def palette(self) -> QPalette:
        return self._palette if self._palette is not None else QGuiApplication.palette()

    @property
    def dark(self) -> bool:
        return is_dark(self.palette)

    def _set(self) -> dict[Tone, _Colours]:
        return _DARK if self.dark else _LIGHT

    def foreground(self, tone: Tone) -> QColor:
        """Text colour for a tone, readable on the base colour and on ``background(tone)``."""
        return QColor(self._set()[tone].fg)

    def background(self, tone: Tone) -> QColor:
        return QColor(self._set()[tone].bg)

    def accent(self, tone: Tone) -> QColor:
        return QColor(self._set()[tone].accent)

    def icon(self, look: Look) -> QIcon:
        key = (f"{look.glyph}:{look.tone}", self.dark)
        cached = self._icons.get(key)
        if cached is None:
            cached = icons.badge_icon(look.glyph, self.accent(look.tone))
            self._icons[key] = cached
        return cached

    def action_icon(self, glyph: str) -> QIcon:
        key = ("action:" + glyph, self.dark)
        cached = self._icons.get(key)
        if cached is None:
            ink = self.palette.color(QPalette.ColorRole.WindowText)
            cached = icons.action_icon(glyph, ink, self.accent(Tone.PENDING))
            self._icons[key] = cached
        return cached

    def tone_style(self, tone: Tone) -> str:
        """A style sheet for an inline message strip (QLabel) in ``tone``."""
        c = self._set()[tone]
        return (
            f"color: {c.fg}; background: {c.bg}; border: 1px solid {c.accent};"
            " border-radius: 4px; padding: 6px 10px;"
        )

    def text_style(self, tone: Tone) -> str:
        """A style sheet for plain coloured text (inline field errors and the like)."""
        return f"color: {self._set()[tone].fg};"

    @staticmethod
    def banner_style() -> str:
        return (
            f"color: {BANNER_FG}; background: {BANNER_BG}; font-weight: 600;"
            " border-radius: 3px; padding: 2px 10px;"
        )
