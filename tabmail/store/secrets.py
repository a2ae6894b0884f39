"""Secrets in the OS keyring, never anywhere else.

When the platform has no usable keyring (keyring's fail or null backend, a locked or absent
Secret Service), ``SecretStore.unavailable_reason`` says so in one sentence, ``set`` refuses
with one sentence naming the secret's environment variable, and ``get`` falls back to those
variables for that run. Nothing here ever writes a secret to disk, and nothing here is a
keyring backend: keyring's discovery would pick any imported ``KeyringBackend`` subclass.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tabmail.domain.errors import TabmailError
from tabmail.domain.secret_names import SECRET_NAMES
from tabmail.logs import remember_secret

if TYPE_CHECKING:
    import keyring.backend

log = logging.getLogger(__name__)

SERVICE = "tabmail"

# The names and their variables: tabmail/domain/secret_names.py (the CLI lists them without
# importing keyring).
__all__ = ["SECRET_NAMES", "SecretStore", "SecretStoreError"]


class SecretStoreError(TabmailError):
    """A secret could not be stored or read. The message never contains the secret."""


class SecretStore:
    def __init__(
        self,
        backend: keyring.backend.KeyringBackend | None = None,
        environ: Mapping[str, str] | None = None,
        service: str = SERVICE,
    ) -> None:
        self._given = backend
        self._environ = os.environ if environ is None else environ
        self._service = service
        self._problem: str | None = None
        self._probed = False

    @property
    def _backend(self) -> keyring.backend.KeyringBackend:
        """keyring's choice, made on first use: importing keyring and asking every backend's
        priority costs a tenth of a second, which commands that read no secret do not pay."""
        if self._given is None:
            import keyring

            self._given = keyring.get_keyring()
        return self._given

    @staticmethod
    def check_name(name: str) -> str:
        if name not in SECRET_NAMES:
            raise SecretStoreError(f"unknown secret {name!r}; known: {', '.join(SECRET_NAMES)}")
        return name

    @property
    def unavailable_reason(self) -> str | None:
        """None when the keyring works; otherwise one sentence for the director."""
        problem = self._keyring_problem()
        if problem is None:
            return None
        envs = ", ".join(SECRET_NAMES.values())
        return f"{problem}, so secrets cannot be stored; set them for this run through the environment variables {envs}."

    @property
    def available(self) -> bool:
        return self._keyring_problem() is None

    def refusal(self, name: str, problem: str | None = None) -> str:
        """The one sentence saying why ``name`` cannot be stored here, and what to do instead."""
        self.check_name(name)
        problem = problem or self._keyring_problem() or "The OS keyring cannot be used"
        return f"{problem}, so {name} cannot be stored; set {SECRET_NAMES[name]} in tabmail's environment instead."

    def _keyring_problem(self) -> str | None:
        """What is wrong with the keyring, as the start of a sentence; None when it works (probed once)."""
        if not self._probed:
            self._probed = True
            self._problem = self._probe()
        return self._problem

    def _probe(self) -> str | None:
        import keyring.errors
        from keyring.backends import fail, null

        # fail: keyring's discovery found nothing; null: a backend that silently keeps nothing.
        if isinstance(self._backend, fail.Keyring | null.Keyring):
            return "No OS keyring is available on this machine"
        try:
            self._backend.get_password(self._service, "__probe__")
        except keyring.errors.KeyringError as exc:
            return f"The OS keyring cannot be used ({type(exc).__name__}: it may be locked or absent)"
        except Exception as exc:  # D-Bus errors from SecretStorage and the like
            return f"The OS keyring cannot be reached ({type(exc).__name__})"
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
            raise SecretStoreError(self.refusal(name))
        try:
            self._backend.set_password(self._service, name, value)
            kept = self._backend.get_password(self._service, name)
        except Exception as exc:
            raise SecretStoreError(f"the keyring refused to store {name} ({type(exc).__name__})") from None
        if kept != value:  # a backend that accepts and forgets must not let anyone say "stored"
            raise SecretStoreError(self.refusal(name, "The OS keyring did not keep it"))

    def delete(self, name: str) -> bool:
        """Remove a stored secret; False when there was none."""
        import keyring.errors

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
