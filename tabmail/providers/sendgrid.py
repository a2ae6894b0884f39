"""A small synchronous client for SendGrid's v3 Web API, shared by backends/ and status/.

It does the plumbing every caller needs and nothing else: Bearer auth, JSON in and out, the
X-RateLimit-* headers, and SendGrid's error bodies turned into one plain sentence. Callers run it
through ``asyncio.to_thread``. The API key never appears in a message, an exception or a repr.
"""

from __future__ import annotations

import json as jsonlib
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import NewConnectionError

from tabmail import __version__
from tabmail.domain.errors import TabmailError

_SENDER_IDENTITY = (
    "the From address is not a verified Sender Identity in SendGrid: "
    "verify it under Settings > Sender Authentication"
)
_KEY_SHAPE = re.compile(r"SG\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
_EXCERPT_CHARS = 120


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The X-RateLimit-* headers of one response; None where a header was absent or garbled."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # unix epoch seconds

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        lowered = {k.lower(): v for k, v in headers.items()}

        def number(name: str) -> float | None:
            try:
                value = float(lowered[name].strip())
            except (KeyError, ValueError):
                return None
            return value if math.isfinite(value) else None

        limit, remaining = number("x-ratelimit-limit"), number("x-ratelimit-remaining")
        return cls(
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset=number("x-ratelimit-reset"),
        )

    def seconds_until_reset(self, now: float) -> float | None:
        return None if self.reset is None else max(0.0, self.reset - now)


@dataclass(frozen=True, slots=True)
class ErrorItem:
    """One entry of SendGrid's ``{"errors": [...]}`` body."""

    message: str
    field: str | None = None
    help: str | None = None


@dataclass(frozen=True, slots=True)
class SendGridResponse:
    """A 2xx answer. ``headers`` is case-insensitive."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    rate_limit: RateLimit

    def json(self) -> Any:
        """The body as JSON; raises SendGridError (with a short excerpt) when it is not JSON."""
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            raise SendGridError(
                f"SendGrid sent an answer that is not valid JSON (HTTP {self.status}): "
                f"{_excerpt(self.body)!r}",
                status=self.status,
                response=self,
            ) from None

    @property
    def message_id(self) -> str | None:
        """X-Message-Id: SendGrid's id for an accepted mail-send request."""
        return self.headers.get("X-Message-Id") or None


class SendGridError(TabmailError):
    """SendGrid refused or failed a request; ``str(error)`` is one plain, secret-free sentence."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        errors: tuple[ErrorItem, ...] = (),
        response: SendGridResponse | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.errors = errors
        self.response = response

    @property
    def authorization_required(self) -> bool:
        """The 'authorization required' answer SendGrid gives for a missing add-on or scope."""
        return any("authorization required" in e.message.lower() for e in self.errors)


class SendGridConnectionError(SendGridError):
    """No HTTP answer. ``request_sent`` is False only when the request certainly never left
    (no connection could be made): then nothing can have been accepted."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


# What each feature of tabmail needs from the key: (scope named when missing, alternatives that
# also grant it). SendGrid has umbrella scopes (suppression.read) besides the per-list ones.
_LISTS = ("bounces", "blocks", "invalid_emails", "spam_reports", "unsubscribes")
FEATURE_SCOPES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "sending mail": (("mail.send", ()),),
    "Email Activity (delivery statuses; also needs SendGrid's paid add-on)": (("messages.read", ()),),
    "suppression lists (bounces, blocks, invalid, spam reports, unsubscribes)": tuple(
        (f"suppression.{name}.read", ("suppression.read",)) for name in _LISTS
    ),
    "removing an address from a suppression list before a resend": (
        *((f"suppression.{name}.delete", ("suppression.delete",)) for name in _LISTS[:4]),
        ("asm.suppressions.global.delete", ()),
    ),
}


def missing_scopes(scopes: Iterable[str]) -> dict[str, list[str]]:
    """Per feature, the scopes the key lacks (features it fully has are left out)."""
    have = set(scopes)
    missing: dict[str, list[str]] = {}
    for feature, needs in FEATURE_SCOPES.items():
        lacking = [name for name, alternatives in needs if name not in have and not have & set(alternatives)]
        if lacking:
            missing[feature] = lacking
    return missing


