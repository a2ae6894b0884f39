"""Editors bound to settings keys and to keyring secrets, with inline error labels.

A ``SettingField`` only edits text; parsing and validation belong to ``domain/config.py``
(``parse_setting``), so the dialog and ``tabmail config set`` accept exactly the same values.
A ``SecretField`` never shows a stored secret and writes only through ``SecretStore``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.addresses import validate_address
from tabmail.domain.config import SETTINGS, parse_setting
from tabmail.domain.errors import TabmailError
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import muted_label
from tabmail.store.secrets import SECRET_NAMES, SecretStore

Editor = QLineEdit | QComboBox | QCheckBox


class SettingField(QWidget):
    """One setting: its editor and, under it, the reason it was refused (hidden when fine)."""

    def __init__(
        self,
        key: str,
        editor: Editor,
        theme: Theme,
        *,
        is_address: bool = False,
        hint: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if key not in SETTINGS:
            raise KeyError(key)
        self.key = key
        self.editor = editor
        self.is_address = is_address
        editor.setParent(self)
        editor.setToolTip(SETTINGS[key].help[:1].upper() + SETTINGS[key].help[1:])
        self.error = QLabel(self)
        self.error.setObjectName(f"error-{key}")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(theme.text_style(Tone.BAD))
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(editor)
        if hint:
            hint_label = muted_label(hint, self)
            hint_label.setWordWrap(True)
            layout.addWidget(hint_label)
        layout.addWidget(self.error)

    def load(self, value: Any) -> None:
        ed = self.editor
        if isinstance(ed, QCheckBox):
            ed.setChecked(bool(value))
        elif isinstance(ed, QComboBox):
            index = ed.findData(value)
            ed.setCurrentIndex(max(index, 0))
        else:
            ed.setText("" if value is None else str(value))
        self.show_error(None)

    def text(self) -> str:
        ed = self.editor
        if isinstance(ed, QCheckBox):
            return "true" if ed.isChecked() else "false"
        if isinstance(ed, QComboBox):
            return str(ed.currentData())
        return ed.text()

    def parsed(self) -> Any:
        """The value as ``parse_setting`` reads it; raises TabmailError (shown inline)."""
        try:
            value = parse_setting(self.key, self.text())
            if self.is_address and value:
                valid, _normalised, problem = validate_address(value)
                if not valid:
                    raise TabmailError(f"not a valid email address: {problem}")
        except TabmailError as exc:
            self.show_error(str(exc))
            raise
        self.show_error(None)
        return value

    @property
    def label(self) -> str:
        """What the setting is, in words (for messages that point at it)."""
        text = SETTINGS[self.key].help
        return text[:1].upper() + text[1:]

    def show_error(self, message: str | None) -> None:
        text = message[:1].upper() + message[1:] if message else ""
        self.error.setText(text)
        self.error.setVisible(bool(text))


class SecretField(QWidget):
    """A password box for one keyring secret. Empty means "keep what is stored"."""

    forgotten = Signal(str)  # the secret's name, after Forget removed it from the keyring

    def __init__(self, name: str, secrets: SecretStore, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        SecretStore.check_name(name)
        self.name = name
        self.env_var = SECRET_NAMES[name]
        self._secrets = secrets
        self.edit = QLineEdit(self)
        self.edit.setObjectName(f"secret-{name}")
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.forget = QPushButton("Forget", self)
        self.forget.setToolTip("Remove the stored value from the system keyring")
        self.forget.clicked.connect(self._on_forget_clicked)
        self.state = muted_label("", self)
        self.state.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet(theme.text_style(Tone.BAD))
        self.error.hide()
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.edit, 1)
        row.addWidget(self.forget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.state)
        layout.addWidget(self.error)
        self.refresh()

    def refresh(self) -> None:
        available = self._secrets.available
        source = self._secrets.source_of(self.name)
        self.edit.clear()
        self.edit.setEnabled(available)
        self.forget.setVisible(available and source == "keyring")
        if not available:
            self.edit.setPlaceholderText(f"set {self.env_var} before starting tabmail")
            self.state.setText(
                f"Read from {self.env_var} for this run."
                if source == "environment"
                else f"Not set: no keyring here; use the environment variable {self.env_var}."
            )
        elif source == "keyring":
            self.edit.setPlaceholderText("stored in the keyring; type to replace it")
            self.state.setText("Stored in the system keyring.")
        elif source == "environment":
            self.edit.setPlaceholderText("type to store one in the keyring")
            self.state.setText(f"Read from {self.env_var} for this run; nothing stored.")
        else:
            self.edit.setPlaceholderText("not set")
            self.state.setText("Not set.")
        self.show_error(None)

    def pending(self) -> str | None:
        text = self.edit.text()
        return text if text.strip() else None

    def value_for_test(self) -> str | None:
        """What a test should use: the typed value, or else the stored one."""
        return self.pending() or self._secrets.get(self.name)

    def store(self) -> bool:
        """Write a typed value to the keyring; False (and the reason shown) on failure."""
        value = self.pending()
        if value is None:
            return True
        try:
            self._secrets.set(self.name, value)
        except TabmailError as exc:
            self.show_error(str(exc))
            return False
        self.refresh()
        return True

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))

    def _on_forget_clicked(self) -> None:
        try:
            self._secrets.delete(self.name)
        except TabmailError as exc:
            self.show_error(str(exc))
            return
        self.refresh()
        self.forgotten.emit(self.name)
