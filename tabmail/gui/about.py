"""The Help menu's commands: the About box and the log folder (``MainWindow.help``)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox

from tabmail import __version__
from tabmail.logs import log_dir
from tabmail.services.context import AppContext


class HelpCommands:
    def __init__(self, ctx: AppContext, window: QMainWindow) -> None:
        self._ctx = ctx
        self._window = window

    def show_about(self) -> None:
        box = self.about_box()
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def about_box(self) -> QMessageBox:
        """The About box, not yet shown: version, licence, the app icon, database and log folder."""
        logs = log_dir()
        box = QMessageBox(self._window)
        box.setObjectName("about-box")
        box.setWindowTitle("About tabmail")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(
            f"<h3>tabmail {escape(__version__)}</h3><p>The tab room's notification dashboard: draw "
            "and ballot emails, delivery tracking and one-click resends.</p>"
            "<p>Licence: <a href='https://www.gnu.org/licenses/agpl-3.0.html'>GNU Affero General "
            "Public License v3.0 or later</a> (AGPL-3.0-or-later).</p>"
            f"<p>Database: {escape(self._ctx.db.describe())}<br>"
            f"Logs: <a href='{QUrl.fromLocalFile(str(logs)).toString()}'>{escape(str(logs))}</a></p>"
        )
        icon = self._window.windowIcon()
        if not icon.isNull():
            box.setIconPixmap(icon.pixmap(64, 64))
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        for label in box.findChildren(QLabel):
            label.setOpenExternalLinks(True)  # the licence in a browser, the logs in a file manager
        return box

    def open_log_folder(self) -> bool:
        """Show the log folder in the platform's file manager; say so in the status bar if not."""
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not opened:
            self._window.statusBar().showMessage(f"Could not open the log folder {folder}", 8000)
        return bool(opened)