def scope_for(method: str, path: str) -> str | None:
    """The scope a request needs, for naming it when SendGrid answers 403 'access forbidden'."""
    method = method.upper()
    if path.startswith("/v3/mail/send"):
        return "mail.send"
    if path.startswith("/v3/messages"):
        return "messages.read"
    match = re.match(r"/v3/suppression/(\w+)", path)
    if match:
        return f"suppression.{match.group(1)}.{'delete' if method == 'DELETE' else 'read'}"
    if path.startswith("/v3/asm/suppressions/global"):
        return f"asm.suppressions.global.{'delete' if method == 'DELETE' else 'read'}"
    return None


class SendGridClient:
    """Blocking; one instance may be shared by a few threads (requests' pool is thread-safe)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = api_key.strip()
        if not key:
            raise SendGridError(
                "No SendGrid API key is set: add one with `tabmail secret set sendgrid-api-key`"
            )
        # A key with a line break or a non-ASCII character would make requests raise an error
        # that quotes the whole Authorization header; refuse it here in words of our own.
        if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
            raise SendGridError(
                "The SendGrid API key contains characters no API key has (spaces, line breaks or "
                "non-ASCII letters): paste it again with `tabmail secret set sendgrid-api-key`"
            )
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.host = urllib.parse.urlsplit(self.base_url).netloc or self.base_url
        self.timeout = timeout
        self._own_session = session is None
        self._session = session or requests.Session()
        self._clock = clock
        self.last_rate_limit: RateLimit | None = None

    def __repr__(self) -> str:
        return f"SendGridClient({self.base_url!r})"

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> SendGridResponse:
        """One API call. Returns the 2xx answer; raises SendGridError for any other status
        (with ``status``, ``errors``, ``retry_after``) and SendGridConnectionError when no
        answer came. Query values are encoded with %20 for spaces, as SendGrid documents."""
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        headers = {
            "Authorization": f"Bearer {self._key}",
            "Accept": "application/json",
            "User-Agent": f"tabmail/{__version__}",
        }
        data: bytes | None = None
        if json is not None:
            headers["Content-Type"] = "application/json"
            data = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            raw = self._session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=(min(self.timeout, 15.0), self.timeout),
                allow_redirects=False,
            )
            body = raw.content
        except requests.RequestException as exc:
            raise self._connection_error(exc) from None
        answer = SendGridResponse(
            status=raw.status_code,
            headers=CaseInsensitiveDict(raw.headers),
            body=body,
            rate_limit=RateLimit.from_headers(raw.headers),
        )
        self.last_rate_limit = answer.rate_limit
        if 200 <= answer.status < 300:
            return answer
        raise self._status_error(method, path, answer)

    def get_scopes(self) -> set[str]:
        """The scopes of this key (GET /v3/scopes)."""
        answer = self.request("GET", "/v3/scopes")
        data = answer.json()
        scopes = data.get("scopes") if isinstance(data, dict) else None
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise SendGridError(
                f"SendGrid's list of key permissions had an unexpected shape: {_excerpt(answer.body)!r}",
                status=answer.status,
                response=answer,
            )
        return set(scopes)

    # -- errors in plain words ---------------------------------------------------------------

    def _connection_error(self, exc: requests.RequestException) -> SendGridConnectionError:
        reason = self._scrub(_root_reason(exc))
        if _never_sent(exc):
            return SendGridConnectionError(
                f"Could not connect to SendGrid at {self.host} ({reason}); nothing was sent",
                request_sent=False,
            )
        if isinstance(exc, requests.Timeout):
            what = f"no answer within {self.timeout:g} s"
        else:
            what = f"the connection broke: {reason}"
        return SendGridConnectionError(
            f"SendGrid at {self.host} did not answer after the request was sent ({what}); "
            "it may or may not have been accepted",
            request_sent=True,
        )

    def _status_error(self, method: str, path: str, answer: SendGridResponse) -> SendGridError:
        status = answer.status
        items, garbled = _parse_errors(answer.body)
        said = "; ".join(self._scrub(_describe_item(i)) for i in items) if items else ""
        if garbled:
            said = f"the answer was not SendGrid's usual error: {self._scrub(_excerpt(answer.body))!r}"
        elif not said:
            said = "no explanation given"
        retry_after: float | None = None
        if status == 429 or answer.rate_limit.remaining == 0:
            retry_after = answer.rate_limit.seconds_until_reset(self._clock())
        if retry_after is None and status in (429, 503):
            retry_after = _retry_after_header(answer.headers)
        everything = " ".join(i.message.lower() for i in items)

        if "sender identity" in everything:
            text = f"SendGrid refused to send: {_SENDER_IDENTITY} (HTTP {status})"
        elif status == 401:
            text = (
                f"SendGrid rejected the API key (HTTP 401: {said}); "
                "set a valid key with `tabmail secret set sendgrid-api-key`"
            )
        elif status == 403 and "access forbidden" in everything:
            scope = scope_for(method, path)
            needs = f"the '{scope}' permission" if scope else "a permission this request needs"
            text = f"SendGrid refused the request: the API key lacks {needs} (HTTP 403: {said})"
        elif status == 400 and "authorization required" in everything:
            text = (
                f"SendGrid refused {path} (HTTP 400: {said}): the account or the key does not "
                "have this feature"
            )
        elif status == 400:
            text = f"SendGrid rejected the request (HTTP 400): {said}"
        elif status == 413:
            text = (
                f"SendGrid refused the request as too large (HTTP 413: {said}); a message must be under 30 MB"
            )
        elif status == 429:
            when = f"; it resets in {math.ceil(retry_after)} s" if retry_after is not None else ""
            text = f"SendGrid's rate limit was reached (HTTP 429: {said}){when}"
        elif status >= 500:
            text = f"SendGrid had a server error (HTTP {status}: {said}); try again later"
        else:
            text = f"SendGrid answered HTTP {status} to {method.upper()} {path}: {said}"
        return SendGridError(text, status=status, retry_after=retry_after, errors=items, response=answer)

    def _scrub(self, text: str) -> str:
        return _KEY_SHAPE.sub("SG.[hidden]", text.replace(self._key, "[API key]"))


def _parse_errors(body: bytes) -> tuple[tuple[ErrorItem, ...], bool]:
    """SendGrid's error items and whether the body was garbled (not the usual JSON shape)."""
    if not body.strip():
        return (), False
    try:
        data = jsonlib.loads(body)
    except ValueError:
        return (), True
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return (), True
    items = []
    for entry in errors:
        if not isinstance(entry, dict):
            continue
        message, fld, hlp = entry.get("message"), entry.get("field"), entry.get("help")
        items.append(
            ErrorItem(
                message=str(message) if message is not None else "",
                field=str(fld) if fld not in (None, "null", "") else None,
                help=str(hlp) if isinstance(hlp, str) and hlp not in ("", "null") else None,
            )
        )
    return tuple(items), not items


