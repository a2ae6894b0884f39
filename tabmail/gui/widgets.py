"""Small widgets shared by several screens."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QFont, QKeyEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QWidget

from tabmail.gui.theme import Theme, Tone


class MessageStrip(QLabel):
    """An inline message in a tone (info, warning, error), hidden while empty.

    Used instead of pop-ups for things the director should see without clicking anything
    away: a keyring that cannot be used, an address that was saved but is not valid.
    """

    # Good news ("Saved ...", "Queued ...") goes away by itself; problems stay until replaced.
    GOOD_NEWS_MS = 8000

    def __init__(self, parent: QWidget | None = None, theme: Theme | None = None) -> None:
        super().__init__(parent)
        self._theme = theme or Theme()
        self.tone: Tone | None = None
        self._restyling = False
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._expiry = QTimer(self)
        self._expiry.setSingleShot(True)
        self._expiry.timeout.connect(self.clear_message)
        self.hide()

    def show_message(self, text: str, tone: Tone = Tone.WARNING, timeout_ms: int | None = None) -> None:
        """Show ``text``; GOOD and NEUTRAL messages hide after ``GOOD_NEWS_MS`` unless
        ``timeout_ms`` says otherwise (0: keep)."""
        self.tone = tone
        self.setText(text)
        self.setStyleSheet(self._theme.tone_style(tone))
        self.setVisible(bool(text))
        if timeout_ms is None:
            timeout_ms = self.GOOD_NEWS_MS if tone in (Tone.GOOD, Tone.NEUTRAL) else 0
        if timeout_ms > 0 and text:
            self._expiry.start(timeout_ms)
        else:
            self._expiry.stop()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in _PALETTE_CHANGES and self.tone is not None and not self._restyling:
            self._restyling = True  # a style sheet changes the palette too: no loop
            self.setStyleSheet(self._theme.tone_style(self.tone))  # light/dark changed
            self._restyling = False

    def clear_message(self) -> None:
        self._expiry.stop()
        self.tone = None
        self.clear()
        self.hide()


class SearchField(QLineEdit):
    """A search box with a clear button and a search icon."""

    def __init__(self, placeholder: str, parent: QWidget | None = None, theme: Theme | None = None) -> None:
        super().__init__(parent)
        theme = theme or Theme()
        self.setPlaceholderText(placeholder)
        self.setClearButtonEnabled(True)
        self.addAction(theme.action_icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.setMinimumWidth(160)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            return
        super().keyPressEvent(event)


def heading_label(text: str, scale: float = 1.35, parent: QWidget | None = None) -> QLabel:
    """A bold page heading a bit larger than the body font."""
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setWeight(QFont.Weight.DemiBold)
    label.setFont(font)
    return label


_PALETTE_CHANGES = (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)


def _set_muted_palette(label: QLabel) -> None:
    """Only the text colour is set, so every other role still comes from the parent."""
    pal = QPalette()
    pal.setColor(label.foregroundRole(), QApplication.palette().color(QPalette.ColorRole.PlaceholderText))
    label.setPalette(pal)


class MutedLabel(QLabel):
    """Secondary text in the palette's placeholder colour, following light/dark changes."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._muting = False
        self._mute()

    def _mute(self) -> None:
        self._muting = True
        _set_muted_palette(self)
        self._muting = False

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in _PALETTE_CHANGES and not self._muting:
            self._mute()


def muted_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """Secondary text: the palette's placeholder colour, which both themes keep readable."""
    return MutedLabel(text, parent)


class WrappingLabel(QLabel):
    """A word-wrapped label that asks its layout for the height its text needs at its current
    width. Layouts inside a QTabWidget ignore height-for-width, so a plain wrapped label there
    is cut to one line as soon as something else wants the room (an error strip)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        width = self.width() if self.width() > 1 else self.sizeHint().width()
        return QSize(hint.width(), max(hint.height(), self.heightForWidth(width)))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.updateGeometry()  # the text wraps differently: the layout asks again


def muted_wrapping_label(text: str = "", parent: QWidget | None = None) -> WrappingLabel:
    """``muted_label`` that wraps and is never cut (see ``WrappingLabel``)."""
    return MutedWrappingLabel(text, parent)


class MutedWrappingLabel(WrappingLabel):
    """``WrappingLabel`` in the placeholder colour, following light/dark changes."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._muting = False
        self._mute()

    def _mute(self) -> None:
        self._muting = True
        _set_muted_palette(self)
        self._muting = False

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in _PALETTE_CHANGES and not self._muting:
            self._mute()
