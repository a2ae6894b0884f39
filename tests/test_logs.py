"""The log file: rotating, owner-only, in the platform's log folder, and never holding a secret.

Secrets reach the redactor two ways: every value the SecretStore hands out or stores
(``remember_secret``), and credential shapes (Bearer, Authorization, SendGrid keys, Tabbycat
tokens, passwords in URLs) whether anyone registered them or not.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from tabmail.logs import (
    LOG_FILE_NAME,
    MASK,
    SecretRedactor,
    log_dir,
    remember_secret,
    reset_logging,
    setup_logging,
)
from tabmail.services.context import AppContext
from tabmail.store.secrets import SecretStore
from tests.conftest import REPO
from tests.keyrings import MemoryKeyring

log = logging.getLogger("tabmail.test_logs")
POSIX = os.name == "posix"


def unique_secret() -> str:
    """Matches none of the credential shapes: only the SecretStore registration can hide it."""
    return f"horse-battery-{uuid.uuid4().hex[:12]}-staple"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    root = logging.getLogger()
    level = root.level
    path = setup_logging(False, directory=tmp_path / "logs", console=False)
    yield path
    reset_logging()
    root.setLevel(level)


def contents(path: Path) -> str:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return "".join(p.read_text(encoding="utf-8") for p in sorted(path.parent.glob(LOG_FILE_NAME + "*")))


def test_a_secret_set_and_read_through_the_secret_store_never_reaches_the_file(log_file: Path) -> None:
    secret = unique_secret()
    store = SecretStore(MemoryKeyring(), environ={})
    store.set("smtp-password", secret)
    value = store.get("smtp-password")
    assert value == secret

    log.warning("logging in with %s", value)
    log.info(f"an f-string with the password {value} inside")
    log.error("a mapping: %r", {"password": value, "user": "tab@example.org"})
    try:
        raise RuntimeError(f"535 authentication failed for password {value!r}")
    except RuntimeError:
        log.exception("sending failed")
    log.info("a stack", stack_info=True)

    text = contents(log_file)
    assert secret not in text
    assert text.count(MASK) >= 4  # the message, the f-string, the mapping, the exception
    # The lines themselves are kept: only the value is gone.
    for kept in (
        "logging in with",
        "sending failed",
        "RuntimeError: 535 authentication failed",
        "tab@example.org",
    ):
        assert kept in text


def test_a_secret_from_the_environment_is_redacted_too(log_file: Path) -> None:
    secret = unique_secret()
    store = SecretStore(MemoryKeyring(), environ={"TABMAIL_TABBYCAT_TOKEN": secret})
    assert store.get("tabbycat-token") == secret

    log.warning("token in use: %s", secret)

    text = contents(log_file)
    assert secret not in text and "token in use: " + MASK in text


def test_values_from_the_known_secrets_callable_are_redacted(tmp_path: Path) -> None:
    secret = unique_secret()
    path = setup_logging(False, directory=tmp_path, console=False, known_secrets=lambda: [secret])
    try:
        log.warning("value %s and its quoted form %r", secret, secret)
        text = contents(path)
    finally:
        reset_logging()
    assert secret not in text and text.count(MASK) == 2


@pytest.mark.parametrize(
    ("line", "leak"),
    [
        (
            "sendgrid rejected SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789abcdefghijklmnopqrstuvwxyzABC",
            "aBcDeFgHiJ",
        ),
        (
            "request headers {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig', 'Accept': 'x'}",
            "eyJhbG",
        ),
        ("Authorization: Bearer abc123def456ghi789", "abc123def456"),
        (
            "GET /api/v1 -H 'Authorization: Token 0123456789abcdef0123456789abcdef01234567'",
            "0123456789abcdef",
        ),
        ("curl -H 'Bearer xoxb-1234-5678-secretpart'", "secretpart"),
        ("connecting to smtp://tab:hunter2-Password@smtp.example.org:587", "hunter2"),
        ("x-api-key: k-1234567890abcdef", "1234567890abcdef"),
    ],
)
def test_credential_shapes_are_masked_even_when_nobody_registered_them(
    log_file: Path, line: str, leak: str
) -> None:
    log.warning("%s", line)
    try:
        raise ValueError(line)
    except ValueError:
        log.exception("failed")

    text = contents(log_file)
    assert leak not in text
    assert text.count(MASK) >= 2


def test_ordinary_text_is_left_alone() -> None:
    redactor = SecretRedactor()
    text = "the token expired; sent 12 of 14 messages to ada@example.org (SG. no key here)"
    assert redactor.redact(text) == text


def test_short_values_are_not_registered_so_logs_stay_readable() -> None:
    redactor = SecretRedactor()
    redactor.remember("ab")
    redactor.remember("")
    redactor.remember(None)
    assert redactor.redact("a tab room") == "a tab room"


@pytest.mark.skipif(not POSIX, reason="POSIX file modes")
def test_log_file_and_folder_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a permissive umask must not matter
    try:
        path = setup_logging(False, directory=tmp_path / "nested" / "logs", console=False)
        log.warning("hello")
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        os.umask(old)
        reset_logging()


@pytest.mark.skipif(not POSIX, reason="POSIX file modes")
def test_an_existing_world_readable_log_file_is_tightened(tmp_path: Path) -> None:
    (tmp_path / LOG_FILE_NAME).write_text("old line\n")
    os.chmod(tmp_path / LOG_FILE_NAME, 0o644)
    try:
        path = setup_logging(False, directory=tmp_path, console=False)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        reset_logging()


def test_rotation_keeps_the_configured_number_of_owner_only_files(tmp_path: Path) -> None:
    secret = unique_secret()
    remember = SecretStore(MemoryKeyring(), environ={})
    path = setup_logging(False, directory=tmp_path, console=False, max_bytes=2_000, backup_count=2)
    try:
        remember.set("thread-key", secret)
        for i in range(200):
            log.warning("line %03d with %s", i, secret)
        text = contents(path)
    finally:
        reset_logging()

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [LOG_FILE_NAME, LOG_FILE_NAME + ".1", LOG_FILE_NAME + ".2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 2_000
        if POSIX:
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert "line 199" in (tmp_path / LOG_FILE_NAME).read_text()
    assert "line 000" not in text  # rotated away
    assert secret not in text


def test_setting_up_twice_replaces_the_handlers(tmp_path: Path) -> None:
    try:
        setup_logging(False, directory=tmp_path, console=False)
        path = setup_logging(True, directory=tmp_path, console=False)
        log.debug("once")
        assert contents(path).count("once") == 1
    finally:
        reset_logging()


def test_remember_secret_without_logging_set_up_does_nothing() -> None:
    reset_logging()
    remember_secret("whatever-value-123")  # no handler: nothing to tell, nothing raised


def test_log_dir_follows_the_platform_or_the_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TABMAIL_LOG_DIR", raising=False)
    assert "tabmail" in log_dir().parts
    monkeypatch.setenv("TABMAIL_LOG_DIR", str(tmp_path / "elsewhere"))
    assert log_dir() == tmp_path / "elsewhere"


def test_the_cli_writes_its_log_file_without_leaking_an_environment_secret(tmp_path: Path) -> None:
    """The real command: setup_logging is wired into tabmail.cli.main; stderr stays quiet."""
    secret = unique_secret()
    env = {k: v for k, v in os.environ.items() if k != "TABMAIL_DB"} | {
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "TABMAIL_LOG_DIR": str(tmp_path / "logs"),
        "TABMAIL_SENDGRID_API_KEY": secret,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tabmail", "--debug", "--db", str(tmp_path / "t.sqlite3"), "secret", "status"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "sendgrid-api-key   environment" in done.stdout
    path = tmp_path / "logs" / LOG_FILE_NAME
    assert path.is_file()
    if POSIX:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret not in path.read_text() + done.stdout + done.stderr


# -- the Help menu ------------------------------------------------------------------------


@pytest.mark.gui
def test_help_menu_opens_the_log_folder_and_the_about_box_names_version_and_licence(
    qtbot: QtBot, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import QObject, QSettings, QUrl, Slot
    from PySide6.QtGui import QDesktopServices, QIcon

    from tabmail import __version__
    from tabmail.gui.main_window import MainWindow
    from tabmail.resources import resource

    class FileUrls(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.opened: list[QUrl] = []

        @Slot(QUrl)
        def open(self, url: QUrl) -> None:
            self.opened.append(url)

    folder = tmp_path / "log-folder"
    monkeypatch.setenv("TABMAIL_LOG_DIR", str(folder))
    window = MainWindow(ctx, qsettings=QSettings(str(tmp_path / "qt.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.setWindowIcon(QIcon(str(resource("icons", "tabmail-64.png"))))

    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    texts = [a.text() for a in help_menu.actions() if not a.isSeparator()]
    assert texts == ["Open &Log Folder", "&About tabmail"]

    handler = FileUrls()
    QDesktopServices.setUrlHandler("file", handler, "open")
    try:
        window.menus.open_log_folder_action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [u.toLocalFile() for u in handler.opened] == [str(folder)]
    assert folder.is_dir()

    box = window.help.about_box()
    qtbot.addWidget(box)
    text = box.text()
    assert f"tabmail {__version__}" in text
    assert "AGPL-3.0-or-later" in text
    assert QUrl.fromLocalFile(str(folder)).toString() in text
    assert not box.iconPixmap().isNull()
