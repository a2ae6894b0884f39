"""The settings dialog: validation inline, secrets only in the keyring, keyring-less machines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keyring.backends import fail
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from tabmail.gui.settings import SettingsDialog
from tabmail.services.context import AppContext
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.gui


@pytest.fixture
def dialog(qtbot: QtBot, ctx: AppContext) -> SettingsDialog:
    dlg = SettingsDialog(ctx)
    qtbot.addWidget(dlg)
    return dlg


def _set(dialog: SettingsDialog, key: str, text: str) -> None:
    editor = dialog.fields[key].editor
    assert isinstance(editor, QLineEdit)
    editor.setText(text)


def _values_contain(values: dict[str, Any], needle: str) -> bool:
    return any(needle in str(key) or needle in str(value) for key, value in values.items())


def test_secret_goes_to_the_keyring_and_never_to_the_settings_table(
    dialog: SettingsDialog, ctx: AppContext, keyring_backend: MemoryKeyring
) -> None:
    backend = dialog.fields["backend"].editor
    backend.setCurrentIndex(backend.findData("smtp"))  # type: ignore[union-attr]
    _set(dialog, "smtp.host", "smtp.example.org")
    _set(dialog, "smtp.username", "tabroom")
    dialog.secret_fields["smtp-password"].edit.setText("hunter2-secret")
    dialog.secret_fields["sendgrid-api-key"].edit.setText("SG.very-secret-key")

    assert dialog.apply()

    assert ctx.secrets.get("smtp-password") == "hunter2-secret"
    assert ctx.secrets.get("sendgrid-api-key") == "SG.very-secret-key"
    assert ("tabmail", "smtp-password") in keyring_backend._data
    settings = ctx.settings.all()
    assert settings["backend"] == "smtp"
    assert settings["smtp.host"] == "smtp.example.org"
    assert not _values_contain(settings, "hunter2-secret")
    assert not _values_contain(settings, "SG.very-secret-key")
    # The field is emptied again and says where the secret lives.
    assert dialog.secret_fields["smtp-password"].edit.text() == ""
    assert "keyring" in dialog.secret_fields["smtp-password"].state.text()


def test_invalid_values_are_shown_inline_and_nothing_is_written(
    dialog: SettingsDialog, ctx: AppContext
) -> None:
    _set(dialog, "smtp.host", "mail.example.org")  # valid, but must not be saved alone
    _set(dialog, "smtp.port", "seventy")
    _set(dialog, "test_mode.reroute_to", "not an address")

    assert not dialog.apply()

    port_error = dialog.fields["smtp.port"].error
    assert not port_error.isHidden()
    assert "whole number" in port_error.text()
    assert "not a valid email address" in dialog.fields["test_mode.reroute_to"].error.text().lower()
    assert ctx.settings.get("smtp.host") == "localhost"
    assert ctx.settings.get("smtp.port") == 587

    _set(dialog, "smtp.port", "2525")
    _set(dialog, "test_mode.reroute_to", "director@example.org")
    assert dialog.apply()
    assert dialog.fields["smtp.port"].error.isHidden()
    assert ctx.settings.get("smtp.port") == 2525
    assert ctx.settings.get("test_mode.reroute_to") == "director@example.org"


def test_poll_interval_is_range_checked(dialog: SettingsDialog, ctx: AppContext) -> None:
    _set(dialog, "poll.interval_seconds", "5")
    assert not dialog.apply()
    assert "between 10 and 86400" in dialog.fields["poll.interval_seconds"].error.text()
    assert dialog.tabs.currentIndex() == 1  # the page with the problem is brought forward


@pytest.fixture
def keyringless_ctx(tmp_path: Path) -> Iterator[AppContext]:
    context = AppContext.open(tmp_path / "nokeyring.sqlite3", keyring_backend=fail.Keyring())
    yield context
    context.close()


def test_without_a_keyring_the_reason_is_shown_and_secret_fields_disabled(
    qtbot: QtBot, keyringless_ctx: AppContext
) -> None:
    dialog = SettingsDialog(keyringless_ctx)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)

    assert dialog.keyring_message.isVisible()
    assert "TABMAIL_SMTP_PASSWORD" in dialog.keyring_message.text()
    for field in dialog.secret_fields.values():
        assert not field.edit.isEnabled()
        assert field.env_var in field.edit.placeholderText()
    assert set(dialog.secret_fields) == {
        "smtp-password",
        "sendgrid-api-key",
        "tabbycat-token",
        "imap-password",
    }
    assert dialog.apply()  # the other settings still save


def test_with_a_keyring_there_is_no_warning(qtbot: QtBot, dialog: SettingsDialog) -> None:
    dialog.show()
    qtbot.waitExposed(dialog)
    assert not dialog.keyring_message.isVisible()
    assert all(field.edit.isEnabled() for field in dialog.secret_fields.values())


def test_forget_removes_a_stored_secret(dialog: SettingsDialog, ctx: AppContext) -> None:
    ctx.secrets.set("sendgrid-api-key", "SG.old")
    field = dialog.secret_fields["sendgrid-api-key"]
    field.refresh()
    assert not field.forget.isHidden()
    field.forget.click()
    assert ctx.secrets.get("sendgrid-api-key") is None
    assert field.forget.isHidden()


def test_backend_choice_shows_its_box(dialog: SettingsDialog) -> None:
    combo = dialog.fields["backend"].editor
    for backend in ("sendgrid", "smtp", "file"):
        combo.setCurrentIndex(combo.findData(backend))  # type: ignore[union-attr]
        box = dialog.backend_boxes[backend]
        assert box.parentWidget().currentWidget() is box  # type: ignore[union-attr]


def test_write_back_to_tabbycat_is_a_setting(qtbot: QtBot, ctx: AppContext) -> None:
    from PySide6.QtWidgets import QCheckBox

    dialog = SettingsDialog(ctx)
    qtbot.addWidget(dialog)
    box = next(w for w in dialog.findChildren(QCheckBox) if "back to Tabbycat" in w.text())
    assert not box.isChecked()
    box.setChecked(True)
    assert dialog.apply()
    assert ctx.settings.get("tabbycat.write_back") is True
