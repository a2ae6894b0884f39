"""Light or dark: follow the system's colour scheme, or the director's choice in Settings.

``Appearance.apply(choice)`` takes the ``appearance`` setting (``system``, ``light``, ``dark``) and
takes effect at once, without a restart. Qt 6.8+ lets an application ask the platform for a scheme
(``QStyleHints.setColorScheme``); where the platform theme cannot (plain X11, offscreen), tabmail
sets a palette of its own. With ``system``, a change of the system's scheme (``colorSchemeChanged``)
is followed while the app runs. Widgets repaint from the palette; the theme's status colours are
chosen from it (``theme.is_dark``).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from tabmail.gui.theme import is_dark

log = logging.getLogger(__name__)

CHOICES = ("system", "light", "dark")
_SCHEMES = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}


def dark_palette() -> QPalette:
    """A dark palette in the spirit of Fusion's, with text contrast above 7:1."""
    p = QPalette()
    c = QPalette.ColorRole
    window, base, alt, text = QColor("#2b2d30"), QColor("#1f2023"), QColor("#27292c"), QColor("#e6e6e6")
    for role, colour in (
        (c.Window, window),
        (c.WindowText, text),
        (c.Base, base),
        (c.AlternateBase, alt),
        (c.ToolTipBase, QColor("#3a3d41")),
        (c.ToolTipText, text),
        (c.PlaceholderText, QColor("#9aa0a6")),
        (c.Text, text),
        (c.Button, QColor("#35373b")),
        (c.ButtonText, text),
        (c.BrightText, QColor("#ff6b6b")),
        (c.Light, QColor("#4a4d52")),
        (c.Midlight, QColor("#3d4044")),
        (c.Mid, QColor("#2f3135")),
        (c.Dark, QColor("#151618")),
        (c.Shadow, QColor("#000000")),
        (c.Highlight, QColor("#3d6fb4")),
        (c.HighlightedText, QColor("#ffffff")),
        (c.Link, QColor("#8ab4f8")),
        (c.LinkVisited, QColor("#c58af9")),
    ):
        p.setColor(role, colour)
    disabled = QColor("#7c8086")
    for role in (c.WindowText, c.Text, c.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


class Appearance(QObject):
    """Applies the ``appearance`` setting to the application; one per app."""

    def __init__(self, app: QGuiApplication, parent: QObject | None = None) -> None:
        super().__init__(parent or app)
        self._app = app
        self._platform_palette = QPalette(app.palette())  # what the platform gave, to go back to
        self.choice = "system"
        self._own_palette = False
        app.styleHints().colorSchemeChanged.connect(self._on_system_scheme_changed)

    @property
    def dark(self) -> bool:
        return is_dark(self._app.palette())

    def apply(self, choice: str) -> None:
        """``system``, ``light`` or ``dark``; anything else counts as ``system`` (logged)."""
        if choice not in CHOICES:
            log.warning("unknown appearance %r; following the system", choice)
            choice = "system"
        self.choice = choice
        hints = self._app.styleHints()
        if choice == "system":
            hints.unsetColorScheme()
        else:
            hints.setColorScheme(_SCHEMES[choice])
        self._settle()

    def _wanted_dark(self) -> bool | None:
        """True/False for a definite scheme; None: the system says nothing (keep its palette)."""
        if self.choice != "system":
            return self.choice == "dark"
        scheme = self._app.styleHints().colorScheme()
        if scheme == Qt.ColorScheme.Unknown:
            return None
        return scheme == Qt.ColorScheme.Dark

    def _settle(self) -> None:
        wanted = self._wanted_dark()
        if self._own_palette and (wanted is None or is_dark(self._platform_palette) == wanted):
            self._app.setPalette(self._platform_palette)  # the platform's own colours fit again
            self._own_palette = False
        if wanted is None or is_dark(self._app.palette()) == wanted:
            return  # no preference, or the platform already shows the requested scheme
        self._app.setPalette(dark_palette() if wanted else self._light_palette())
        self._own_palette = True

    def _light_palette(self) -> QPalette:
        if not is_dark(self._platform_palette):
            return QPalette(self._platform_palette)
        style = self._app.style() if hasattr(self._app, "style") else None
        return style.standardPalette() if style is not None else QPalette()

    def _on_system_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self.choice == "system":
            self._settle()


def appearance_for(app: QGuiApplication) -> Appearance:
    """The application's one ``Appearance`` (made on first use, before any change of palette)."""
    existing = app.findChild(Appearance)
    return existing if isinstance(existing, Appearance) else Appearance(app)
