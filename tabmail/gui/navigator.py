"""The left panel: tournaments, each with its participants, its problems and its rounds, as a
tree; an "All problems" node (every tournament's) on top. Rounds, tournaments and the problems nodes
carry a red badge with their unresolved problem count (``set_problem_counts``); rounds, tournaments
and "Tournament messages" a blue one with their unread replies (``set_reply_counts``)."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QItemSelection, QModelIndex, QPersistentModelIndex, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMenu,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.notification import TOURNAMENT_WIDE_NAME
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.roles import Roles
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import muted_label

TOURNAMENT = "tournament"
PARTICIPANTS = "participants"
ROUND = "round"
TOURNAMENT_WIDE = "tournament-wide"  # id: the tournament's; its batches that have no round
PROBLEMS = "problems"  # id: the tournament's, or ALL_TOURNAMENTS
ALL_TOURNAMENTS = 0
BADGE = Qt.ItemDataRole.UserRole + 40  # unresolved problems under a node (0: no badge)
REPLY_BADGE = Qt.ItemDataRole.UserRole + 41  # unread replies under a node (0: no badge)

STAGES = {"P": "Preliminary round", "E": "Elimination round"}
DRAW_STATUSES = {"N": "No draw", "D": "Draft draw", "C": "Draw confirmed", "R": "Draw released"}

NodeKey = tuple[str, int]  # (kind, id): participants nodes use the tournament id


def round_summary(rnd: Round) -> str:
    stage = STAGES.get(rnd.stage, rnd.stage)
    draw = DRAW_STATUSES.get(rnd.draw_status, rnd.draw_status)
    return f"{stage} · {draw}"


class NavigatorModel(QStandardItemModel):
    """Tournament → (Participants, rounds...). Rebuilt on import; cheap (tens of rows)."""

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._theme = theme
        self.setHorizontalHeaderLabels(["Name", "Draw"])

    def populate(self, tournaments: list[tuple[Tournament, list[Round]]]) -> None:
        self.removeRows(0, self.rowCount())
        if tournaments:
            every = self._item("All problems", PROBLEMS, ALL_TOURNAMENTS, None, "search")
            every.setToolTip("Every unresolved problem, in every tournament, in one list")
            self.appendRow([every, self._blank()])
        for tournament, rounds in tournaments:
            t_item = self._item(tournament.name, TOURNAMENT, tournament.id, tournament, "tournament")
            font = QFont(t_item.font())
            font.setWeight(QFont.Weight.DemiBold)
            t_item.setFont(font)
            source = {"tabbycat": "Tabbycat", "csv": "CSV files", "demo": "demo data"}.get(
                tournament.source, tournament.source
            )
            t_item.setToolTip(f"{tournament.name}\nImported from {source}")
            people = self._item("Participants", PARTICIPANTS, tournament.id, tournament, "people")
            people.setToolTip("Everyone in this tournament, with their email addresses")
            t_item.appendRow([people, self._blank()])
            problems = self._item("Problems", PROBLEMS, tournament.id, tournament, "search")
            problems.setToolTip("This tournament's unresolved problems: bounces, blocks, failures…")
            t_item.appendRow([problems, self._blank()])
            wide = self._item(TOURNAMENT_WIDE_NAME, TOURNAMENT_WIDE, tournament.id, tournament, "compose")
            wide.setToolTip("Private URLs and registration messages: sent for the whole tournament, no round")
            t_item.appendRow([wide, self._blank()])
            for rnd in rounds:
                r_item = self._item(rnd.name, ROUND, rnd.id, rnd, "round")
                r_item.setToolTip(f"{rnd.name} ({rnd.abbreviation})\n{round_summary(rnd)}")
                draw = QStandardItem(DRAW_STATUSES.get(rnd.draw_status, rnd.draw_status).replace("Draw ", ""))
                draw.setEditable(False)
                draw.setForeground(self._theme.palette.color(self._theme.palette.ColorRole.PlaceholderText))
                t_item.appendRow([r_item, draw])
            self.appendRow([t_item, self._blank()])

    def _item(self, text: str, kind: str, ident: int, obj: object, glyph: str) -> QStandardItem:
        item = QStandardItem(self._theme.action_icon(glyph), text)
        item.setEditable(False)
        item.setData(kind, Roles.KIND)
        item.setData(ident, Roles.ID)
        item.setData(obj, Roles.OBJECT)
        return item

    @staticmethod
    def _blank() -> QStandardItem:
        item = QStandardItem()
        item.setEditable(False)
        return item

    def set_problem_counts(
        self,
        by_round: Mapping[int, int],
        by_tournament: Mapping[int, int],
        without_round: Mapping[int, int] | None = None,
    ) -> None:
        """Badges: unresolved problems per round, per tournament (and on the problems nodes), and
        on each tournament's "Tournament messages" node those of its batches with no round."""
        self._set_counts(BADGE, by_round, by_tournament, without_round or {}, on_problems=True)

    def set_reply_counts(
        self,
        by_round: Mapping[int, int],
        by_tournament: Mapping[int, int],
        without_round: Mapping[int, int] | None = None,
    ) -> None:
        """Badges: unread replies per round, per tournament, and on "Tournament messages" those
        to its batches with no round."""
        self._set_counts(REPLY_BADGE, by_round, by_tournament, without_round or {}, on_problems=False)

    def _set_counts(
        self,
        role: int,
        by_round: Mapping[int, int],
        by_tournament: Mapping[int, int],
        without_round: Mapping[int, int],
        *,
        on_problems: bool,
    ) -> None:
        total = sum(by_tournament.values())
        for row in range(self.rowCount()):
            t_index = self.index(row, 0)
            kind = t_index.data(Roles.KIND)
            if kind == PROBLEMS:
                if on_problems:
                    self._badge(t_index, role, total)
                continue
            tid = t_index.data(Roles.ID)
            self._badge(t_index, role, by_tournament.get(tid, 0))
            for child in range(self.rowCount(t_index)):
                c_index = self.index(child, 0, t_index)
                c_kind = c_index.data(Roles.KIND)
                if c_kind == ROUND:
                    self._badge(c_index, role, by_round.get(c_index.data(Roles.ID), 0))
                elif c_kind == PROBLEMS and on_problems:
                    self._badge(c_index, role, by_tournament.get(tid, 0))
                elif c_kind == TOURNAMENT_WIDE:
                    self._badge(c_index, role, without_round.get(tid, 0))

    def _badge(self, index: QModelIndex, role: int, n: int) -> None:
        if (index.data(role) or 0) != n:
            self.setData(index, n, role)
            self.setData(index, badge_words(index), Qt.ItemDataRole.AccessibleTextRole)

    def find(self, key: NodeKey) -> QModelIndex:
        kind, ident = key
        for row in range(self.rowCount()):
            t_index = self.index(row, 0)
            if t_index.data(Roles.KIND) == kind and t_index.data(Roles.ID) == ident:
                return t_index
            for child in range(self.rowCount(t_index)):
                c_index = self.index(child, 0, t_index)
                if c_index.data(Roles.KIND) == kind and c_index.data(Roles.ID) == ident:
                    return c_index
        return QModelIndex()


