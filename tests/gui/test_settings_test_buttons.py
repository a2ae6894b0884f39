"""The Settings dialog's Test buttons run real tests with the values as typed, never saving them,
off the GUI thread with a Cancel; and every button and signal of the dialog reaches a handler."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from PySide6.QtCore import SIGNAL, QMetaMethod, QObject, QSettings, Signal
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QProgressDialog, QPushButton
from pytestqt.qtbot import QtBot

from tabmail.backends.probe import Failure
from tabmail.gui.main_window import MainWindow
from tabmail.gui.settings import SettingsDialog
from tabmail.services.context import AppContext
from tests.servers.sendgrid import ALL_SCOPES, DEFAULT_KEY, SendGridTestServer
from tests.servers.smtp import SmtpTestServer

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]
USER, PASSWORD = "tabroom", "correct horse"


@pytest.fixture
def dialog(qtbot: QtBot, ctx: AppContext, qloop: asyncio.AbstractEventLoop) -> SettingsDialog:
    dlg = SettingsDialog(ctx)
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted_tls_server(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SmtpTestServer]:
    """STARTTLS with a certificate the machine trusts (SSL_CERT_FILE names the test CA), AUTH."""
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    with SmtpTestServer(tls="starttls", cert=ca.issue_cert("127.0.0.1"), auth=(USER, PASSWORD)) as server:
        yield server


def type_in(dialog: SettingsDialog, key: str, text: str) -> None:
    editor = dialog.fields[key].editor
    if isinstance(editor, QComboBox):
        editor.setCurrentIndex(editor.findData(text))
    else:
        assert isinstance(editor, QLineEdit)
        editor.setText(text)


def smtp_values(dialog: SettingsDialog, server: SmtpTestServer, security: str = "starttls") -> None:
    type_in(dialog, "backend", "smtp")
    type_in(dialog, "smtp.host", server.host)
    type_in(dialog, "smtp.port", str(server.port))
    type_in(dialog, "smtp.security", security)


def run_test(qtbot: QtBot, dialog: SettingsDialog, backend: str) -> str:
    box = dialog.backend_boxes[backend]
    box.test_button.click()
    op = dialog.test_op
    assert op is not None
    qtbot.waitUntil(lambda: not op.is_running() and box.test_button.isEnabled(), timeout=30000)
    return dialog.test_texts[backend]


def test_smtp_test_succeeds_with_typed_values_and_cancel_keeps_the_old_settings(
    qtbot: QtBot, dialog: SettingsDialog, ctx: AppContext, trusted_tls_server: SmtpTestServer
) -> None:
    smtp_values(dialog, trusted_tls_server)
    type_in(dialog, "smtp.username", USER)
    dialog.secret_fields["smtp-password"].edit.setText(PASSWORD)

    text = run_test(qtbot, dialog, "smtp")

    assert text.startswith("✓ SMTP works"), text
    assert "✓ STARTTLS" in text and "✓ login: Logged in as tabroom" in text
    assert dialog.last_test is not None and dialog.last_test.ok
    dialog.reject()
    assert ctx.settings.get("backend") == "file"  # nothing was saved behind the director's back
    assert ctx.settings.get("smtp.port") == 587
    assert ctx.secrets.get("smtp-password") is None


def test_smtp_wrong_password_says_the_login_was_refused(
    qtbot: QtBot, dialog: SettingsDialog, trusted_tls_server: SmtpTestServer
) -> None:
    smtp_values(dialog, trusted_tls_server)
    type_in(dialog, "smtp.username", USER)
    dialog.secret_fields["smtp-password"].edit.setText("not the password")
    text = run_test(qtbot, dialog, "smtp")
    assert text.startswith("✗ ") and "refused the login for tabroom" in text
    assert dialog.last_test is not None and dialog.last_test.failure is Failure.AUTH
    assert "not the password" not in text


def test_smtp_untrusted_certificate_says_so(qtbot: QtBot, dialog: SettingsDialog, ca: trustme.CA) -> None:
    with SmtpTestServer(tls="starttls", cert=ca.issue_cert("127.0.0.1")) as server:  # CA not trusted here
        smtp_values(dialog, server)
        text = run_test(qtbot, dialog, "smtp")
    assert "certificate" in text and "could not be verified" in text
    assert dialog.last_test is not None and dialog.last_test.failure is Failure.CERTIFICATE


def test_smtp_refused_port(qtbot: QtBot, dialog: SettingsDialog) -> None:
    with SmtpTestServer() as server:
        port = server.port
    smtp_values(dialog, server, "none")
    type_in(dialog, "smtp.port", str(port))
    text = run_test(qtbot, dialog, "smtp")
    assert "refused the connection" in text
    assert dialog.last_test is not None and dialog.last_test.failure is Failure.REFUSED


def test_a_slow_test_can_be_cancelled(qtbot: QtBot, dialog: SettingsDialog, ctx: AppContext) -> None:
    with socket.socket() as listener:  # accepts, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        type_in(dialog, "backend", "smtp")
        type_in(dialog, "smtp.host", "127.0.0.1")
        type_in(dialog, "smtp.port", str(listener.getsockname()[1]))
        type_in(dialog, "smtp.security", "none")
        box = dialog.backend_boxes["smtp"]
        box.test_button.click()
        assert not box.test_button.isEnabled() and box.test_result.text() == "Testing…"
        progress = dialog.findChild(QProgressDialog, "op-progress")
        assert progress is not None and "Testing the SMTP server" in progress.labelText()
        cancel = progress.findChild(QPushButton)
        assert cancel is not None and cancel.text() == "Cancel"
        cancel.click()
        qtbot.waitUntil(lambda: dialog.test_texts.get("smtp") == "✗ Test cancelled.", timeout=5000)
        assert box.test_button.isEnabled()


def test_sendgrid_good_key_and_missing_scope(qtbot: QtBot, dialog: SettingsDialog, ctx: AppContext) -> None:
    type_in(dialog, "backend", "sendgrid")
    type_in(dialog, "from_address", "tab@example.org")
    dialog.secret_fields["sendgrid-api-key"].edit.setText(DEFAULT_KEY)
    with SendGridTestServer() as server:
        type_in(dialog, "sendgrid.base_url", server.url)
        text = run_test(qtbot, dialog, "sendgrid")
        assert text.startswith("✓ SendGrid works"), text
        assert "Email Activity" in text and "sandbox test send" in text
        assert len(server.requests_to("/v3/mail/send")) == 1
    with SendGridTestServer(scopes=ALL_SCOPES - {"mail.send"}) as server:
        type_in(dialog, "sendgrid.base_url", server.url)
        text = run_test(qtbot, dialog, "sendgrid")
        assert text.startswith("✗ ") and "mail.send" in text
        assert server.requests_to("/v3/mail/send") == []
    assert ctx.secrets.get("sendgrid-api-key") is None  # typed for the test, never stored


def test_file_folder_test(qtbot: QtBot, dialog: SettingsDialog, tmp_path: Path) -> None:
    type_in(dialog, "file.directory", str(tmp_path / "eml"))
    assert run_test(qtbot, dialog, "file").startswith("✓ The folder can be written")
    (tmp_path / "blocker").write_text("a file, not a folder")
    type_in(dialog, "file.directory", str(tmp_path / "blocker" / "eml"))
    assert run_test(qtbot, dialog, "file").startswith("✗ Cannot create")


def test_invalid_values_are_not_tested(qtbot: QtBot, dialog: SettingsDialog) -> None:
    type_in(dialog, "sendgrid.base_url", "ftp://nope")
    dialog.backend_boxes["sendgrid"].test_button.click()
    assert dialog.test_op is None
    assert "Correct the settings" in dialog.test_texts["sendgrid"]


def _own_signals(obj: QObject) -> list[str]:
    """The public signals tabmail's own classes declare on ``obj``."""
    return [
        name
        for cls in type(obj).__mro__
        if cls.__module__.startswith("tabmail.")
        for name, attr in vars(cls).items()
        if isinstance(attr, Signal) and not name.startswith("_")
    ]


def test_every_settings_button_and_signal_reaches_a_handler(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings
) -> None:
    window = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(window)
    dialog = window.open_settings_dialog()
    unconnected = []
    for button in dialog.findChildren(QAbstractButton):
        if button.isCheckable():
            continue  # a check box is a value, read when saving
        if button.receivers(SIGNAL("clicked(bool)")) + button.receivers(SIGNAL("clicked()")) == 0:
            unconnected.append(f"button {button.text()!r}")
    checked = 0
    for obj in [dialog, *dialog.findChildren(QObject)]:
        for name in _own_signals(obj):
            checked += 1
            if not obj.isSignalConnected(QMetaMethod.fromSignal(getattr(obj, name))):
                unconnected.append(f"{type(obj).__name__}.{name}")
    assert unconnected == []
    assert checked >= 6  # BackendBox.test_clicked ×3, SecretField.forgotten ×3
    dialog.close()
