"""Address normalisation shared by import, sending and status matching."""

from __future__ import annotations


def address_key(address: str | None) -> str | None:
    """The de-duplication key of an address: trimmed and lower-cased (domain and local part).

    Lower-casing the local part is technically lossy, but no real provider distinguishes
    case there, and two people must never get one message through a case difference.
    """
    if address is None:
        return None
    key = address.strip().lower()
    return key or None


def validate_address(address: str | None) -> tuple[bool, str | None, str | None]:
    """(valid, normalised address, problem). Syntax only: no DNS, no network.

    The normalised form keeps the local part as given and lower-cases the domain (IDNA).
    """
    from email_validator import EmailNotValidError, validate_email

    if address is None or not address.strip():
        return False, None, "no address"
    text = address.strip()
    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return False, None, str(exc)
    return True, info.normalized, None
