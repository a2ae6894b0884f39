"""Secrets: the keyring when it works, a clear sentence and environment variables when it does not,
and never a secret in an error, a log line or a terminal. The real Secret Service is used where
tools/with-keyring.sh provides one (make unit runs the tests inside it)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring.backend
import keyring.errors
import pytest
from keyring.backends import fail, null
from secretstorage.exceptions import SecretServiceNotAvailableException

from tabmail.store.secrets import SECRET_NAMES, SecretStore, SecretStoreError
from tests.conftest import REPO
from tests.keyrings import MemoryKeyring

SECRET = "s3cr3t-Value-7f2e"


class LockedKeyring(MemoryKeyring):
    """A keyring whose collection is locked: every read raises, as the Secret Service does."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


class UnreachableKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise SecretServiceNotAvailableException("Could not connect to the D-Bus session bus")


class LeakyKeyring(MemoryKeyring):
    """A backend whose own errors quote what it was given (some do)."""

    def get_password(self, service: str, username: str) -> str | None:
        if username == "__probe__":
            return None
        raise RuntimeError(f"cannot read {username}; last value {SECRET}")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"refused to store {password!r}")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError(f"cannot delete, value was {SECRET}")


def one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text and "\n" not in text


# -- a working keyring -------------------------------------------------------------------


def test_memory_keyring_set_get_delete() -> None:
    store = SecretStore(MemoryKeyring(), environ={})
    assert store.available and store.unavailable_reason is None
    assert store.get("sendgrid-api-key") is None
    assert store.source_of("sendgrid-api-key") == "missing"

    store.set("sendgrid-api-key", SECRET)

    assert store.get("sendgrid-api-key") == SECRET
    assert store.source_of("sendgrid-api-key") == "keyring"
    assert store.get("smtp-password") is None
    assert store.delete("sendgrid-api-key") is True
    assert store.get("sendgrid-api-key") is None
    assert store.delete("sendgrid-api-key") is False


def test_keyring_value_wins_over_the_environment() -> None:
    store = SecretStore(MemoryKeyring(), environ={"TABMAIL_SMTP_PASSWORD": "from-env"})
    assert (store.get("smtp-password"), store.source_of("smtp-password")) == ("from-env", "environment")
    store.set("smtp-password", SECRET)
    assert (store.get("smtp-password"), store.source_of("smtp-password")) == (SECRET, "keyring")


def test_unknown_names_and_empty_values_are_refused() -> None:
    store = SecretStore(MemoryKeyring(), environ={})
    with pytest.raises(SecretStoreError, match="unknown secret 'api-key'; known: tabbycat-token"):
        store.set("api-key", SECRET)
    with pytest.raises(SecretStoreError, match="empty value for thread-key"):
        store.set("thread-key", "")


# -- no keyring --------------------------------------------------------------------------


def test_without_a_keyring_the_environment_is_used_and_set_refuses() -> None:
    no_keyring = fail.Keyring()  # type: ignore[no-untyped-call]
    store = SecretStore(no_keyring, environ={"TABMAIL_TABBYCAT_TOKEN": SECRET})

    reason = store.unavailable_reason
    assert reason is not None and not store.available
    assert one_sentence(reason), reason
    assert all(env in reason for env in SECRET_NAMES.values())
    assert SECRET not in reason
    assert store.get("tabbycat-token") == SECRET
    assert store.source_of("tabbycat-token") == "environment"
    assert store.get("sendgrid-api-key") is None
    with pytest.raises(SecretStoreError) as caught:
        store.set("tabbycat-token", "another-value")
    assert str(caught.value) == (
        "No OS keyring is available on this machine, so tabbycat-token cannot be stored; "
        "set TABMAIL_TABBYCAT_TOKEN in tabmail's environment instead."
    )
    with pytest.raises(SecretStoreError):
        store.delete("tabbycat-token")