def badge_words(index: QModelIndex) -> str:
    """A node's name with what its badges say, for screen readers and tests."""
    name = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
    problems = int(index.data(BADGE) or 0)
    unread = int(index.data(REPLY_BADGE) or 0)
    parts = []
    if problems:
        parts.append(f"{problems} unresolved problem{'s' if problems != 1 else ''}")
    if unread:
        parts.append(f"{unread} unread repl{'ies' if unread != 1 else 'y'}")
    return f"{name}: {', '.join(parts)}" if parts else name


def badge_text(n: int, prefix: str = "") -> str:
    return prefix + (str(n) if n < 1000 else "999+")


class BadgeDelegate(QStyledItemDelegate):
    """Paints a node's problem count as a small red pill at the right end of its name, and its
    unread replies as a blue "✉ n" pill before it."""

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._theme = theme

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        pills: list[tuple[str, Tone]] = []
        if index.column() == 0:
            problems = int(index.data(BADGE) or 0)
            unread = int(index.data(REPLY_BADGE) or 0)
            if problems:
                pills.append((badge_text(problems), Tone.BAD))
            if unread:
                pills.append((badge_text(unread, "✉"), Tone.PENDING))
        if not pills:
            super().paint(painter, option, index)
            return
        metrics = option.fontMetrics  # type: ignore[attr-defined]
        widths = [max(metrics.horizontalAdvance(text) + 8, metrics.height()) for text, _tone in pills]
        opt = QStyleOptionViewItem(option)
        opt.rect = option.rect.adjusted(0, 0, -(sum(widths) + 3 * len(widths) + 3), 0)  # type: ignore[attr-defined]
        super().paint(painter, opt, index)
        rect = option.rect  # type: ignore[attr-defined]
        right = rect.right() - 2
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for (text, tone), width in zip(pills, widths, strict=True):
            pill = QRectF(
                right - width, rect.center().y() - metrics.height() / 2 + 1, width, metrics.height() - 2
            )
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._theme.accent(tone))
            painter.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
            painter.setPen(QColor("#ffffff"))
            painter.drawText(pill, int(Qt.AlignmentFlag.AlignCenter), text)
            right -= width + 3
        painter.restore()


