"""The compose dialog's choices around the message: what kind, which round, changes only (the
top row), and when to send (the "Send at" pair beside the buttons)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QDateTime, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDateTimeEdit, QHBoxLayout, QLabel, QWidget

from tabmail.domain.notification import Audience, Event
from tabmail.domain.tournament import Round
from tabmail.gui.composer.sending import practice_label
from tabmail.gui.theme import Theme

EVENTS: list[tuple[str, Event, Audience | None]] = [
    ("Draw release: adjudicators and teams", Event.DRAW, Audience.ALL),
    ("Draw release: adjudicators", Event.DRAW, Audience.ADJUDICATORS),
    ("Draw release: teams", Event.DRAW, Audience.TEAMS),
    ("Ballot receipts", Event.BALLOT, None),
    ("Private URLs", Event.URLS, None),
    ("Motion release", Event.MOTIONS, None),
    ("Team points / wins", Event.POINTS, None),
    ("Registration: teams", Event.REGISTRATION, Audience.TEAMS),
    ("Registration: adjudicators", Event.REGISTRATION, Audience.ADJUDICATORS),
    ("Custom message", Event.CUSTOM, Audience.ALL),
]


class KindBar(QWidget):
    """Notification kind, round and "Only people whose assignment changed", with the test-mode
    and practice banners at the end. ``changed`` fires when any of the three changes."""

    changed = Signal()

    def __init__(
        self,
        rounds: list[Round],
        rnd: Round | None,
        kind: tuple[Event, Audience | None] | None,
        settings: dict[str, Any],
        theme: Theme,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.event = QComboBox(self)
        self.event.setObjectName("compose-event")
        for label, event, audience in EVENTS:
            self.event.addItem(label, (event, audience))
        if kind is not None:
            self.event.setCurrentIndex(self.kind_index(*kind))
        self.changes_only = QCheckBox("Only people whose assignment changed", self)
        self.changes_only.setObjectName("compose-changes-only")
        self.changes_only.setToolTip(
            "After a corrected draw: only those whose room, side, panel, opponents or position changed "
            "since their last email of this round's draw, and a notice to those no longer in it"
        )
        self.round = QComboBox(self)
        self.round.setObjectName("compose-round")
        for r in rounds:
            self.round.addItem(r.name, r.seq)
        if rnd is not None:
            self.round.setCurrentIndex(max(0, self.round.findData(rnd.seq)))
        self.banner = QLabel(self)
        self.banner.setObjectName("compose-test-mode-banner")
        self.banner.setStyleSheet(theme.banner_style())
        reroute = str(settings.get("test_mode.reroute_to") or "").strip()
        self.banner.setText(f"TEST MODE: every message goes to {reroute}")
        self.banner.setToolTip("Test mode is on (Settings): nothing reaches the real recipients.")
        self.banner.setVisible(bool(reroute))
        self.practice_banner = practice_label(settings, theme, self)

        top = QHBoxLayout(self)
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Notification:", self))
        top.addWidget(self.event)
        top.addSpacing(12)
        top.addWidget(QLabel("Round:", self))
        top.addWidget(self.round)
        top.addSpacing(12)
        top.addWidget(self.changes_only)
        top.addStretch(1)
        top.addWidget(self.banner)
        top.addWidget(self.practice_banner)

        self.event.currentIndexChanged.connect(lambda _: self.changed.emit())
        self.round.currentIndexChanged.connect(lambda _: self.changed.emit())
        self.changes_only.toggled.connect(lambda _: self.changed.emit())

    def current_event(self) -> tuple[Event, Audience | None]:
        data = self.event.currentData()
        return data if data else (Event.DRAW, Audience.ALL)

    def changes_only_wanted(self) -> bool:
        """Changes-only applies to a draw only."""
        return self.current_event()[0] is Event.DRAW and self.changes_only.isChecked()

    def kind_index(self, event: Event, audience: Audience | None) -> int:
        for i in range(self.event.count()):
            if self.event.itemData(i) == (event, audience):
                return i
        return max(0, next((i for i in range(self.event.count()) if self.event.itemData(i)[0] is event), 0))

    def scope(self) -> str:
        """What the confirmation names: the round, or the whole tournament."""
        return self.round.currentText() if self.round.isEnabled() else "whole tournament"

    def set_enabled(self, on: bool) -> None:
        for w in (self.event, self.round, self.changes_only):
            w.setEnabled(on)


class ScheduleOptions(QWidget):
    """ "Send at" and its time: queue now, release later."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.send_later = QCheckBox("Send at", self)
        self.send_later.setObjectName("compose-send-later")
        self.send_later.setToolTip(
            "Queue now, send at this time (the open tabmail sends it; cancel it from the batch until then)"
        )
        self.send_at = QDateTimeEdit(self)
        self.send_at.setObjectName("compose-send-at")
        self.send_at.setCalendarPopup(True)
        self.send_at.setDisplayFormat("ddd d MMM HH:mm")
        self.send_at.setDateTime(QDateTime.currentDateTime().addSecs(3600))
        self.send_at.setEnabled(False)
        self.send_later.toggled.connect(self.send_at.setEnabled)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.send_later)
        row.addWidget(self.send_at)

    def scheduled_at(self) -> datetime | None:
        """The chosen release time, or None to send now."""
        if not self.send_later.isChecked():
            return None
        return self.send_at.dateTime().toPython().astimezone(UTC)  # type: ignore[union-attr]

    def freeze(self) -> None:
        self.send_later.setEnabled(False)
        self.send_at.setEnabled(False)
