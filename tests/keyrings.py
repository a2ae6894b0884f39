"""Keyring test doubles (never in the package: keyring's backend discovery considers every
``KeyringBackend`` subclass that has been imported, so one living in tabmail would be picked in
production whenever the OS keyring is missing, and secrets would vanish with the process)."""

from __future__ import annotations

import keyring.backend
import keyring.errors


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-memory backend for tests, benchmarks and screenshots, passed in explicitly.

    Its negative priority keeps keyring's discovery (``keyring.get_keyring()``, the chainer) from
    ever choosing it, even inside the test process: like keyring's own null backend.
    """

    priority = -1  # type: ignore[assignment]

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