class NavigatorPanel(QWidget):
    """Emits what the director picked; the main window decides which page shows it."""

    tournament_selected = Signal(object)  # Tournament (its participants are shown)
    round_selected = Signal(object, object)  # Tournament, Round
    tournament_wide_selected = Signal(object)  # Tournament: its batches that have no round
    problems_selected = Signal(object)  # Tournament, or None for every tournament
    nothing_selected = Signal()
    send_urls_requested = Signal(object)  # Tournament: its context menu's "Send Private URLs…"

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = NavigatorModel(theme, self)
        self.view = QTreeView(self)
        self.view.setObjectName("navigator")
        self.view.setModel(self.model)
        self.view.setItemDelegate(BadgeDelegate(theme, self.view))
        self.view.setHeaderHidden(True)
        self.view.setUniformRowHeights(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.header().setStretchLastSection(False)
        self.view.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.view.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.view.selectionModel().selectionChanged.connect(self._on_view_selection_changed)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_context_menu)
        self.can_send = True  # False in a read-only window
        self.empty_label = muted_label("No tournaments yet.\nImport one with Ctrl+I.", self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)

        title = QLabel("Tournaments", self)
        font = QFont(title.font())
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 0, 8)
        layout.setSpacing(6)
        layout.addWidget(title)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty_label, 1)
        self.empty_label.hide()
        self.setMinimumWidth(self.names_width())

    def names_width(self) -> int:
        """Wide enough for "Tournament messages" under its tournament with both badges (a problem
        count and "✉ n" unread replies) beside it: a narrower panel would cut it to "Tournament …"."""
        metrics = self.view.fontMetrics()
        pills = 2 * (metrics.horizontalAdvance("✉ 99") + 10 + 6)
        text = metrics.horizontalAdvance(TOURNAMENT_WIDE_NAME) + 8
        frame = 2 * self.view.frameWidth() + 8 + self.view.verticalScrollBar().sizeHint().width()
        return max(180, 2 * self.view.indentation() + self.view.iconSize().width() + text + pills + frame)

    def populate(self, tournaments: list[tuple[Tournament, list[Round]]]) -> None:
        """Rebuild the tree, keeping the selection when its node still exists."""
        key = self.selected_key()
        blocker = self.view.selectionModel().blockSignals(True)
        self.model.populate(tournaments)
        self._span_names()
        self.view.selectionModel().blockSignals(blocker)
        self.view.expandAll()
        self.view.setVisible(bool(tournaments))
        self.empty_label.setVisible(not tournaments)
        if key is not None and self.select(key):
            return
        self.nothing_selected.emit()

    def _span_names(self) -> None:
        """Only rounds have a second column (the draw status): every other node's name gets the
        whole row, so "Tournament messages" and long tournament names are not cut short."""
        model = self.model
        for row in range(model.rowCount()):
            t_index = model.index(row, 0)
            self.view.setFirstColumnSpanned(row, QModelIndex(), True)
            for child in range(model.rowCount(t_index)):
                if model.index(child, 0, t_index).data(Roles.KIND) != ROUND:
                    self.view.setFirstColumnSpanned(child, t_index, True)

    def selected_key(self) -> NodeKey | None:
        indexes = self.view.selectionModel().selectedRows(0)
        if not indexes:
            return None
        index = indexes[0]
        return (index.data(Roles.KIND), index.data(Roles.ID))

    def select(self, key: NodeKey) -> bool:
        """Select a node (emitting the matching signal); False when it is not in the tree."""
        index = self.model.find(key)
        if not index.isValid():
            return False
        if self.view.selectionModel().isSelected(index):
            self._emit_for(index)  # already there: still tell the listeners (e.g. after reload)
        else:
            self.view.setCurrentIndex(index)
        self.view.scrollTo(index)
        return True

    def _on_view_selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        indexes = [i for i in selected.indexes() if i.column() == 0]
        if not indexes:
            if not self.view.selectionModel().hasSelection():
                self.nothing_selected.emit()
            return
        self._emit_for(indexes[0])

    def tournament_at(self, index: QModelIndex) -> Tournament | None:
        kind = index.data(Roles.KIND)
        if kind == ROUND:
            obj = index.parent().data(Roles.OBJECT)
        else:
            obj = index.data(Roles.OBJECT)
        return obj if isinstance(obj, Tournament) else None

    def context_menu(self, index: QModelIndex) -> QMenu | None:
        """The tournament's menu: the most-sent email of a tournament, one click away."""
        tournament = self.tournament_at(index) if index.isValid() else None
        if tournament is None:
            return None
        menu = QMenu(self)
        menu.setObjectName("navigator-menu")
        action = menu.addAction("Send Private URLs…")
        action.setObjectName("send-private-urls")
        action.setEnabled(self.can_send)
        action.triggered.connect(lambda: self.send_urls_requested.emit(tournament))
        return menu

    def _on_context_menu(self, pos: QPoint) -> None:
        menu = self.context_menu(self.view.indexAt(pos))
        if menu is not None:
            menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            menu.popup(self.view.viewport().mapToGlobal(pos))

    def _emit_for(self, index: QModelIndex) -> None:
        kind = index.data(Roles.KIND)
        if kind == ROUND:
            tournament = index.parent().data(Roles.OBJECT)
            self.round_selected.emit(tournament, index.data(Roles.OBJECT))
        elif kind == TOURNAMENT_WIDE:
            self.tournament_wide_selected.emit(index.data(Roles.OBJECT))
        elif kind == PROBLEMS:
            self.problems_selected.emit(index.data(Roles.OBJECT))
        else:
            self.tournament_selected.emit(index.data(Roles.OBJECT))