@pytest.mark.parametrize(
    ("backend", "words"),
    [(LockedKeyring(), "KeyringLocked: it may be locked"), (UnreachableKeyring(), "cannot be reached")],
)
def test_a_locked_or_unreachable_keyring_is_unavailable_with_a_clear_reason(
    backend: keyring.backend.KeyringBackend, words: str
) -> None:
    store = SecretStore(backend, environ={"TABMAIL_THREAD_KEY": SECRET})

    reason = store.unavailable_reason

    assert reason is not None and words in reason
    assert one_sentence(reason), reason
    assert "TABMAIL_THREAD_KEY" in reason and SECRET not in reason
    assert store.get("thread-key") == SECRET  # the environment, for this run
    with pytest.raises(SecretStoreError, match="cannot be"):
        store.set("thread-key", "x")


def test_secret_values_never_reach_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    store = SecretStore(LeakyKeyring(), environ={})
    assert store.available
    caplog.set_level(logging.DEBUG)

    with pytest.raises(SecretStoreError) as set_error:
        store.set("smtp-password", SECRET)
    assert store.get("smtp-password") is None
    assert store.source_of("smtp-password") == "missing"
    with pytest.raises(SecretStoreError) as delete_error:
        store.delete("smtp-password")

    for caught in (set_error, delete_error):
        shown = "".join(traceback.format_exception(caught.value))
        assert "smtp-password" in str(caught.value)
        assert SECRET not in shown, shown
    assert "PasswordSetError" in str(set_error.value)
    assert "reading secret smtp-password" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize("name", sorted(SECRET_NAMES))
def test_every_secret_is_refused_naming_its_own_variable(name: str) -> None:
    store = SecretStore(fail.Keyring(), environ={})  # type: ignore[no-untyped-call]

    with pytest.raises(SecretStoreError) as caught:
        store.set(name, SECRET)

    variable = "TABMAIL_" + name.upper().replace("-", "_")
    assert SECRET_NAMES[name] == variable  # the convention a new name's line follows
    assert str(caught.value) == (
        f"No OS keyring is available on this machine, so {name} cannot be stored; "
        f"set {variable} in tabmail's environment instead."
    )


class ForgetfulKeyring(MemoryKeyring):
    """Accepts every value and keeps none (as keyring's null backend or a broken daemon does)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        pass


@pytest.mark.parametrize("backend", [ForgetfulKeyring(), null.Keyring()], ids=["forgetful", "null"])
def test_a_keyring_that_keeps_nothing_never_counts_as_stored(backend: keyring.backend.KeyringBackend) -> None:
    store = SecretStore(backend, environ={})

    with pytest.raises(SecretStoreError) as caught:
        store.set("smtp-password", SECRET)

    assert "so smtp-password cannot be stored; set TABMAIL_SMTP_PASSWORD" in str(caught.value)
    assert one_sentence(str(caught.value)) and SECRET not in str(caught.value)
    assert store.get("smtp-password") is None


# -- the command line --------------------------------------------------------------------


def tabmail(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tabmail", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_secret_set_without_a_keyring_says_so_and_never_echoes() -> None:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}

    done = tabmail("secret", "set", "smtp-password", stdin=SECRET + "\n", env=env)

    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("tabmail: error: No OS keyring is available") and "TABMAIL_SMTP_PASSWORD" in line
    assert SECRET not in done.stdout + done.stderr


def without_any_keyring(home: Path) -> dict[str, str]:
    """An environment as on a machine with no keyring: no D-Bus session, no keyring choice made
    by configuration, a home of its own (no keyringrc), no secrets in variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DBUS_", "PYTHON_KEYRING", "TABMAIL_", "XDG_", "KEYRING_"))
    }
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
    env["TABMAIL_DB"] = str(home / "tabmail.sqlite3")
    env["TABMAIL_LOG_DIR"] = str(home / "logs")
    return env


