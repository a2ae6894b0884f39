"""Settings: how mail is sent, tracking, test mode, and the secrets kept in the keyring.

Settings are written through ``ctx.settings.set_text`` (the same parser as the CLI), secrets
only through ``ctx.secrets`` (the OS keyring): a secret never reaches the settings table. What
was saved is announced on the bus (``SettingsChanged``), so the outbox, the poller and the status
bar use it at once. A backend's Test button tests the values as typed, without saving them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable
from html import escape
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QVBoxLayout, QWidget

from tabmail.backends.probe import ProbeResult
from tabmail.domain.errors import TabmailError
from tabmail.domain.events import SettingsChanged
from tabmail.gui.run_op import Op, run_op
from tabmail.gui.settings.fields import SecretField, SettingField
from tabmail.gui.settings.inbox_page import build_inbox_page
from tabmail.gui.settings.pages import BackendBox, FieldSet, build_general_page, build_sending_page
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import MessageStrip
from tabmail.services.backend_check import check_backend
from tabmail.services.context import AppContext
from tabmail.services.inbox import imap_settings_from, test_connection

BACKEND_TITLES = {
    "smtp": "the SMTP server",
    "sendgrid": "SendGrid",
    "file": "the folder",
    "practice": "practice mode",
}

log = logging.getLogger(__name__)


class SettingsDialog(QDialog):
    """Edits the settings; Save validates everything first and writes nothing if any is wrong."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, theme: Theme | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settings-dialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(680)
        self._ctx = ctx
        self._theme = theme or Theme()
        self._fs = FieldSet(self._theme, ctx.secrets)
        self.test_op: Op | None = None  # the backend test running now, if any
        self.last_test: ProbeResult | None = None
        self.test_texts: dict[str, str] = {}  # per backend, the last result as plain text

        self.keyring_message = MessageStrip(self, self._theme)
        self.keyring_message.setObjectName("keyring-message")
        reason = ctx.secrets.unavailable_reason
        if reason:
            self.keyring_message.show_message(reason, Tone.WARNING)

        self.tabs = QTabWidget(self)
        sending, self.backend_boxes = build_sending_page(self._fs, self.tabs)
        self.tabs.addTab(sending, "Sending")
        self.tabs.addTab(build_general_page(self._fs, self.tabs), "General")
        inbox_page, self.inbox_box = build_inbox_page(self._fs, self.tabs)
        self.tabs.addTab(inbox_page, "Inbox")
        self.inbox_box.test_clicked.connect(lambda _name: self.test_inbox())
        for box in self.backend_boxes.values():
            box.test_clicked.connect(self._on_backend_test_clicked)
        for secret in self._fs.secrets.values():
            secret.forgotten.connect(self._on_secret_forgotten)

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
    def parsed_values(self) -> dict[str, Any] | None:
        """Every setting as typed, parsed; None (errors shown inline) when any is invalid."""
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
            return None
        return parsed

    def apply(self) -> bool:
        """Validate every field, then store; False (errors shown inline) when any is invalid."""
        parsed = self.parsed_values()
        if parsed is None:
            return False
        current = self._ctx.settings.all()
        changed: list[str] = []
        try:
            for key, field in self._fs.fields.items():
                if parsed[key] != current.get(key):
                    self._ctx.settings.set_text(key, field.text())
                    changed.append(key)
        except TabmailError as exc:  # the parser agreed a moment ago; the database did not
            self._announce(changed)
            self.message.show_message(str(exc), Tone.BAD)
            return False
        secrets_ok = True
        for secret in self._fs.secrets.values():
            typed = secret.pending() is not None
            if not secret.store():
                secrets_ok = False
                self._reveal(secret)
            elif typed:
                changed.append(secret.name)
        self._announce(changed)
        if not secrets_ok:
            self.message.show_message("The settings were saved, but a secret could not be stored.", Tone.BAD)
            return False
        return True

    def _announce(self, keys: Iterable[str]) -> None:
        """Tell the running app (outbox, poller, status bar) what changed."""
        keys = tuple(keys)
        if keys:
            self._ctx.bus.publish(SettingsChanged(keys))

    def _on_secret_forgotten(self, name: str) -> None:
        self._announce([name])

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
        self.test_backend(backend)

    def test_backend(self, backend: str) -> Op | None:
        """Test ``backend`` with the values as typed (nothing is saved), off the GUI thread,
        with a deadline and a Cancel button; the result is shown next to the Test button."""
        box = self.backend_boxes[backend]
        parsed = self.parsed_values()
        if parsed is None:
            self.show_test_result(backend, False, "Correct the settings marked in red first.")
            return None
        secrets = {name: field.value_for_test() for name, field in self._fs.secrets.items()}
        box.test_result.setText("Testing…")
        box.test_result.setStyleSheet("")
        ctx = self._ctx
        self.test_op = run_op(
            self,
            lambda: check_backend(ctx, backend, parsed, secrets),
            action=box.test_button,
            progress_label=f"Testing {BACKEND_TITLES.get(backend, backend)}…",
            title=f"Testing {BACKEND_TITLES.get(backend, backend)}",
            on_success=self.show_probe_result,
        )
        self.test_op.cancelled.connect(lambda: self.show_test_result(backend, False, "Test cancelled."))
        return self.test_op

    def show_probe_result(self, result: ProbeResult) -> None:
        """A finished test: its verdict first, then each step it went through."""
        self.last_test = result
        lines = [f"✓ {step.name}: {step.detail}" for step in result.steps if step.ok]
        lines += result.notes
        self.show_test_result(result.backend, result.ok, result.summary, lines)

    def show_test_result(self, backend: str, ok: bool, text: str, steps: Iterable[str] = ()) -> None:
        """Show a backend test's outcome next to its Test button."""
        box: BackendBox | None = self.backend_boxes.get(backend)
        if box is None:
            return
        self.test_texts[backend] = "\n".join([("✓ " if ok else "✗ ") + text, *steps])
        # The verdict in its colour; the steps that passed in the normal text colour.
        colour = self._theme.foreground(Tone.GOOD if ok else Tone.BAD).name()
        verdict = f"<span style='color: {colour}'>{'✓' if ok else '✗'} {escape(text)}</span>"
        box.test_result.setTextFormat(Qt.TextFormat.RichText)
        box.test_result.setText("<br>".join([verdict, *(escape(step) for step in steps)]))
        box.test_result.setStyleSheet("")
        if self.isActiveWindow():
            box.test_button.setFocus()  # where the director left it, not the first field
        wanted = self.sizeHint().height()
        if self.isVisible() and wanted > self.height():  # grow to show it all; never shrink
            self.resize(self.width(), wanted)

    # -- the mailbox ------------------------------------------------------------------------
    def test_inbox(self) -> Op | None:
        """Log in to the mailbox with the values as typed (nothing saved), open the folder and
        count its messages; the outcome, or exactly what failed, shows next to the button."""
        box = self.inbox_box
        parsed = self.parsed_values()
        if parsed is None:
            self._show_inbox_result(False, "Correct the settings marked in red first.")
            return None
        try:
            typed = imap_settings_from(parsed, self._fs.secrets["imap-password"].value_for_test())
            settings = dataclasses.replace(typed, timeout=15.0)
        except TabmailError as exc:
            self._show_inbox_result(False, str(exc))
            return None
        box.test_result.setText("Testing…")
        box.test_result.setStyleSheet("")
        ctx = self._ctx

        async def test() -> tuple[bool, str]:
            try:
                return True, await asyncio.to_thread(test_connection, ctx, settings=settings)
            except TabmailError as exc:  # what failed, in one sentence, next to the button
                return False, str(exc)

        self.test_op = run_op(
            self,
            test,
            action=box.test_button,
            progress_label="Testing the mailbox…",
            title="Testing the mailbox",
            on_success=lambda result: self._show_inbox_result(*result),
        )
        self.test_op.cancelled.connect(lambda: self._show_inbox_result(False, "Test cancelled."))
        return self.test_op

    def _show_inbox_result(self, ok: bool, text: str) -> None:
        self.inbox_box.test_result.setText(("✓ " if ok else "✗ ") + text)
        self.inbox_box.test_result.setStyleSheet(self._theme.text_style(Tone.GOOD if ok else Tone.BAD))
