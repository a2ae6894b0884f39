"""tabmail secret set|delete NAME — values come from standard input and are never echoed."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

from tabmail.domain.errors import TabmailError
from tabmail.domain.secret_names import SECRET_NAMES

if TYPE_CHECKING:
    from tabmail.store.secrets import SecretStore


def register(sub: Any) -> None:
    p = sub.add_parser("secret", help="store or delete a secret in the OS keyring")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    names = ", ".join(SECRET_NAMES)
    s = ssub.add_parser("set", help=f"store a secret read from standard input ({names})")
    s.add_argument("name", metavar="NAME", choices=sorted(SECRET_NAMES))
    s.set_defaults(handler=_set)
    d = ssub.add_parser("delete", help="remove a secret from the keyring")
    d.add_argument("name", metavar="NAME", choices=sorted(SECRET_NAMES))
    d.set_defaults(handler=_delete)
    st = ssub.add_parser("status", help="say where each secret comes from (never its value)")
    st.set_defaults(handler=_status)


def _store() -> SecretStore:
    from tabmail.store.secrets import SecretStore  # keyring is imported by these commands only

    return SecretStore()


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value = getpass.getpass(f"{name}: ")
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise TabmailError(f"no value given for {name} on standard input")
    return value


def _set(args: argparse.Namespace) -> int:
    store = _store()
    if not store.available:  # before reading: nothing is taken that cannot be kept
        raise TabmailError(store.refusal(args.name))
    store.set(args.name, _read_value(args.name))  # reads it back: "stored" is never claimed falsely
    print(f"stored {args.name} in the OS keyring")
    return 0


def _delete(args: argparse.Namespace) -> int:
    store = _store()
    if store.delete(args.name):
        print(f"deleted {args.name} from the OS keyring")
    else:
        print(f"{args.name} was not stored")
    return 0


def _status(args: argparse.Namespace) -> int:
    store = _store()
    if store.unavailable_reason:
        print(store.unavailable_reason)
    for name in SECRET_NAMES:
        print(f"{name:<18} {store.source_of(name)}")
    return 0
