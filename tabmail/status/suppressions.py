"""Is one address on a SendGrid suppression list, and taking it off (before a resend).

SendGrid drops every message to an address on the bounce, invalid, spam-report or global
unsubscribe list ("Bounced Address", "Invalid", ...). Blocks do not suppress, so they are not
checked. Raises Offline, Unavailable or CallFailed (tabmail.status.requester).
"""

from __future__ import annotations

import urllib.parse

from tabmail.status.requester import CallFailed, Requester

# list -> (path of the single-address GET and DELETE)
SUPPRESSING: dict[str, str] = {
    "bounces": "/v3/suppression/bounces/{email}",
    "invalid_emails": "/v3/suppression/invalid_emails/{email}",
    "spam_reports": "/v3/suppression/spam_reports/{email}",
    "unsubscribes": "/v3/asm/suppressions/global/{email}",
}
LIST_WORDS = {
    "bounces": "bounce list",
    "invalid_emails": "invalid-address list",
    "spam_reports": "spam-report list",
    "unsubscribes": "global unsubscribe list",
}


def _path(list_name: str, address: str) -> str:
    return SUPPRESSING[list_name].format(email=urllib.parse.quote(address.strip(), safe="@"))


async def lists_holding(requester: Requester, address: str) -> list[str]:
    """The suppression lists that hold this address (in SUPPRESSING's order)."""
    found = []
    for list_name in SUPPRESSING:
        try:
            answer = await requester.call("GET", _path(list_name, address))
        except CallFailed as exc:
            if exc.status == 404:
                continue
            raise
        if not answer.body.strip():
            continue
        data = answer.json()
        if list_name == "unsubscribes":
            listed = isinstance(data, dict) and bool(data.get("recipient_email"))
        else:
            listed = isinstance(data, list) and len(data) > 0
        if listed:
            found.append(list_name)
    return found


async def remove_from(requester: Requester, address: str, lists: list[str]) -> list[str]:
    """DELETE the address from each list; returns the lists it was removed from."""
    removed = []
    for list_name in lists:
        try:
            await requester.call("DELETE", _path(list_name, address))
        except CallFailed as exc:
            if exc.status != 404:
                raise
        removed.append(list_name)
    return removed
