"""A SendGrid-compatible test server on loopback: mail send, Email Activity, Email Logs,
suppression lists and scopes, checked against tests/data/sendgrid-openapi/ (reference §9).

Modules: ``server`` (the HTTP server, faults, modes), ``timeline`` (scripted per-recipient
events on a controllable clock), ``query`` (the query-language subsets), ``spec`` (OpenAPI checks).
"""

from tests.servers.sendgrid.server import (
    ALL_SCOPES,
    DEFAULT_KEY,
    LISTS,
    RecordedRequest,
    SendGridTestServer,
    SentRequest,
    error_body,
)
from tests.servers.sendgrid.timeline import (
    FakeClock,
    Recipient,
    Step,
    Timeline,
    bounced,
    deferred,
    delivered,
    dropped,
    invalid_address,
    iso,
    late_bounce,
    opened,
    spam_report,
    unsubscribed,
)

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_KEY",
    "LISTS",
    "FakeClock",
    "Recipient",
    "RecordedRequest",
    "SendGridTestServer",
    "SentRequest",
    "Step",
    "Timeline",
    "bounced",
    "deferred",
    "delivered",
    "dropped",
    "error_body",
    "invalid_address",
    "iso",
    "late_bounce",
    "opened",
    "spam_report",
    "unsubscribed",
]
