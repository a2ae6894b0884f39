"""This computer as a shared database knows it: its name, and how long its claims hold.

Several laptops can work one PostgreSQL database (a tab room). Each claim on a message carries
the claiming process as ``machine:pid:token`` and a lease; the poller that won the election
records the machine that last checked. The name is the host name unless ``TABMAIL_MACHINE``
gives another (two laptops that share a host name, or a test playing a second machine).
``TABMAIL_LEASE_SECONDS`` shortens or lengthens the lease (default 60 s; tests use a few
seconds to see a vanished laptop's claims expire).
"""

from __future__ import annotations

import math
import os
import socket

from tabmail.domain.errors import TabmailError

MACHINE_ENV = "TABMAIL_MACHINE"
LEASE_ENV = "TABMAIL_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60.0
MIN_LEASE_SECONDS = 1.0
MAX_MACHINE_NAME = 64


def machine_name() -> str:
    """This computer's name in claims and in "last checked by …" (TABMAIL_MACHINE or the host
    name). Raises TabmailError for a TABMAIL_MACHINE that cannot be one."""
    given = os.environ.get(MACHINE_ENV, "")
    if not given:
        return socket.gethostname() or "localhost"
    bad = [c for c in given if c == ":" or not c.isprintable() or c.isspace()]
    if bad or len(given) > MAX_MACHINE_NAME:
        raise TabmailError(
            f"{MACHINE_ENV} must be a machine name of at most {MAX_MACHINE_NAME} printable "
            "characters without spaces or ':'"
        )
    return given


def lease_seconds() -> float:
    """How long a claim holds unless renewed (TABMAIL_LEASE_SECONDS, default 60). Raises
    TabmailError for a value that is not a number of seconds of at least 1."""
    text = os.environ.get(LEASE_ENV, "")
    if not text:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < MIN_LEASE_SECONDS:
        raise TabmailError(f"{LEASE_ENV} must be a number of seconds, at least 1, not {text[:20]!r}")
    return value
