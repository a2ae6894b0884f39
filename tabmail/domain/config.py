"""The non-secret settings tabmail knows, with types, defaults and validation.

Secrets (keys, passwords, tokens) are never settings: they live in the OS keyring.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tabmail.domain.errors import TabmailError


class SettingError(TabmailError, ValueError):
    pass


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise SettingError(f"expected a whole number, got {text!r}") from exc
        if not lo <= value <= hi:
            raise SettingError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise SettingError(f"must be one of {', '.join(choices)}; got {text!r}")
        return text

    return parse


def _text(text: str) -> str:
    return text.strip()


def is_loopback_host(host: str) -> bool:
    """True when ``host`` (a URL's ``[user@]host[:port]``) names this machine: localhost or a
    loopback address. Plain http:// to such a host never leaves the machine."""
    name = host.rsplit("@", 1)[-1]
    name = name[1:].split("]", 1)[0] if name.startswith("[") else name.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _url(text: str) -> str:
    """An API base URL. Plain http:// only to this machine: the API key travels in a header."""
    text = text.strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise SettingError(f"must start with https:// (or http:// to this machine), got {text!r}")
    if text.startswith("http://"):
        host = text.removeprefix("http://").split("/", 1)[0]
        if not is_loopback_host(host):
            raise SettingError(f"must use https:// (the API key would travel unencrypted to {host})")
    return text


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"expected true or false, got {text!r}")


@dataclass(frozen=True, slots=True)
class SettingSpec:
    key: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    # Kept for this machine only (stored under "key@host"): laptops sharing a database differ.
    per_machine: bool = False


SETTINGS: dict[str, SettingSpec] = {
    s.key: s
    for s in (
        SettingSpec(
            "backend",
            "file",
            _choice("smtp", "sendgrid", "file", "practice"),
            "how mail is sent (practice: nothing leaves this computer)",
        ),
        SettingSpec(
            "user.name",
            "",
            _text,
            "your name in the record of who did what (empty: your login name); kept per machine",
            per_machine=True,
        ),
        SettingSpec("from_address", "tab@example.org", _text, "the From address"),
        SettingSpec("from_name", "", _text, "From display name; empty: '<tournament> Tab Room'"),
        SettingSpec("reply_to", "", _text, "Reply-To address (empty: none)"),
        SettingSpec("test_mode.reroute_to", "", _text, "test mode: send every message here instead"),
        SettingSpec("smtp.host", "localhost", _text, "SMTP server host name"),
        SettingSpec("smtp.port", 587, _int_range(1, 65535), "SMTP server port"),
        SettingSpec("smtp.security", "starttls", _choice("starttls", "tls", "none"), "SMTP encryption"),
        SettingSpec("smtp.username", "", _text, "SMTP login (empty: no AUTH)"),
        SettingSpec("smtp.connections", 4, _int_range(1, 32), "parallel SMTP connections"),
        SettingSpec("smtp.messages_per_connection", 100, _int_range(1, 10000), "reconnect after this many"),
        SettingSpec("smtp.rate_per_minute", 0, _int_range(0, 100000), "messages per minute (0: no limit)"),
        SettingSpec("smtp.daily_cap", 0, _int_range(0, 10000000), "messages per day (0: no limit)"),
        SettingSpec("smtp.timeout", 30, _int_range(1, 600), "SMTP socket timeout in seconds"),
        SettingSpec("sendgrid.base_url", "https://api.sendgrid.com", _url, "SendGrid API base URL"),
        SettingSpec("sendgrid.sandbox", False, _bool, "SendGrid sandbox mode (nothing delivered)"),
        SettingSpec("file.directory", "", _text, "dry run: folder for .eml files (empty: data folder)"),
        SettingSpec(
            "tabbycat.write_back", False, _bool, "write addresses corrected for a resend back to Tabbycat"
        ),
        SettingSpec(
            "tabbycat.import_timeout_seconds",
            600,
            _int_range(1, 86400),
            "stop a Tabbycat import that takes longer than this (seconds)",
        ),
        SettingSpec("poll.interval_seconds", 60, _int_range(10, 86400), "status poll interval"),
        SettingSpec(
            "appearance",
            "system",
            _choice("system", "light", "dark"),
            "light or dark: follow the system, or force one",
        ),
        SettingSpec("imap.host", "", _text, "the tab room's mailbox: IMAP server (empty: inbox not read)"),
        SettingSpec("imap.port", 993, _int_range(1, 65535), "IMAP server port"),
        SettingSpec(
            "imap.security",
            "ssl",
            _choice("ssl", "starttls", "none"),
            "IMAP encryption (none: this machine only)",
        ),
        SettingSpec("imap.username", "", _text, "IMAP login"),
        SettingSpec("imap.folder", "INBOX", _text, "the folder bounces and replies arrive in"),
        SettingSpec("imap.poll_seconds", 60, _int_range(5, 86400), "inbox check interval without IDLE"),
        SettingSpec(
            "imap.processed_folder", "", _text, "move processed mail to this folder (empty: never move)"
        ),
        SettingSpec(
            "smtp.verp", False, _bool, "MAIL FROM local+tm-<id>@domain so any bounce names its message"
        ),
        SettingSpec(
            "tls.ca_file", "", _text, "extra CA certificate file for SMTP and IMAP (empty: system CAs)"
        ),
        SettingSpec("outbox.max_attempts", 8, _int_range(1, 100), "attempts before a transient error fails"),
    )
}


def parse_setting(key: str, text: str) -> Any:
    spec = SETTINGS.get(key)
    if spec is None:
        known = ", ".join(sorted(SETTINGS))
        raise SettingError(f"unknown setting {key!r}; known settings: {known}")
    return spec.parse(text)
