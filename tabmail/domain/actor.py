"""Who did something, and on which machine: recorded with each batch, resend, address
correction and setting change, so a tab room sharing one database can tell its laptops apart."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

USER_NAME_SETTING = "user.name"


@dataclass(frozen=True, slots=True)
class Actor:
    who: str
    machine: str

    def words(self) -> str:
        """``"alice on tabroom-2"``; either part may be unknown (older records)."""
        return describe(self.who, self.machine)


def describe(who: str | None, machine: str | None) -> str:
    if who and machine:
        return f"{who} on {machine}"
    return who or (f"someone on {machine}" if machine else "")


def login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (some containers)
        return ""


def this_machine() -> str:
    """The host name, or TABMAIL_MACHINE when set: the same name a tab room's claims and "last
    checked by" use (services/machine.py, which also refuses a name that cannot be one)."""
    return os.environ.get("TABMAIL_MACHINE", "") or socket.gethostname()


def local_actor(user_name: str | None = None) -> Actor:
    """The ``user.name`` setting when set, else the login name; the host name."""
    return Actor((user_name or "").strip() or login_name(), this_machine())


class AddressChange(NamedTuple):
    """One change of a person's address: when, from what to what, through what (import,
    director, resend, tabbycat), and who made it on which machine (None: before that was kept)."""

    when: datetime
    old: str | None
    new: str | None
    source: str
    by: str | None = None
    machine: str | None = None

    def who_words(self) -> str:
        return describe(self.by, self.machine)
