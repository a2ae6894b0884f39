"""The log file: rotating, owner-only, in the platform's log folder, and never holding a secret.

``setup_logging(debug)`` is called once by the ``tabmail`` command (CLI and window alike). Every
line that reaches the file (and the console handler it installs) first goes through
``SecretRedactor``: values the SecretStore has handed out or stored (``remember_secret``), values
from the ``known_secrets`` callable, and credential shapes (Bearer tokens, Authorization headers,
SendGrid keys, Tabbycat ``Token`` headers, passwords in URLs) are replaced by ``[redacted]``, in
the message, its arguments, the exception text and the stack.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote

import platformdirs

APP_NAME = "tabmail"
LOG_FILE_NAME = "tabmail.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 5
MASK = "[redacted]"
# Shorter values would blank out ordinary words; no real key, token or password is this short.
MIN_SECRET_LENGTH = 4
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"

# Credential shapes masked wherever they appear, known to the SecretStore or not.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization / Proxy-Authorization headers, as text or as a dict repr: the whole value.
    (
        re.compile(r"""(?i)((?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)[^'"\r\n]+"""),
        rf"\g<1>{MASK}",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\g<1>{MASK}"),
    (re.compile(r"(?i)\b(token\s+)[A-Za-z0-9\-._~+/]{12,}=*"), rf"\g<1>{MASK}"),
    (re.compile(r"\bSG\.[A-Za-z0-9_\-]{6,}(?:\.[A-Za-z0-9_\-]{6,})?"), f"SG.{MASK}"),
    (re.compile(r"(?i)\b(x-api-key['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"), rf"\g<1>{MASK}"),
    # user:password@ in URLs
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^:/\s@]+:)[^@\s/]+@", re.I), rf"\g<1>{MASK}@"),
)


def log_dir() -> Path:
    """Where the log files are: ``TABMAIL_LOG_DIR`` if set, else the platform's user log folder
    (Linux ``~/.local/state/tabmail/log``, macOS ``~/Library/Logs/tabmail``, Windows
    ``%LOCALAPPDATA%\\tabmail\\Logs``)."""
    override = os.environ.get("TABMAIL_LOG_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


class SecretRedactor:
    """Replaces secret values and credential shapes in text. Thread-safe; ``redact`` never raises."""

    def __init__(self, known_secrets: Callable[[], Iterable[str]] | None = None) -> None:
        self._known_secrets = known_secrets
        self._lock = threading.Lock()
        self._remembered: frozenset[str] = frozenset()

    def remember(self, value: str | None) -> None:
        """Never write ``value`` (nor its repr-escaped or URL-quoted forms) from now on."""
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        forms = {value, repr(value)[1:-1], quote(value, safe=""), quote(value)}
        with self._lock:
            self._remembered = self._remembered | {f for f in forms if len(f) >= MIN_SECRET_LENGTH}

    def _values(self) -> list[str]:
        values = set(self._remembered)
        if self._known_secrets is not None:
            try:
                for value in self._known_secrets():
                    if value and len(value) >= MIN_SECRET_LENGTH:
                        values.update({value, repr(value)[1:-1]})
            except Exception:  # a failing source must not stop logging; the patterns still apply
                pass
        return sorted(values, key=len, reverse=True)  # longest first: a secret inside another

    def redact(self, text: str) -> str:
        for value in self._values():
            if value in text:
                text = text.replace(value, MASK)
        for pattern, replacement in PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class RedactingFilter(logging.Filter):
    """Rewrites each record in place so that no handler after it sees a secret.

    The message is formatted with its arguments, redacted, and stored back with no arguments; the
    exception and stack text are formatted and redacted too (formatters reuse ``exc_text``).
    """

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: keep what can be shown, redacted
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = self.redactor.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    """A last pass over the finished line (asctime, names, anything a filter could not reach)."""

    def __init__(self, redactor: SecretRedactor, fmt: str) -> None:
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(super().format(record))


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files (the first and every one after a rollover) are 0600."""

    def _open(self) -> io.TextIOWrapper:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOINHERIT", 0)
        fd = os.open(self.baseFilename, flags, 0o600)
        try:
            os.chmod(self.baseFilename, 0o600)  # an older file made with a looser umask
        except OSError:
            pass
        return open(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


_HANDLER_TAG = "_tabmail_handler"


def _tabmail_handlers(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]


def setup_logging(
    debug: bool,
    *,
    known_secrets: Callable[[], Iterable[str]] | None = None,
    directory: Path | None = None,
    console: bool = True,
    max_bytes: int = MAX_BYTES,
    backup_count: int = BACKUP_COUNT,
) -> Path:
    """Log to ``<log_dir>/tabmail.log`` (rotated at ``max_bytes``, ``backup_count`` kept) and,
    when ``console`` and nobody else configured the root logger, warnings to stderr.

    The file gets INFO and up (DEBUG with ``debug``); the console WARNING (DEBUG with ``debug``).
    Calling it again replaces what an earlier call installed. Returns the log file's path. A log
    folder that cannot be created leaves the console logging only (returns the path anyway).
    """
    root = logging.getLogger()
    reset_logging()
    redactor = SecretRedactor(known_secrets)
    redacting = RedactingFilter(redactor)
    folder = directory if directory is not None else log_dir()
    path = folder / LOG_FILE_NAME
    handlers: list[logging.Handler] = []
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        file_handler = PrivateRotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8", delay=False
        )
    except OSError as exc:  # a read-only home: run without the file rather than not at all
        file_handler = None
        failure: str | None = f"cannot write the log file in {folder}: {exc.strerror}"
    else:
        failure = None
    if file_handler is not None:
        file_handler.setLevel(logging.DEBUG if debug else logging.INFO)
        file_handler.setFormatter(RedactingFormatter(redactor, FILE_FORMAT))
        handlers.append(file_handler)
    if console and not root.handlers:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(logging.DEBUG if debug else logging.WARNING)
        stream.setFormatter(RedactingFormatter(redactor, CONSOLE_FORMAT))
        handlers.append(stream)
    for handler in handlers:
        handler.addFilter(redacting)
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    if failure:
        logging.getLogger(__name__).info("%s", failure)
    return path


def remember_secret(value: str | None) -> None:
    """Tell every handler ``setup_logging`` installed never to write ``value``. Never raises.

    Called by the SecretStore for each value it reads or stores; without ``setup_logging`` (tests,
    library use) it does nothing.
    """
    if not value:
        return
    for handler in _tabmail_handlers(logging.getLogger()):
        for flt in handler.filters:
            if isinstance(flt, RedactingFilter):
                flt.redactor.remember(value)


def reset_logging() -> None:
    """Remove and close what ``setup_logging`` installed (tests; a host app embedding tabmail)."""
    root = logging.getLogger()
    for handler in _tabmail_handlers(root):
        root.removeHandler(handler)
        handler.close()
