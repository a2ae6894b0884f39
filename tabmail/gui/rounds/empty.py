"""What the round view shows for a round nothing was sent for yet: its draw, motions and Compose."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QLabel, QToolButton, QVBoxLayout, QWidget

from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import TOURNAMENT_WIDE_NAME
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.navigator import round_summary
from tabmail.gui.widgets import heading_label, muted_label
from tabmail.services.context import AppContext

ROUND_EMPTY = (
    "No notifications for this round yet",
    "Draw releases and ballot receipts sent for this round will be listed here, grouped "
    "by send batch, with each recipient's delivery status.",
)
TOURNAMENT_WIDE_EMPTY = (
    "No tournament-wide notifications yet",
    "Private URLs and registration messages, which belong to no round, will be listed here, "
    "grouped by send batch, with each recipient's delivery status.",
)


class RoundEmptyPage(QWidget):
    """A round without notifications: title, draw summary, motions and the Compose button."""

    def __init__(
        self, ctx: AppContext, compose_action: QAction | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("round-empty")
        self._ctx = ctx
        self.tournament: Tournament | None = None
        self.round: Round | None = None
        self.title = heading_label("", 1.45, self)
        self.subtitle = muted_label("", self)
        self.draw_summary = QLabel(self)
        self.draw_summary.setObjectName("draw-summary")
        self.motions = QLabel(self)
        self.motions.setWordWrap(True)
        self.motions.setTextFormat(Qt.TextFormat.RichText)
        self.motions.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        card = QFrame(self)
        card.setObjectName("round-empty-card")
        card.setFrameShape(QFrame.Shape.StyledPanel)
        card_layout = QVBoxLayout(card)
        card_layout.setContentsMargins(24, 28, 24, 28)
        card_layout.setSpacing(10)
        empty_title = heading_label(ROUND_EMPTY[0], 1.1, card)
        self._empty_title = empty_title
        empty_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint = muted_label(ROUND_EMPTY[1], card)
        self._hint = hint
        hint.setWordWrap(True)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        card_layout.addWidget(empty_title)
        card_layout.addWidget(hint)
        if compose_action is not None:
            button = QToolButton(card)
            button.setDefaultAction(compose_action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            card_layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        layout.setSpacing(8)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addSpacing(8)
        layout.addWidget(self.draw_summary)
        layout.addSpacing(6)
        layout.addWidget(self.motions)
        layout.addSpacing(16)
        layout.addWidget(card)
        layout.addStretch(1)

    def show_tournament_wide(self, tournament: Tournament) -> None:
        """Nothing sent yet for the whole tournament (private URLs, registration)."""
        self.tournament, self.round = tournament, None
        self.title.setText(TOURNAMENT_WIDE_NAME)
        self.subtitle.setText(tournament.name)
        self._empty_title.setText(TOURNAMENT_WIDE_EMPTY[0])
        self._hint.setText(TOURNAMENT_WIDE_EMPTY[1])
        self.draw_summary.hide()
        self.motions.hide()

    def show_round(self, tournament: Tournament, rnd: Round) -> None:
        self.tournament, self.round = tournament, rnd
        self._empty_title.setText(ROUND_EMPTY[0])
        self._hint.setText(ROUND_EMPTY[1])
        self.draw_summary.show()
        self.title.setText(f"{rnd.name}")
        parts = [tournament.name, round_summary(rnd)]
        if rnd.starts_at is not None:
            parts.append(f"starts {rnd.starts_at.astimezone():%a %d %b, %H:%M}")
        self.subtitle.setText(" · ".join(parts))
        self.draw_summary.setText(self._draw_summary(tournament, rnd))
        if rnd.motions:
            items = "".join(
                f"<li>{escape(m.text)}"
                + (f" <span style='color: gray'>({escape(m.reference)})</span>" if m.reference else "")
                + "</li>"
                for m in rnd.motions
            )
            label = "Motion" if len(rnd.motions) == 1 else "Motions"
            self.motions.setText(f"<b>{label}</b><ul style='margin-left: -20px'>{items}</ul>")
            self.motions.show()
        else:
            self.motions.hide()

    def _draw_summary(self, tournament: Tournament, rnd: Round) -> str:
        try:
            draw = self._ctx.tournaments.draw(tournament.id, rnd.seq)
        except TabmailError as exc:
            return str(exc)
        if not draw.debates:
            return "No draw has been imported for this round."
        teams = {t.team_id for d in draw.debates for t in d.teams}
        adjudicators = {a.person_id for d in draw.debates for a in d.adjudicators}
        venues = {d.venue_id for d in draw.debates if d.venue_id is not None}

        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        return (
            f"<b>Draw:</b> {n(len(draw.debates), 'debate')} · {n(len(teams), 'team')} · "
            f"{n(len(adjudicators), 'adjudicator')} · {n(len(venues), 'venue')}"
        )
