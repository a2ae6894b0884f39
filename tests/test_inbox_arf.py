"""Real-world spam (feedback-loop) reports through the inbox classifier: Sisimai's ARF samples
(tests/data/sisimai-arf, provenance in tests/data/PROVENANCE.md). Each names the recipient that
complained (or is kept without flagging anyone) and the original message it reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tabmail.services.inbox_matching import bounce_events
from tabmail.status.inbound import InboundKind, classify
from tests.datafiles import data_path

WHEN = datetime(2026, 3, 1, tzinfo=UTC)

# sample -> (recipients and their action, the original's Message-ID, feedback type)
SAMPLES = {
    # Terra through Return Path's FBL: the original's To is hidden, no Original-Rcpt-To; the
    # recipient is found from the returned Message-ID when it is ours (test_inbox_arf_e2e.py)
    "arf-03.eml": ((), "<f6fbba8a761ce682e1b00a323a21b372@example.net>", "abuse"),
    # abusix spam trap: two Original-Rcpt-To fields, both complained
    "arf-05.eml": (
        (("fake.rcpt@example.com", "complained"), ("fake.rcpt2@example.net", "complained")),
        "<8A025E63-47F5-CDA0-78D2-C0E5A944FB10@example.net>",
        "abuse",
    ),
    # ARF 0.1: the original's Message-ID has no angle brackets
    "arf-11.eml": ((), "<ffffffffffffffffffffffffff0000000000@example.net>", "abuse"),
    "arf-15.eml": ((), "<ffffffffffffffffffffffff00000000@example.net>", "abuse"),
    # a DMARC failure report (RFC 6591): kept, but the recipient complained of nothing
    "arf-19.eml": (
        (("kijitora@example.org", "reported"),),
        "<000000000.2222222.0000000000002@example.net>",
        "auth-failure",
    ),
    # Microsoft JMRP: multipart/mixed with X-HmXmrOriginalRecipient, no feedback-report part
    "arf-23.eml": (
        (("kijitora@example.com", "complained"),),
        "<0000000000fffffffff0000000000000@example.com>",
        "abuse",
    ),
}


def test_every_sample_is_listed() -> None:
    assert sorted(p.name for p in data_path("sisimai-arf").glob("*.eml")) == sorted(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_real_feedback_report_names_its_recipient_and_original(name: str) -> None:
    recipients, original, feedback_type = SAMPLES[name]
    got = classify(data_path("sisimai-arf", name).read_bytes())
    assert got.kind is InboundKind.FEEDBACK
    assert tuple((r.address, r.action) for r in got.recipients) == recipients
    assert got.original_message_id == original
    assert got.detail["feedback_type"] == feedback_type
    if not recipients:
        assert any("naming no recipient" in p for p in got.problems)  # said, and kept


def test_only_complaints_become_spam_reports() -> None:
    for name, (recipients, _original, _type) in SAMPLES.items():
        events = bounce_events(classify(data_path("sisimai-arf", name).read_bytes()), WHEN)
        complained = [a for a, action in recipients if action == "complained"]
        assert [e.address for e in events] == complained, name
        assert all(e.status.value == "spam_report" and e.flag is not None for e in events)
