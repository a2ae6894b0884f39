"""Settings: how mail is sent, tracking, test mode, and the secrets kept in the keyring.

Settings are written through ``ctx.settings.set_text`` (the same parser as the CLI), secrets
only through ``ctx.secrets`` (the OS keyring): a secret never reaches the settings table.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QMetaMethod, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QVBoxLayout, QWidget

from tabmail.domain.errors import TabmailError
from tabmail.gui.settings.fields import SecretField, SettingField
from tabmail.gui.settings.pages import BackendBox, FieldSet, build_general_page, build_sending_page
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import MessageStrip
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)


class SettingsDialog(QDialog):
    """Edits the settings; Save validates everything first and writes nothing if any is wrong.

    ``test_backend_requested(backend)`` is emitted by a backend's Test button once the current
    values are saved; whoever runs the test reports back with ``show_test_result``.
    """

    test_backend_requested = Signal(str)  # "smtp" | "sendgrid" | "file"
    saved = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, theme: Theme | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settings-dialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(680)
        self._ctx = ctx
        self._theme = theme or Theme()
        self._fs = FieldSet(self._theme, ctx.secrets)

        self.keyring_message = MessageStrip(self, self._theme)
        self.keyring_message.setObjectName("keyring-message")
        reason = ctx.secrets.unavailable_reason
        if reason:
            self.keyring_message.show_message(reason, Tone.WARNING)

        self.tabs = QTabWidget(self)
        sending, self.backend_boxes = build_sending_page(self._fs, self.tabs)
        self.tabs.addTab(sending, "Sending")
        self.tabs.addTab(build_general_page(self._fs, self.tabs), "Tracking && test mode")
        for box in self.backend_boxes.values():
            box.test_clicked.connect(self._on_backend_test_clicked)

        self.message = MessageStrip(self, self._theme)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 18, 18, 14)
        layout.setSpacing(10)
        layout.addWidget(self.keyring_message)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.load()

    # -- access for tests and wiring --------------------------------------------------------
    @property
    def fields(self) -> dict[str, SettingField]:
        return self._fs.fields

    @property
    def secret_fields(self) -> dict[str, SecretField]:
        return self._fs.secrets

    def load(self) -> None:
        values = self._ctx.settings.all()
        for key, field in self._fs.fields.items():
            field.load(values.get(key))
        for secret in self._fs.secrets.values():
            secret.refresh()

    # -- saving ---------------------------------------------------------------------------
    def apply(self) -> bool:
        """Validate every field, then store; False (errors shown inline) when any is invalid."""
        self.message.clear_message()
        parsed: dict[str, Any] = {}
        first_bad: SettingField | None = None
        for key, field in self._fs.fields.items():
            try:
                parsed[key] = field.parsed()
            except TabmailError:
                first_bad = first_bad or field
        if first_bad is not None:
            self._reveal(first_bad)
            bad = [f for f in self._fs.fields.values() if f.error.text()]
            more = f" (and {len(bad) - 1} more, marked in red)" if len(bad) > 1 else ""
            self.message.show_message(f"{first_bad.label}: {first_bad.error.text()}{more}", Tone.BAD)
            return False
        current = self._ctx.settings.all()
        try:
            for key, field in self._fs.fields.items():
                if parsed[key] != current.get(key):
                    self._ctx.settings.set_text(key, field.text())
        except TabmailError as exc:  # the parser agreed a moment ago; the database did not
            self.message.show_message(str(exc), Tone.BAD)
            return False
        secrets_ok = True
        for secret in self._fs.secrets.values():
            if not secret.store():
                secrets_ok = False
                self._reveal(secret)
        if not secrets_ok:
            self.message.show_message("The settings were saved, but a secret could not be stored.", Tone.BAD)
            return False
        self.saved.emit()
        return True

    def accept(self) -> None:
        if self.apply():
            super().accept()

    def _reveal(self, widget: QWidget) -> None:
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            if page is not None and page.isAncestorOf(widget):
                self.tabs.setCurrentIndex(i)
                break
        target = widget.editor if isinstance(widget, SettingField) else getattr(widget, "edit", widget)
        target.setFocus()

    # -- backend tests --------------------------------------------------------------------
    def _on_backend_test_clicked(self, backend: str) -> None:
        box = self.backend_boxes[backend]
        if not self.apply():
            self.show_test_result(backend, False, "Correct the settings first.")
            return
        signal = QMetaMethod.fromSignal(self.test_backend_requested)
        if not self.isSignalConnected(signal):
            box.test_result.setText("Testing this backend is not available in this version yet.")
            box.test_result.setStyleSheet(self._theme.text_style(Tone.NEUTRAL))
            return
        box.test_result.setText("Testing…")
        box.test_result.setStyleSheet("")
        self.test_backend_requested.emit(backend)

    def show_test_result(self, backend: str, ok: bool, text: str) -> None:
        """Show a backend test's outcome next to its Test button."""
        box: BackendBox | None = self.backend_boxes.get(backend)
        if box is None:
            return
        box.test_result.setText(("✓ " if ok else "✗ ") + text)
        box.test_result.setStyleSheet(self._theme.text_style(Tone.GOOD if ok else Tone.BAD))