def test_cli_secret_set_with_no_keyring_found_refuses_and_nothing_claims_it(tmp_path: Path) -> None:
    """keyring's own discovery, as in production: a test double in the package used to be picked
    ("stored ... in the OS keyring", exit 0) and the secret vanished with the process."""
    env = without_any_keyring(tmp_path)

    done = tabmail("secret", "set", "smtp-password", stdin=SECRET + "\n", env=env)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        "tabmail: error: No OS keyring is available on this machine, so smtp-password cannot be stored; "
        "set TABMAIL_SMTP_PASSWORD in tabmail's environment instead."
    ]
    later = tabmail("secret", "status", env=env)
    assert later.returncode == 0, later.stderr
    assert "smtp-password      missing" in later.stdout.splitlines()
    assert SECRET not in done.stderr + later.stdout + later.stderr


FIND_BACKENDS = """
import importlib, json, pkgutil
import keyring, keyring.backend
import tabmail
for module in pkgutil.walk_packages(tabmail.__path__, "tabmail."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
ours = [c.__module__ + "." + c.__name__ for c in keyring.backend.KeyringBackend._classes if c.__module__.startswith("tabmail")]
print(json.dumps({"ours": ours, "chosen": type(keyring.get_keyring()).__module__}))
"""


def test_no_tabmail_module_offers_keyring_a_backend(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FIND_BACKENDS],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**without_any_keyring(tmp_path), "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found == {"ours": [], "chosen": "keyring.backends.fail"}


# -- the real Secret Service -------------------------------------------------------------


@pytest.fixture
def secret_service() -> Iterator[keyring.backend.KeyringBackend]:
    """The Secret Service of tools/with-keyring.sh's throwaway gnome-keyring.

    Skipped outside it; inside it (TABMAIL_REAL_KEYRING=1 says the daemon answered) a keyring
    that does not work is a failure, not a skip.
    """
    if os.environ.get("TABMAIL_REAL_KEYRING") != "1":
        pytest.skip("needs the Secret Service of tools/with-keyring.sh (make unit runs the tests inside it)")
    from keyring.backends import SecretService

    backend = SecretService.Keyring()  # type: ignore[no-untyped-call]
    probe = SecretStore(backend, environ={}, service="tabmail-test-probe")
    assert probe.available, probe.unavailable_reason
    yield backend


@pytest.mark.keyring_real
def test_real_secret_service_stores_reads_and_deletes(secret_service: keyring.backend.KeyringBackend) -> None:
    service = f"tabmail-test-{uuid.uuid4().hex}"
    store = SecretStore(secret_service, environ={}, service=service)
    value = f"{SECRET}-{uuid.uuid4().hex}"

    store.set("sendgrid-api-key", value)

    assert store.get("sendgrid-api-key") == value
    assert SecretStore(secret_service, environ={}, service=service).get("sendgrid-api-key") == value
    assert store.source_of("sendgrid-api-key") == "keyring"
    assert store.delete("sendgrid-api-key") is True
    assert store.get("sendgrid-api-key") is None


@pytest.mark.keyring_real
def test_cli_secret_set_reads_stdin_into_the_real_keyring(
    secret_service: keyring.backend.KeyringBackend,
) -> None:
    if os.environ.get("TABMAIL_IN_KEYRING_SESSION") != "1":
        pytest.skip(
            "writes tabmail's own entries: only inside the throwaway keyring of tools/with-keyring.sh"
        )
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    value = f"{SECRET}-{uuid.uuid4().hex}"

    stored = tabmail("secret", "set", "thread-key", stdin=value + "\n", env=env)

    assert (stored.returncode, stored.stderr) == (0, "")
    assert stored.stdout == "stored thread-key in the OS keyring\n"
    assert SecretStore(secret_service, environ={}).get("thread-key") == value
    status = tabmail("secret", "status", env=env)
    assert "thread-key         keyring" in status.stdout
    assert value not in status.stdout + status.stderr
    deleted = tabmail("secret", "delete", "thread-key", env=env)
    assert deleted.stdout == "deleted thread-key from the OS keyring\n"
    assert SecretStore(secret_service, environ={}).get("thread-key") is None
