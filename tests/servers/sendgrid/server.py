"""SendGridTestServer: a SendGrid-compatible HTTP server on 127.0.0.1 (reference §9).

Every request is checked against tests/data/sendgrid-openapi/ and against the documented rules the
spec cannot express (limits, unique addresses, reserved headers); what fails lands in
``validation_errors`` and is answered with SendGrid's own 400. Accepted mail becomes one
``Recipient`` per address with a scripted timeline on a controllable clock; the Activity API,
the Email Logs API and the suppression lists are views of those timelines.
"""

from __future__ import annotations

import http.server
import itertools
import json
import math
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tests.servers.sendgrid import spec
from tests.servers.sendgrid.query import QueryError, compile_activity, compile_logs
from tests.servers.sendgrid.timeline import (
    DROP_REASONS,
    FakeClock,
    Recipient,
    Step,
    Timeline,
    delivered,
    dropped,
    iso,
)
from tests.servers.web import LoopbackHTTPServer

DEFAULT_KEY = "SG.tabmail-test-key.0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
LISTS = ("bounces", "blocks", "invalid_emails", "spam_reports", "unsubscribes")
ALL_SCOPES = frozenset(
    {"mail.send", "messages.read", "suppression.read", "suppression.delete", "asm.suppressions.global.delete"}
    | {f"suppression.{name}.{verb}" for name in LISTS for verb in ("read", "delete")}
    | {"user.account.read"}
)
RESERVED_HEADERS = frozenset(
    {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type", "content-transfer-encoding"}
    | {"to", "from", "subject", "reply-to", "cc", "bcc"}
)
_EMAIL = re.compile(r"^[^@\s\"<>,;]+@[^@\s\"<>,;]+\.[^@\s\"<>,;]+$")
_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
_SENDER_MESSAGE = (
    "The from address does not match a verified Sender Identity. Mail cannot be sent until this error "
    "is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see "
    "the Sender Identity requirements"
)
_GRANT_INVALID = "The provided authorization grant is invalid, expired, or revoked"

Answer = tuple[int, bytes, dict[str, str]] | None  # None: close the connection without answering


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}


def error_body(message: str, field: str | None = None, help: str | None = None) -> bytes:
    return json.dumps({"errors": [{"message": message, "field": field, "help": help}]}).encode()


def _errors(status: int, *items: tuple[str, str | None]) -> Answer:
    return _json(status, {"errors": [{"message": m, "field": f, "help": None} for m, f in items]})


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    target: str  # the request line's target, as encoded by the client
    query: list[tuple[str, str]]
    headers: dict[str, str]  # Authorization redacted
    body: bytes
    at: float  # the server clock
    status: int | None = None  # None: dropped

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class SentRequest:
    """An accepted POST /v3/mail/send (sandbox ones too, with ``sandbox=True``)."""

    x_message_id: str | None
    body: dict[str, Any]
    sandbox: bool
    at: float

    @property
    def personalizations(self) -> list[dict[str, Any]]:
        return list(self.body["personalizations"])


@dataclass(slots=True)
class _Fault:
    status: int
    body: bytes
    headers: dict[str, str]
    path: str | None
    method: str | None
    remaining: int | None  # None: until cleared
    drop: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or path.startswith(self.path)) and self.method in (None, method)


@dataclass(slots=True)
class _Pending:
    due: float
    list_name: str
    record: dict[str, Any] = field(default_factory=dict)


