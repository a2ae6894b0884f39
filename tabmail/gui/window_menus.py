"""The main window's commands: its actions, menu bar and toolbar (``MainWindow.menus``).

``WindowMenus`` builds every window-wide action once and connects it to the window's method
that does the work; the window and its parts enable and disable them (no tournament selected,
a read-only database, the database server lost). Their icons are drawn in the theme's colours
and drawn again when light/dark changes (``retheme``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from tabmail.domain.notification import Event

if TYPE_CHECKING:
    from tabmail.gui.main_window import MainWindow


class WindowMenus:
    def __init__(self, window: MainWindow) -> None:
        self._window = window
        self._glyphs: dict[QAction, str] = {}
        self._build_actions()
        self._build_menus_and_toolbar()

    def _action(
        self, text: str, shortcut: QKeySequence | str | None, tip: str, glyph: str | None = None
    ) -> QAction:
        action = QAction(text, self._window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            keys = QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)
            tip = f"{tip} ({keys})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        if glyph:
            action.setIcon(self._window.theme.action_icon(glyph))
            self._glyphs[action] = glyph
        return action

    def _build_actions(self) -> None:
        w = self._window
        self.import_action = self._action("&Import…", "Ctrl+I", "Import a tournament", "import")
        self.import_action.triggered.connect(w.open_import_dialog)
        self.compose_action = self._action(
            "&Compose…", "Ctrl+N", "Compose a notification for the selected round", "compose"
        )
        self.compose_action.setEnabled(False)  # until a tournament is selected
        self.compose_action.triggered.connect(lambda: w.open_composer())
        self.send_urls_action = self._action(
            "Send &Private URLs…", None, "Send each participant of the selected tournament their private URL"
        )
        self.send_urls_action.setObjectName("send-private-urls-action")
        self.send_urls_action.setEnabled(False)
        # Available exactly when composing is (a tournament selected, a writable database).
        self.compose_action.changed.connect(
            lambda: self.send_urls_action.setEnabled(self.compose_action.isEnabled())
        )
        self.send_urls_action.triggered.connect(lambda: w.open_composer(kind=(Event.URLS, None)))
        self.unmatched_mail_action = self._action(
            "&Unmatched Mail…",
            None,
            "Replies, bounces and spam reports from the mailbox that matched none of our messages",
        )
        self.unmatched_mail_action.setObjectName("unmatched-mail-action")
        self.unmatched_mail_action.triggered.connect(w.open_unmatched_mail)
        self.poll_action = self._action("&Check Delivery Now", "F5", "Check delivery statuses now", "refresh")
        self.poll_action.setIconText("Check now")
        self.poll_action.triggered.connect(w.poll_now)
        self.settings_action = self._action(
            "&Settings…", "Ctrl+,", "Sending, tracking and test mode", "settings"
        )
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(w.open_settings_dialog)
        self.find_action = self._action("&Find", QKeySequence.StandardKey.Find, "Search the current page")
        self.find_action.triggered.connect(w.focus_search)
        self.quit_action = self._action("&Quit", "Ctrl+Q", "Quit tabmail")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(w.close)
        self.about_action = QAction("&About tabmail", w)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(w.help.show_about)
        self.open_log_folder_action = QAction("Open &Log Folder", w)
        self.open_log_folder_action.setStatusTip("Show tabmail's log files in the file manager")
        self.open_log_folder_action.triggered.connect(w.help.open_log_folder)

    def _build_menus_and_toolbar(self) -> None:
        w = self._window
        bar = w.menuBar()
        file_menu = self.file_menu = bar.addMenu("&File")
        file_menu.addAction(self.import_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = bar.addMenu("&Edit")
        self.undo_action = w.undo_stack.createUndoAction(w, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = w.undo_stack.createRedoAction(w, "&Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.find_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.settings_action)
        self.notifications_menu = bar.addMenu("&Notifications")
        self.notifications_menu.addAction(self.compose_action)
        self.notifications_menu.addAction(self.send_urls_action)
        self.notifications_menu.addAction(self.poll_action)
        self.notifications_menu.addAction(self.unmatched_mail_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.open_log_folder_action)
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

        self.toolbar = w.addToolBar("Main")
        self.toolbar.setObjectName("main-toolbar")
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.import_action, self.compose_action, self.poll_action):
            self.toolbar.addAction(action)
        spacer = QWidget(self.toolbar)
        spacer.setSizePolicy(spacer.sizePolicy().Policy.Expanding, spacer.sizePolicy().Policy.Preferred)
        self.toolbar.addWidget(spacer)
        self.toolbar.addAction(self.settings_action)

    def disable_for_read_only(self) -> None:
        """Everything can be looked at; nothing that sends or writes can be started."""
        why = "The database is opened read-only"
        for action in (self.import_action, self.compose_action, self.poll_action, self.settings_action):
            action.setEnabled(False)
            action.setToolTip(f"{action.toolTip()} — {why.lower()}")
            action.setStatusTip(action.toolTip())

    def retheme(self) -> None:
        """Light/dark changed: the icons are drawn again in the new colours."""
        for action, glyph in self._glyphs.items():
            action.setIcon(self._window.theme.action_icon(glyph))