def _describe_item(item: ErrorItem) -> str:
    message = item.message.strip() or "no explanation given"
    if len(message) > 240:
        message = message[:237].rstrip() + "..."
    return f"{item.field}: {message}" if item.field else message


def _excerpt(body: bytes) -> str:
    text = body[: _EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 3] + "..."


def _retry_after_header(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return seen


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(
        exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError
    ):
        return True
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return True
    return any(isinstance(e, NewConnectionError) for e in _chain(exc))


def _root_reason(exc: requests.RequestException) -> str:
    for link in reversed(_chain(exc)):
        if isinstance(link, OSError) and link.strerror:
            return link.strerror.lower()
    names = [type(e).__name__ for e in _chain(exc)]
    for name in ("RemoteDisconnected", "ConnectionResetError", "BrokenPipeError", "IncompleteRead"):
        if name in names:
            return {
                "RemoteDisconnected": "closed without an answer",
                "ConnectionResetError": "connection reset",
                "BrokenPipeError": "connection closed while sending",
                "IncompleteRead": "the answer was cut off",
            }[name]
    return type(exc).__name__


__all__ = [
    "FEATURE_SCOPES",
    "ErrorItem",
    "RateLimit",
    "SendGridClient",
    "SendGridConnectionError",
    "SendGridError",
    "SendGridResponse",
    "missing_scopes",
    "scope_for",
]