class SendGridTestServer:
    """Start with ``with SendGridTestServer() as server:``; ``server.url`` is the base URL."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        scopes: Iterable[str] = ALL_SCOPES,
        clock: FakeClock | None = None,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.scopes = set(scopes)
        self.clock = clock or FakeClock()
        self.latency = latency  # seconds added to every request (benchmarks)
        self.verified_senders: set[str] | None = None  # None: every From is verified
        self.activity = "available"  # or "no_addon" (400), "forbidden" (403), "unauthorized" (401)
        self.activity_rate_limit: int | None = 6  # requests per minute on /v3/messages
        self.logs_available = True
        self.logs_unavailable_status = 403
        self.event_names = (
            "spec"  # Activity detail names: "spec" (bounced, opened) or "webhook" (bounce, open)
        )
        self.duplicate_events = False  # every event listed twice in details
        self.lowercase_ratelimit_headers = False  # X-Ratelimit-* as in a real capture
        self.default_timeline: Timeline = delivered()
        self.validation_errors: list[str] = []
        self.sent: list[SentRequest] = []
        self.requests: list[RecordedRequest] = []
        self.recipients: list[Recipient] = []
        self._scripts: dict[str, Timeline] = {}
        self._lists: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in LISTS}
        self._pending: list[_Pending] = []
        self._faults: list[_Fault] = []
        self._activity_calls: list[float] = []
        self._serial = itertools.count(1)
        self._lock = threading.RLock()
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SendGridTestServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="sendgrid-test", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SendGridTestServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------------

    def advance(self, seconds: float) -> float:
        """Move the server clock on; events and suppressions due by then become visible."""
        return self.clock.advance(seconds)

    def script(self, email: str, timeline: Timeline) -> None:
        """What happens to every later message to this address (default: ``default_timeline``)."""
        with self._lock:
            self._scripts[email.lower()] = timeline

    def add_suppression(
        self, list_name: str, email: str, *, created: float | None = None, **fields: Any
    ) -> None:
        record = _suppression_record(
            list_name, email, self.clock.now() if created is None else created, fields
        )
        with self._lock:
            self._lists[list_name][email.lower()] = record

    def suppressions(self, list_name: str) -> list[dict[str, Any]]:
        with self._lock:
            self._materialize()
            return sorted(self._lists[list_name].values(), key=lambda r: (-r["created"], r["email"]))

    def fail(
        self,
        status: int,
        *,
        times: int | None = 1,
        path: str | None = None,
        method: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests (None: all, until cleared) with this."""
        default = {
            401: _GRANT_INVALID,
            403: "access forbidden",
            413: "content too large",
            429: "too many requests",
            500: "internal server error",
        }
        payload = error_body(default.get(status, "Bad Request")) if body is None else body
        with self._lock:
            self._faults.append(
                _Fault(
                    status,
                    payload,
                    {"Content-Type": "application/json", **(headers or {})},
                    path,
                    method,
                    times,
                )
            )

    def fail_rate_limited(
        self, *, reset_in: float = 30.0, times: int | None = 1, path: str | None = None
    ) -> None:
        reset = math.ceil(self.clock.now() + reset_in)
        headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
        self.fail(429, times=times, path=path, headers=headers)

    def fail_unverified_sender(self, *, status: int = 403, times: int | None = 1) -> None:
        self.fail(status, times=times, path="/v3/mail/send", body=error_body(_SENDER_MESSAGE, "from"))

    def fail_malformed(self, *, status: int = 200, times: int | None = 1, path: str | None = None) -> None:
        self.fail(status, times=times, path=path, body=b'{"messages": [{"msg_id": <html>oops')

    def drop_connection(self, *, times: int | None = 1, path: str | None = None) -> None:
        """Read the whole request, then close the connection without a word."""
        with self._lock:
            self._faults.append(_Fault(0, b"", {}, path, None, times, drop=True))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- looking at what happened ----------------------------------------------------------------

    def recipient(self, tabmail_id: str) -> Recipient:
        with self._lock:
            return next(r for r in self.recipients if r.custom_args.get("tabmail_id") == tabmail_id)

    def events(self) -> list[dict[str, Any]]:
        """Every visible event in webhook shape (custom args merged), oldest first."""
        now = self.clock.now()
        with self._lock:
            found = [
                r.webhook_event(i, s, nested_args=False) for r in self.recipients for i, s in r.steps(now)
            ]
        return sorted(found, key=lambda e: e["timestamp"])

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path) and method in (None, r.method)]

    # -- request handling ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        if self.latency:
            time.sleep(self.latency)  # simulated network latency, not a wait for a condition
        parts = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(parts.path)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        shown = {k: ("Bearer [redacted]" if k.lower() == "authorization" else v) for k, v in headers.items()}
        record = RecordedRequest(method, path, target, query, shown, body, self.clock.now())
        problems = spec.request_errors(method, parts.path, query, headers, body)
        with self._lock:
            self.requests.append(record)
            self.validation_errors.extend(f"{method} {path}: {p}" for p in problems)
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None and fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
        if fault is not None:
            answer: Answer = None if fault.drop else (fault.status, fault.body, dict(fault.headers))
        else:
            answer = self._route(method, path, dict(query), headers, body)
        if answer is not None:
            record.status = answer[0]
            present = {name.lower() for name in answer[2]}
            for name, value in self._rate_headers(path).items():
                if name.lower() not in present:  # a scripted fault's own headers win
                    answer[2][name] = value
        return answer

    def _rate_headers(self, path: str) -> dict[str, str]:
        now = self.clock.now()
        if path.startswith("/v3/messages") and self.activity_rate_limit:
            used = [t for t in self._activity_calls if t > now - 60]
            limit, remaining = self.activity_rate_limit, max(0, self.activity_rate_limit - len(used))
            reset = math.ceil((used[0] if used else now) + 60)
        else:
            limit, remaining, reset = 10000, 9999, math.ceil(now + 1)
        prefix = "X-Ratelimit-" if self.lowercase_ratelimit_headers else "X-RateLimit-"
        return {
            prefix + "Limit": str(limit),
            prefix + "Remaining": str(remaining),
            prefix + "Reset": str(reset),
        }

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if not auth:
            return _errors(401, ("authorization required", None))
        if auth != f"Bearer {self.api_key}":
            return _errors(401, (_GRANT_INVALID, None))
        segments = path.strip("/").split("/")
        with self._lock:
            self._materialize()
            if path == "/v3/mail/send" and method == "POST":
                return self._mail_send(headers, body)
            if segments[:2] == ["v3", "messages"] and method == "GET":
                return self._activity(segments[2] if len(segments) > 2 else None, query)
            if segments[:2] == ["v3", "logs"]:
                return self._logs(method, segments[2] if len(segments) > 2 else None, body)
            if path == "/v3/scopes" and method == "GET":
                return _json(200, {"scopes": sorted(self.scopes)})
            if path == "/v3/user/account" and method == "GET":
                return _json(200, {"type": "paid", "reputation": 99.7})
            if segments[:2] == ["v3", "suppression"] and len(segments) in (3, 4) and segments[2] in LISTS:
                return self._suppression(
                    method, segments[2], segments[3] if len(segments) == 4 else None, query, body
                )
            if segments[:4] == ["v3", "asm", "suppressions", "global"] and len(segments) == 5:
                return self._global_unsubscribe(method, segments[4])
        return _errors(404, ("not found", None))

    def _has_scope(self, *names: str) -> bool:
        return bool(self.scopes & set(names))

    # -- mail send -------------------------------------------------------------------------------

    def _mail_send(self, headers: dict[str, str], raw: bytes) -> Answer:
        if not self._has_scope("mail.send"):
            return _errors(403, ("access forbidden", None))
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            self.validation_errors.append(f"POST /v3/mail/send: Content-Type {content_type!r} is not JSON")
            return _errors(415, ("Content-Type should be application/json", None))
        try:
            body = json.loads(raw)
        except ValueError:
            self.validation_errors.append("POST /v3/mail/send: the body is not JSON")
            return _errors(400, ("Bad Request", None))
        if not isinstance(body, dict):
            return _errors(400, ("Bad Request", None))
        problems = mail_problems(body, self.clock.now())
        if problems:
            self.validation_errors.extend(f"POST /v3/mail/send: {f or '(body)'}: {m}" for m, f in problems)
            return _json(400, {"errors": [{"message": m, "field": f, "help": _HELP} for m, f in problems]})
        senders = {body["from"]["email"]} | {
            p["from"]["email"] for p in body["personalizations"] if "from" in p
        }
        if self.verified_senders is not None and not senders <= self.verified_senders:
            return _json(403, {"errors": [{"message": _SENDER_MESSAGE, "field": "from", "help": None}]})
        if body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable") is True:
            self.sent.append(SentRequest(None, body, True, self.clock.now()))
            return 200, b"", {}
        x_message_id = secrets.token_urlsafe(16)
        self.sent.append(SentRequest(x_message_id, body, False, self.clock.now()))
        self._accept(x_message_id, body)
        return 202, b"", {"X-Message-Id": x_message_id}

    def _accept(self, x_message_id: str, body: dict[str, Any]) -> None:
        now = self.clock.now()
        serial = next(self._serial)
        for p_index, personalization in enumerate(body["personalizations"]):
            args = {**body.get("custom_args", {}), **personalization.get("custom_args", {})}
            addresses = [a["email"] for kind in ("to", "cc", "bcc") for a in personalization.get(kind, [])]
            for a_index, email in enumerate(addresses):
                timeline = self._timeline_for(email)
                recipient = Recipient(
                    msg_id=f"{x_message_id}.recvd-7f6d9c8b5-tm{serial:04x}-1-{int(now):X}-{p_index:X}.{a_index}",
                    x_message_id=x_message_id,
                    email=email,
                    from_email=personalization.get("from", body["from"])["email"],
                    subject=personalization.get("subject", body.get("subject", "")),
                    custom_args=dict(args),
                    categories=list(body.get("categories", [])),
                    sent_at=now,
                    timeline=timeline,
                    smtp_id=f"<{x_message_id}@ismtpd0001p1.sendgrid.net>",
                )
                self.recipients.append(recipient)
                for step in timeline:
                    if step.suppress:
                        fields = dict(step.fields) | {"ip": "203.0.113.50"}
                        record = _suppression_record(step.suppress, email, now + step.after, fields)
                        self._pending.append(_Pending(now + step.after, step.suppress, record))

    def _timeline_for(self, email: str) -> Timeline:
        for list_name, reason in DROP_REASONS.items():
            if email.lower() in self._lists[list_name]:
                return dropped(reason)  # SendGrid drops mail to a suppressed address
        return self._scripts.get(email.lower(), self.default_timeline)

    def _materialize(self) -> None:
        now = self.clock.now()
        due = sorted((p for p in self._pending if p.due <= now), key=lambda p: p.due)
        for pending in due:
            self._lists[pending.list_name][pending.record["email"].lower()] = pending.record
            self._pending.remove(pending)

    # -- Email Activity --------------------------------------------------------------------------

    def _activity(self, msg_id: str | None, query: dict[str, str]) -> Answer:
        if self.activity == "no_addon" or not self._has_scope("messages.read"):
            return _json(400, {"errors": [{"message": "authorization required"}]})
        if self.activity == "forbidden":
            return _errors(403, ("access forbidden", None))
        if self.activity == "unauthorized":
            return _errors(401, ("authorization required", None))
        now = self.clock.now()
        if self.activity_rate_limit:
            self._activity_calls = [t for t in self._activity_calls if t > now - 60]
            if len(self._activity_calls) >= self.activity_rate_limit:
                return _json(429, {"errors": [{"message": "too many requests"}]})
            self._activity_calls.append(now)
        if msg_id is not None:
            found = next((r for r in self.recipients if r.msg_id == msg_id and r.attached(now)), None)
            if found is None:
                return _errors(404, ("not found", "message_id"))
            return _json(
                200, found.activity_detail(now, vocabulary=self.event_names, duplicates=self.duplicate_events)
            )
        try:
            limit = int(float(query.get("limit", "10")))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return _json(400, {"errors": [{"message": "limit must be between 1 and 1000", "field": "limit"}]})
        try:
            predicate = compile_activity(query["query"]) if query.get("query", "").strip() else None
        except QueryError as exc:
            return _json(400, {"errors": [{"message": str(exc), "field": "query"}]})
        rows = []
        for recipient in self.recipients:
            last = recipient.last_event_time(now)
            if last is None:
                continue
            summary = recipient.activity_summary(now)
            row = {
                **summary,
                "last_event_time": last,
                "unique_args": recipient.custom_args,
                "categories": recipient.categories,
                "events": sorted({s.event for _, s in recipient.attached(now)}),
            }
            if predicate is None or predicate(row):
                rows.append((last, summary))
        rows.sort(key=lambda pair: -pair[0])
        return _json(200, {"messages": [summary for _, summary in rows[:limit]]})

    # -- Email Logs ------------------------------------------------------------------------------

    def _logs(self, method: str, sg_message_id: str | None, raw: bytes) -> Answer:
        if not self.logs_available:
            return _errors(self.logs_unavailable_status, ("access forbidden", None))
        now = self.clock.now()
        if sg_message_id is not None and method == "GET":
            found = next((r for r in self.recipients if r.msg_id == sg_message_id and r.attached(now)), None)
            if found is None:
                return _errors(404, ("not found", "sg_message_id"))
            return _json(200, found.logs_detail(now, duplicates=self.duplicate_events))
        if sg_message_id is not None or method != "POST":
            return _errors(405, ("method not allowed", None))
        try:
            request = json.loads(raw or b"{}")
            limit = int(request.get("limit", 10))
            predicate = compile_logs(request["query"]) if str(request.get("query", "")).strip() else None
        except QueryError as exc:
            return _errors(400, (str(exc), "query"))
        except (ValueError, TypeError, AttributeError):
            return _errors(400, ("invalid request body", None))
        if not 1 <= limit <= 1000:
            return _errors(400, ("limit must be between 1 and 1000", "limit"))
        rows = []
        for recipient in self.recipients:
            if not recipient.attached(now):
                continue
            summary = recipient.logs_summary(now)
            row = {
                **summary,
                "sg_message_id_created_at": recipient.sent_at,
                "categories": recipient.categories,
            }
            if predicate is None or predicate(row):
                rows.append((recipient.sent_at, summary))
        rows.sort(key=lambda pair: -pair[0])
        return _json(200, {"messages": [summary for _, summary in rows[:limit]]})

    # -- suppression lists -----------------------------------------------------------------------

    def _suppression(
        self, method: str, list_name: str, email: str | None, query: dict[str, str], raw: bytes
    ) -> Answer:
        verb = "delete" if method == "DELETE" else "read"
        if not self._has_scope(f"suppression.{list_name}.{verb}", f"suppression.{verb}"):
            return _errors(403, ("access forbidden", None))
        entries = self._lists[list_name]
        if email is not None:
            if method == "GET":
                found = entries.get(email.lower())
                return _json(200, [found] if found else [])
            if method == "DELETE" and list_name != "unsubscribes":
                entries.pop(email.lower(), None)
                return 204, b"", {}
            return _errors(405, ("method not allowed", None))
        if method == "DELETE" and list_name != "unsubscribes":
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                return _errors(400, ("Bad Request", None))
            if bool(request.get("delete_all")) == bool(request.get("emails")):
                return _errors(400, ("provide either delete_all or emails, not both", None))
            if request.get("delete_all"):
                entries.clear()
            for address in request.get("emails") or []:
                entries.pop(str(address).lower(), None)
            return 204, b"", {}
        if method != "GET":
            return _errors(405, ("method not allowed", None))
        try:
            start = int(query.get("start_time", "0"))
            end = int(query.get("end_time", str(2**62)))
            limit = int(query.get("limit", "500"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            return _errors(400, ("Bad Request", None))
        if not 1 <= limit <= 500 or offset < 0:
            return _errors(400, ("limit must be between 1 and 500 and offset at least 0", None))
        pattern = query.get("email")
        matcher = None
        if pattern:
            matcher = re.compile("".join(".*" if c == "%" else re.escape(c) for c in pattern.lower()) + ".*")
        items = [
            r
            for r in sorted(entries.values(), key=lambda r: (-r["created"], r["email"]))
            if start <= r["created"] <= end and (matcher is None or matcher.match(r["email"].lower()))
        ]
        return _json(200, items[offset : offset + limit])

    def _global_unsubscribe(self, method: str, email: str) -> Answer:
        verb = "delete" if method == "DELETE" else "read"
        if not self._has_scope(f"asm.suppressions.global.{verb}", f"suppression.{verb}"):
            return _errors(403, ("access forbidden", None))
        entries = self._lists["unsubscribes"]
        if method == "GET":
            return _json(200, {"recipient_email": email} if email.lower() in entries else {})
        if method == "DELETE":
            entries.pop(email.lower(), None)
            return 204, b"", {}
        return _errors(405, ("method not allowed", None))


def _suppression_record(list_name: str, email: str, created: float, fields: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"created": int(created), "email": email}
    if list_name in ("bounces", "blocks"):
        record["reason"] = str(fields.get("reason", "550 5.1.1 The email account does not exist"))
        record["status"] = str(fields.get("status", "5.1.1" if list_name == "bounces" else "4.0.0"))
    elif list_name == "invalid_emails":
        record["reason"] = str(fields.get("reason", "Mail domain mentioned in email address is unknown"))
    elif list_name == "spam_reports":
        record["ip"] = str(fields.get("ip", "203.0.113.50"))
    elif list_name != "unsubscribes":
        raise ValueError(f"no suppression list {list_name!r}; lists: {', '.join(LISTS)}")
    return record


def mail_problems(body: dict[str, Any], now: float) -> list[tuple[str, str | None]]:
    """The documented mail-send rules beyond the OpenAPI schema, in SendGrid's words."""
    problems: list[tuple[str, str | None]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return [
            (
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
            )
        ]
    if len(personalizations) > 1000:
        problems.append(("The personalizations field may not have more than 1000 items.", "personalizations"))
    sender = body.get("from")
    if not isinstance(sender, dict) or not _EMAIL.match(str(sender.get("email", ""))):
        problems.append(("The from object must be provided for every email send.", "from.email"))
    total = 0
    top_args = body.get("custom_args", {})
    for i, p in enumerate(personalizations):
        if not isinstance(p, dict):
            problems.append(("Bad Request", f"personalizations.{i}"))
            continue
        seen: set[str] = set()
        if not p.get("to"):
            problems.append(
                ("The to array is required for all personalization objects.", f"personalizations.{i}.to")
            )
        for kind in ("to", "cc", "bcc"):
            for j, address in enumerate(p.get(kind) or []):
                email = str(address.get("email", "")) if isinstance(address, dict) else ""
                total += 1
                if not _EMAIL.match(email):
                    problems.append(
                        ("Does not contain a valid address.", f"personalizations.{i}.{kind}.{j}.email")
                    )
                elif email.lower() in seen:
                    problems.append(
                        (
                            "Each email address in the personalization block should be unique between to, cc, "
                            f"and bcc. We found the first duplicate instance of [{email}] in the "
                            f"personalizations.{i}.{kind} field.",
                            f"personalizations.{i}.{kind}",
                        )
                    )
                seen.add(email.lower())
                name = address.get("name", "") if isinstance(address, dict) else ""
                if isinstance(name, str) and (";" in name or "," in name):
                    problems.append(
                        ("The name may not contain ; or ,", f"personalizations.{i}.{kind}.{j}.name")
                    )
        args = {**(top_args if isinstance(top_args, dict) else {}), **(p.get("custom_args") or {})}
        if any(not isinstance(v, str) for v in args.values()):
            problems.append(("Bad Request", None))
        elif len(json.dumps(args).encode()) >= 10000:
            problems.append(
                ("The custom_args may not exceed 10,000 bytes.", f"personalizations.{i}.custom_args")
            )
        substitutions = p.get("substitutions") or {}
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in substitutions.items())
        if size > 10000:
            problems.append(
                (
                    "The total size of substitutions may not exceed 10,000 bytes per personalization object.",
                    f"personalizations.{i}.substitutions",
                )
            )
        for name in p.get("headers") or {}:
            if name.lower() in RESERVED_HEADERS:
                problems.append((f"The header {name} is reserved.", f"personalizations.{i}.headers"))
        send_at = p.get("send_at", body.get("send_at"))
        if isinstance(send_at, int) and send_at > now + 72 * 3600:
            problems.append(("send_at may not be more than 72 hours in the future.", "send_at"))
    for name in body.get("headers") or {}:
        if name.lower() in RESERVED_HEADERS:
            problems.append((f"The header {name} is reserved.", "headers"))
    if total > 1000:
        problems.append(("The total number of recipients must be no more than 1000.", "personalizations"))
    every_subject = all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    if not body.get("subject") and not every_subject and not body.get("template_id"):
        problems.append(
            (
                "The subject is required. You can get around this requirement if you use a template with a "
                "subject defined or if every personalization has a subject defined.",
                "subject",
            )
        )
    content = body.get("content")
    if not body.get("template_id"):
        if not isinstance(content, list) or not content:
            problems.append(
                ("Unless a valid template_id is provided, the content parameter is required.", "content")
            )
        else:
            types = [c.get("type") for c in content if isinstance(c, dict)]
            if (
                "text/plain" in types
                and "text/html" in types
                and types.index("text/html") < types.index("text/plain")
            ):
                problems.append(
                    ("If present, text/plain content must be first, followed by text/html.", "content")
                )
    return problems


class _Handler(http.server.BaseHTTPRequestHandler):
    owner: SendGridTestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read server.requests instead

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            answer = self.owner.handle(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # a bug in the test server: say so loudly, as a 500
            self.owner.validation_errors.append(f"test server crashed on {self.command} {self.path}: {exc!r}")
            answer = _json(500, {"errors": [{"message": "test server error"}]})
        if answer is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status, payload, headers = answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve


__all__ = [
    "ALL_SCOPES",
    "DEFAULT_KEY",
    "LISTS",
    "RecordedRequest",
    "SendGridTestServer",
    "SentRequest",
    "Step",
    "error_body",
    "iso",
    "mail_problems",
]
