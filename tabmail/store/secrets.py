"""Secrets in the OS keyring, never anywhere else.

When the platform has no usable keyring (keyring's fail backend, a locked or absent Secret
Service), ``SecretStore.unavailable_reason`` says so in one sentence and ``get`` falls back to
the documented environment variables for that run. Nothing here ever writes a secret to disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import keyring
import keyring.backend
import keyring.errors
from keyring.backends import fail

from tabmail.domain.errors import TabmailError
from tabmail.logs import remember_secret

log = logging.getLogger(__name__)

SERVICE = "tabmail"

# name -> environment variable accepted when no keyring can be used
SECRET_NAMES: dict[str, str] = {
    "tabbycat-token": "TABMAIL_TABBYCAT_TOKEN",
    "smtp-password": "TABMAIL_SMTP_PASSWORD",
    "sendgrid-api-key": "TABMAIL_SENDGRID_API_KEY",
    "thread-key": "TABMAIL_THREAD_KEY",
}


class SecretStoreError(TabmailError):
    """A secret could not be stored or read. The message never contains the secret."""


class SecretStore:
    def __init__(
        self,
        backend: keyring.backend.KeyringBackend | None = None,
        environ: Mapping[str, str] | None = None,
        service: str = SERVICE,
    ) -> None:
        self._backend = backend if backend is not None else keyring.get_keyring()
        self._environ = os.environ if environ is None else environ
        self._service = service
        self._reason: str | None = None
        self._probed = False

    @staticmethod
    def check_name(name: str) -> str:
        if name not in SECRET_NAMES:
            raise SecretStoreError(f"unknown secret {name!r}; known: {', '.join(SECRET_NAMES)}")
        return name

    @property
    def unavailable_reason(self) -> str | None:
        """None when the keyring works; otherwise one sentence for the director."""
        if not self._probed:
            self._probed = True
            self._reason = self._probe()
        return self._reason

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    def _probe(self) -> str | None:
        envs = ", ".join(SECRET_NAMES.values())
        if isinstance(self._backend, fail.Keyring):
            return (
                "No OS keyring is available on this machine, so secrets cannot be stored; "
                f"set them for this run through the environment variables {envs}."
            )
        try:
            self._backend.get_password(self._service, "__probe__")
        except keyring.errors.KeyringError as exc:
            return (
                f"The OS keyring cannot be used ({type(exc).__name__}: it may be locked or absent); "
                f"set secrets for this run through the environment variables {envs}."
            )
        except Exception as exc:  # D-Bus errors from SecretStorage and the like
            return (
                f"The OS keyring cannot be reached ({type(exc).__name__}); "
                f"set secrets for this run through the environment variables {envs}."
            )
        return None

    def get(self, name: str) -> str | None:
        """The keyring's value, else the environment variable's, else None. Never raises."""
        self.check_name(name)
        if self.available:
            try:
                value = self._backend.get_password(self._service, name)
            except Exception as exc:
                log.warning("reading secret %s from the keyring failed: %s", name, type(exc).__name__)
                value = None
            if value:
                remember_secret(value)  # the log file never shows a value handed out
                return value
        env = self._environ.get(SECRET_NAMES[name])
        remember_secret(env)
        return env or None

    def set(self, name: str, value: str) -> None:
        self.check_name(name)
        if not value:
            raise SecretStoreError(f"refusing to store an empty value for {name}")
        remember_secret(value)
        if not self.available:
            raise SecretStoreError(str(self.unavailable_reason))
        try:
            self._backend.set_password(self._service, name, value)
        except Exception as exc:
            raise SecretStoreError(f"the keyring refused to store {name} ({type(exc).__name__})") from None

    def delete(self, name: str) -> bool:
        """Remove a stored secret; False when there was none."""
        self.check_name(name)
        if not self.available:
            raise SecretStoreError(str(self.unavailable_reason))
        try:
            self._backend.delete_password(self._service, name)
        except keyring.errors.PasswordDeleteError:
            return False
        except Exception as exc:
            raise SecretStoreError(f"the keyring refused to delete {name} ({type(exc).__name__})") from None
        return True

    def source_of(self, name: str) -> str:
        """'keyring', 'environment' or 'missing': for settings screens, never the value."""
        self.check_name(name)
        if self.available:
            try:
                if self._backend.get_password(self._service, name):
                    return "keyring"
            except Exception:
                pass
        return "environment" if self._environ.get(SECRET_NAMES[name]) else "missing"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-memory backend for tests and for platforms without a keyring in demo runs."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self._data[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None
