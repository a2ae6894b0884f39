"""Address normalisation shared by import, sending and status matching.

What is accepted (docs/addresses.md): every address whose syntax is valid and whose domain some
mail server could deliver to. Special-use and private domains (``.test``, ``.local``,
``.internal``, ``.example``, ``home.arpa``, ``.lan``...) are accepted, because institutions run
mail on them internally, and marked as unusual (``unusual_domain``) wherever addresses are shown.
Refused: syntax errors, a domain without a dot (``jane@gmail``: no public server delivers there,
and it is the usual typo), ``.invalid`` (guaranteed never to exist, RFC 6761), ``localhost``
(always the sending machine itself), IP-address literals. Syntax only: no DNS, no network.
"""

from __future__ import annotations

from typing import Any

# Accepted but unusual: only a mail server inside the right network can deliver to them.
# IANA's special-use names (RFC 6761, 6762, 7686, 8375) and the names commonly used for
# private networks (RFC 6762 appendix G, ICANN's reserved .internal).
_PRIVATE_SUFFIXES: dict[str, str] = {
    "test": "a special-use test domain (.test)",
    "example": "a special-use documentation domain (.example)",
    "local": "a local-network (mDNS) domain (.local)",
    "internal": "a private-network domain (.internal)",
    "arpa": "an infrastructure domain (.arpa)",
    "home.arpa": "a home-network domain (home.arpa)",
    "onion": "a Tor onion domain (.onion)",
    "lan": "a private-network domain (.lan)",
    "home": "a private-network domain (.home)",
    "corp": "a private-network domain (.corp)",
    "intranet": "a private-network domain (.intranet)",
    "private": "a private-network domain (.private)",
}
# What email-validator still refuses as special-use (everything else in its list is accepted).
_REFUSED_SPECIAL_USE = ["invalid", "localhost"]


def address_key(address: str | None) -> str | None:
    """The de-duplication key of an address: trimmed and lower-cased (domain and local part).

    Lower-casing the local part is technically lossy, but no real provider distinguishes
    case there, and two people must never get one message through a case difference.
    """
    if address is None:
        return None
    key = address.strip().lower()
    return key or None


def _validator() -> Any:
    import email_validator

    # email-validator's documented, module-level setting (its API): the special-use names it
    # refuses. By default every one of them; tabmail refuses only those no server delivers to.
    if email_validator.SPECIAL_USE_DOMAIN_NAMES != _REFUSED_SPECIAL_USE:
        email_validator.SPECIAL_USE_DOMAIN_NAMES = list(_REFUSED_SPECIAL_USE)
    return email_validator


def validate_address(address: str | None) -> tuple[bool, str | None, str | None]:
    """(valid, normalised address, problem). Syntax only: no DNS, no network.

    The normalised form keeps the local part as given and lower-cases the domain (IDNA).
    """
    ev = _validator()
    if address is None or not address.strip():
        return False, None, "no address"
    text = address.strip()
    try:
        info = ev.validate_email(text, check_deliverability=False)
    except ev.EmailNotValidError as exc:
        return False, None, str(exc)
    return True, info.normalized, None


def unusual_domain(address: str | None) -> str | None:
    """Why an (accepted) address's domain is unusual, or None: a special-use or private
    domain only a mail server inside that network can deliver to."""
    if not address or "@" not in address:
        return None
    domain = address.strip().rsplit("@", 1)[1].rstrip(".").lower()
    labels = domain.split(".")
    for n in (2, 1):
        suffix = ".".join(labels[-n:])
        if len(labels) > n - 1 and suffix in _PRIVATE_SUFFIXES:
            return f"{_PRIVATE_SUFFIXES[suffix]}: only a mail server inside that network can deliver it"
    return None
