"""The round tree's view side. The status delegate paints a batch's status cell as a small
stacked bar of its counts, followed by the counts in words (the bar is a picture of the words,
never their replacement); the address delegate edits addresses with a line edit that says what
it is for; ``RoundTree`` sends every edit key on a message row to the only editable cell, the
address. Each delegate serves its own column only: the other cells are painted by Qt alone."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
    QWidget,
)

from tabmail.domain.problems import ORDER, Category
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.model import BATCH, MESSAGE, Column, RoundRoles
from tabmail.gui.rounds.words import RESOLVED
from tabmail.gui.theme import Theme, Tone, category_look

AnyIndex = QModelIndex | QPersistentModelIndex

BAR_WIDTH = 96
BAR_HEIGHT = 9


# The bar's drawing order: good news first, problems last (resolved ones next to delivered).
BAR_ORDER: tuple[str, ...] = (
    Category.DELIVERED,
    RESOLVED,
    Category.SENT,
    Category.PENDING,
    Category.DEFERRED,
    *reversed(
        [
            c
            for c in ORDER
            if c not in (Category.DELIVERED, Category.SENT, Category.PENDING, Category.DEFERRED)
        ]
    ),
)


def bucket_colour(theme: Theme, bucket: str) -> QColor:
    if bucket == RESOLVED:
        colour = QColor(theme.accent(Tone.GOOD))
        colour.setAlphaF(0.7)
        return colour
    category = Category(bucket)
    colour = theme.accent(category_look(category).tone)
    if category is Category.SENT:  # accepted, no final word: a lighter shade of delivered
        colour = QColor(colour)
        colour.setAlphaF(0.45)
    elif category in (Category.FAILED, Category.DROPPED):  # darker than bounced, so they read apart
        colour = theme.foreground(Tone.BAD)
    return colour


class StatusDelegate(QStyledItemDelegate):
    """The status column's delegate (only that column's: every other cell is painted by Qt's own
    delegate, with no Python call per cell)."""

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._theme = theme

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        if index.parent().isValid() or index.data(Roles.KIND) != BATCH:  # a message row
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text = opt.text
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)

        counts: dict[str, int] = index.data(RoundRoles.COUNTS) or {}
        total = sum(counts.values())
        rect = opt.rect.adjusted(6, 0, -6, 0)
        width = min(BAR_WIDTH, max(24, rect.width() // 3))
        bar = QRectF(rect.left(), rect.center().y() - BAR_HEIGHT / 2 + 1, width, BAR_HEIGHT)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        outline = QPainterPath()
        outline.addRoundedRect(bar, 3, 3)
        painter.fillPath(outline, opt.palette.color(QPalette.ColorRole.Base))
        if total:
            painter.setClipPath(outline)
            x = bar.left()
            for bucket in BAR_ORDER:
                n = counts.get(bucket, 0)
                if not n:
                    continue
                w = bar.width() * n / total
                painter.fillRect(QRectF(x, bar.top(), w, bar.height()), bucket_colour(self._theme, bucket))
                x += w
            painter.setClipping(False)
        edge = QColor(opt.palette.color(QPalette.ColorRole.Text))
        edge.setAlphaF(0.35)
        painter.setPen(QPen(edge, 1))
        painter.drawPath(outline)

        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(opt.palette.color(role))
        painter.setFont(opt.font)
        text_rect = rect.adjusted(width + 8, 0, 0, 0)
        elided = opt.fontMetrics.elidedText(text, Qt.TextElideMode.ElideRight, text_rect.width())
        painter.drawText(text_rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), elided)
        painter.restore()


class AddressDelegate(QStyledItemDelegate):
    """The address column's delegate: edits a message's address with a line edit that says what
    it is for."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: AnyIndex) -> QWidget:
        editor = QLineEdit(parent)
        editor.setObjectName("address-editor")
        editor.setPlaceholderText("corrected address")
        editor.setFrame(False)
        return editor

    def setEditorData(self, editor: QWidget, index: AnyIndex) -> None:
        if isinstance(editor, QLineEdit):
            editor.setText(str(index.data(Qt.ItemDataRole.EditRole) or ""))
            editor.selectAll()
        else:  # pragma: no cover
            super().setEditorData(editor, index)


class RoundTree(QTreeView):
    """A tree whose edit keys (F2, double-click) on a message row edit that row's address: the
    only editable cell, whichever column the cursor happens to be in."""

    def edit(self, index: QModelIndex, trigger: Any = None, event: Any = None) -> bool:  # type: ignore[override]
        if trigger is None:  # the edit(index) slot
            return super().edit(index)  # type: ignore[call-arg]
        if index.isValid() and index.data(Roles.KIND) == MESSAGE and index.column() != Column.ADDRESS:
            address = index.siblingAtColumn(Column.ADDRESS)
            if address.flags() & Qt.ItemFlag.ItemIsEditable:
                index = address
        return super().edit(index, trigger, event)
