"""The poller against the loopback SendGrid server: every source, every failure mode.

The server's clock is the poller's clock and the poller's sleep moves it on, so rate limits,
resets and backoff are honoured without any real waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tabmail.domain.events import AddressFlagsChanged, PollFinished, StatusesChanged
from tabmail.domain.notification import DeliveryStatus as S
from tabmail.domain.notification import FlagKind
from tabmail.providers.sendgrid import SendGridClient
from tabmail.services.context import AppContext
from tabmail.services.tracking import Poller, PollReport
from tabmail.status.requester import Backoff
from tabmail.status.sources import check_scopes
from tests.servers.sendgrid import (
    ALL_SCOPES,
    DEFAULT_KEY,
    FakeClock,
    bounced,
    deferred,
    delivered,
    dropped,
    late_bounce,
    opened,
)
from tests.status_support import ResetKeepingServer, send_through, small_tournament

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

START = 1772355600.0  # 2026-03-01 09:00 UTC
ANN, BEN, CAT, DAN, EVE, FAY = (f"{n}@example.org" for n in ("ann", "ben", "cat", "dan", "eve", "fay"))
ALL = [ANN, BEN, CAT, DAN, EVE, FAY]


class Harness:
    def __init__(self, ctx: AppContext, server: ResetKeepingServer, clock: FakeClock) -> None:
        self.ctx = ctx
        self.server = server
        self.url = server.url
        self.clock = clock
        self.sleeps: list[float] = []
        self.published: list[object] = []
        ctx.bus.subscribe(None, self.published.append)
        self.client = SendGridClient(server.url, DEFAULT_KEY, clock=clock)
        self.people = small_tournament(ctx, ALL)
        self.ids: dict[str, str] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def poller(self, **kw: Any) -> Poller:
        return Poller(
            self.ctx,
            client_factory=lambda: SendGridClient(self.url, DEFAULT_KEY, clock=self.clock),
            clock=self.now,
            sleep=self.sleep,
            **kw,
        )

    def send(
        self, addresses: list[str] = ALL, prefix: str = "m", spread: float = 0.0, per_request: int = 1
    ) -> int:
        batch, ids = send_through(
            self.ctx,
            self.client,
            addresses,
            self.now(),
            people=self.people,
            prefix=prefix,
            per_request=per_request,
            between=(lambda: self.clock.advance(spread)) if spread else None,
        )
        self.ids.update(ids)
        return batch

    def status(self, address: str) -> S:
        return self.ctx.notifications.get(self.ids[address]).delivery_status

    def poll(self, poller: Poller) -> PollReport:
        return asyncio.run(poller.poll_once())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def server(clock: FakeClock) -> Iterator[ResetKeepingServer]:
    with ResetKeepingServer(clock=clock) as s:
        s.script(BEN, bounced("bounce"))
        s.script(CAT, deferred(times=2, every=300))
        s.script(DAN, opened(after=120))
        s.script(EVE, bounced("blocked"))
        s.script(FAY, late_bounce(after=1800))
        yield s


@pytest.fixture
def h(ctx: AppContext, server: ResetKeepingServer, clock: FakeClock) -> Iterator[Harness]:
    ctx.settings.set("backend", "sendgrid")
    ctx.settings.set("sendgrid.base_url", server.url)
    ctx.secrets.set("sendgrid-api-key", DEFAULT_KEY)
    harness = Harness(ctx, server, clock)
    yield harness
    harness.client.close()


def test_activity_logs_and_suppressions(h: Harness) -> None:
    h.send()
    h.server.advance(3600)
    poller = h.poller()
    report = h.poll(poller)

    assert report.ok and report.online, report.summary()
    assert [o.source for o in report.outcomes] == ["activity", "logs", "suppressions"]
    assert h.status(ANN) is S.DELIVERED
    assert h.status(BEN) is S.BOUNCED
    assert h.status(CAT) is S.DELIVERED  # deferred twice, then delivered: delivered wins
    assert h.status(DAN) is S.OPENED
    assert h.status(EVE) is S.BLOCKED
    assert h.status(FAY) is S.BOUNCED  # a late bounce without sg_message_id, via the bounce list
    ben = h.ctx.notifications.get(h.ids[BEN])
    assert ben.status_reason and ben.status_reason.startswith("550 5.1.1")
    assert ben.sg_message_id and ben.sg_message_id.startswith(ben.provider_message_id or "?")
    flags = h.ctx.flags.active()
    assert {k: f.kind for k, f in flags.items()} == {BEN: FlagKind.HARD, FAY: FlagKind.HARD}
    assert all(f.source == "sendgrid" for f in flags.values())
    assert report.unmatched == 0
    # bus: statuses and flags changed, then the poll finished
    changed = [e for e in h.published if isinstance(e, StatusesChanged)]
    assert changed and set(changed[0].message_ids) == set(h.ids.values())
    assert [e.address_keys for e in h.published if isinstance(e, AddressFlagsChanged)] == [(BEN, FAY)]
    assert isinstance(h.published[-1], PollFinished) and h.published[-1].ok
    # requests: few, valid against the OpenAPI files, cursors saved
    # detection (scopes + one probe each) + at most 5 Activity/Logs requests for the poll itself
    assert report.requests["activity"] + report.requests["logs"] <= 2 + 5
    assert h.server.validation_errors == []
    assert h.ctx.settings.get_state("poll.sendgrid.activity")["until"]
    assert set(h.ctx.settings.get_state("poll.sendgrid.suppressions")) >= {"bounces", "blocks"}

    # polling again brings nothing new and changes nothing
    again = h.poll(poller)
    assert (again.inserted, again.changed_message_ids, again.flagged_keys) == (0, [], [])
    assert again.requests["activity"] == 1  # only the window since the last poll
    assert again.requests.get("other", 0) == 0  # capabilities are not asked again


def test_capabilities_are_detected_once_and_said_in_plain_words(h: Harness) -> None:
    h.server.scopes = set(ALL_SCOPES) - {"messages.read"}
    missing = asyncio.run(check_scopes(h.client))
    assert [scopes for feature, scopes in missing.items() if "Activity" in feature] == [["messages.read"]]
    h.send([ANN, BEN])
    h.server.advance(600)
    poller = h.poller()
    report = h.poll(poller)
    words = " ".join(report.capabilities)
    assert "Email Activity" in words and "not available" in words
    assert "lacks messages.read" in words
    assert "Email Logs (deferred, bounced, blocked, dropped with reasons): available." in words
    assert h.status(BEN) is S.BOUNCED  # from Email Logs and the bounce list
    h.poll(poller)
    h.poll(h.poller())  # a new poller (a new process) remembers too
    assert len(h.server.requests_to("/v3/scopes")) == 2  # the check above, and the poller's once
    assert [r.status for r in h.server.requests_to("/v3/messages")] == [400]  # asked once, then never


@pytest.mark.parametrize("mode", ["no_addon", "forbidden", "unauthorized"])
def test_no_activity_add_on_falls_back(h: Harness, mode: str) -> None:
    h.server.activity = mode
    h.server.logs_available = False
    h.send()
    h.server.advance(3600)
    report = h.poll(h.poller())
    assert report.ok, report.summary()
    # detected at setup (one probe), and then not asked during the poll
    assert [o.source for o in report.outcomes] == ["suppressions"]
    assert len(h.server.requests_to("/v3/messages")) == 1
    assert "not available" in " ".join(report.capabilities)
    # suppression lists still tell the bounces; delivery itself is unknown without the add-on
    assert h.status(BEN) is S.BOUNCED and h.status(FAY) is S.BOUNCED
    assert h.status(EVE) is S.BLOCKED
    assert h.status(ANN) is S.UNKNOWN
    assert h.server.validation_errors == []


@pytest.mark.parametrize("names", ["spec", "webhook"])
@pytest.mark.parametrize("duplicates", [False, True])
def test_old_and_new_event_names_and_duplicates(h: Harness, names: str, duplicates: bool) -> None:
    h.server.event_names = names
    h.server.duplicate_events = duplicates
    h.server.logs_available = False  # so the Activity detail is what tells bounces apart
    h.send([ANN, BEN, EVE])
    h.server.advance(600)
    poller = h.poller()
    report = h.poll(poller)
    assert report.ok, report.summary()
    assert (h.status(ANN), h.status(BEN), h.status(EVE)) == (S.DELIVERED, S.BOUNCED, S.BLOCKED)
    assert set(h.ctx.flags.active()) == {BEN}
    details = [r for r in h.server.requests_to("/v3/messages/")]
    assert len(details) == 2  # only the two not delivered
    timeline = h.ctx.tracking.timeline(h.ids[BEN])
    keys = [(e.event, e.event_time) for e in timeline if e.raw.get("event_name")]
    assert len(keys) == len(set(keys)) == 2  # processed + bounce, each once
    assert report.duplicates >= (2 if duplicates else 0)
    assert h.server.validation_errors == []


@pytest.mark.parametrize("lowercase", [False, True])
def test_429_waits_for_the_reset_then_goes_on(h: Harness, lowercase: bool) -> None:
    h.server.lowercase_ratelimit_headers = lowercase  # X-Ratelimit-* as in a real capture
    h.send([ANN, BEN])
    h.server.advance(600)
    poller = h.poller()
    asyncio.run(poller.detect())
    h.server.rate_limited_until("/v3/logs", 30)
    before = h.clock.now()
    report = h.poll(poller)
    assert report.ok, report.summary()
    assert any(29 <= s <= 32 for s in h.sleeps), h.sleeps
    assert [r.status for r in h.server.requests_to("/v3/logs")][-2:] == [429, 200]
    assert h.server.requests_to("/v3/logs")[-1].at >= before + 30  # asked again after the reset
    assert h.status(BEN) is S.BOUNCED


def test_remaining_zero_waits_for_the_reset_before_the_next_request(h: Harness) -> None:
    h.send([ANN])
    h.server.advance(600)
    poller = h.poller()
    asyncio.run(poller.detect())
    h.server.resets["/v3/suppression"] = int(h.clock.now()) + 20  # answers say: 0 left until then
    report = h.poll(poller)
    assert report.ok, report.summary()
    lists = h.server.requests_to("/v3/suppression")
    assert len(lists) == 5 and all(r.status == 200 for r in lists)
    assert any(19 <= s <= 21 for s in h.sleeps), h.sleeps
    assert lists[1].at >= lists[0].at + 19  # the second list waited for the reset


def test_details_are_budgeted_per_poll_and_the_rest_wait_in_the_cursor(h: Harness) -> None:
    h.server.logs_available = False
    drops = [f"d{i}@example.org" for i in range(5)]
    h.people.update(small_tournament(h.ctx, drops, slug="other"))
    for address in drops:
        h.server.script(address, dropped("Spam Content (if Spam Checker app is enabled)"))
    h.send(drops, prefix="d")
    h.server.advance(600)
    poller = h.poller()
    h.poll(poller)
    assert len(h.server.requests_to("/v3/messages/")) == 3
    assert len(h.ctx.settings.get_state("poll.sendgrid.activity")["pending_details"]) == 2
    assert sum(h.status(a) is S.DROPPED for a in drops) == 3
    h.server.advance(60)
    h.poll(poller)
    assert len(h.server.requests_to("/v3/messages/")) == 5
    assert all(h.status(a) is S.DROPPED for a in drops)
    assert h.ctx.flags.active() == {}  # dropped for its content: the addresses are fine
    assert h.ctx.settings.get_state("poll.sendgrid.activity")["pending_details"] == []


def test_500_backs_off_and_a_failing_source_does_not_stop_the_others(h: Harness) -> None:
    h.send([ANN, BEN])
    h.server.advance(600)
    poller = h.poller(backoff=Backoff(base=2, cap=60, attempts=3))
    asyncio.run(poller.detect())
    h.server.fail(500, times=2, path="/v3/suppression/bounces")
    h.server.fail(503, times=None, path="/v3/logs")
    report = h.poll(poller)
    assert not report.ok and report.online
    logs = next(o for o in report.outcomes if o.source == "logs")
    assert not logs.ok and "server error" in " ".join(logs.problems)
    assert "trouble with logs" in report.summary()
    assert h.sleeps.count(2.0) >= 2 and 4.0 in h.sleeps  # exponential backoff
    supp = next(o for o in report.outcomes if o.source == "suppressions")
    assert supp.ok  # the bounce list succeeded on the third try
    assert h.status(BEN) is S.BOUNCED
    assert h.status(ANN) is S.DELIVERED  # from Email Activity, before Logs failed


def test_malformed_json_is_logged_and_the_next_source_continues(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    h.send([ANN, BEN])
    h.server.advance(600)
    poller = h.poller()
    asyncio.run(poller.detect())
    h.server.fail_malformed(path="/v3/messages")
    report = h.poll(poller)
    activity = next(o for o in report.outcomes if o.source == "activity")
    assert not activity.ok and "not valid JSON" in " ".join(activity.problems)
    raw_logged = [r.getMessage() for r in caplog.records if "raw body" in r.getMessage()]
    assert raw_logged and '{"messages": [{"msg_id": <html>oops' in raw_logged[0]
    assert DEFAULT_KEY not in caplog.text
    assert h.status(BEN) is S.BOUNCED  # Email Logs and the suppression lists still ran
    # the Activity cursor did not move: the next poll reads that window again
    assert h.ctx.settings.get_state("poll.sendgrid.activity", {}).get("until") is None
    again = h.poll(poller)
    assert again.ok and h.status(ANN) is S.DELIVERED


def test_offline_is_a_state_not_an_error(h: Harness) -> None:
    h.send([ANN])
    poller = h.poller()
    h.server.stop()
    report = h.poll(poller)
    assert (report.online, report.ok) == (False, False)
    assert "could not be reached" in report.summary()
    finished = [e for e in h.published if isinstance(e, PollFinished)]
    assert finished and finished[-1].online is False


def test_window_shrinks_when_a_thousand_come_back_and_stays_within_six_a_minute(
    h: Harness, server: ResetKeepingServer
) -> None:
    server.default_timeline = delivered()
    many = [f"p{i}@example.org" for i in range(1100)]
    h.send(many, prefix="x", spread=30, per_request=100)  # 1,100 sends over five minutes
    server.advance(600)
    poller = h.poller()
    report = h.poll(poller)
    assert report.ok, report.summary()
    assert h.ctx.tracking.event_count() >= 1100
    lists = [r for r in server.requests_to("/v3/messages") if r.path == "/v3/messages"]
    assert 2 <= len(lists) <= 4  # probe + a full window + the older rest
    assert report.requests["logs"] <= 2
    for _ in range(4):
        h.poll(poller)
    assert poller.requester.per_minute_peak("activity") <= 6
    assert all(r.status != 429 for r in server.requests_to("/v3/messages"))
    assert server.validation_errors == []


def test_tracking_switches_itself_off_without_sendgrid(h: Harness) -> None:
    h.ctx.settings.set("backend", "smtp")
    h.ctx.settings.set("smtp.host", "mail.example.org")
    poller = h.poller()
    last = asyncio.run(poller.run_forever(interval=60))
    assert last is not None and not last.enabled
    assert "Delivery tracking is off" in last.summary() and "mail.example.org" in last.summary()
    assert h.sleeps == [] and h.server.requests == []
    # SendGrid's SMTP relay counts as SendGrid
    h.ctx.settings.set("smtp.host", "smtp.sendgrid.net")
    assert h.poll(poller).enabled


def test_a_rejected_key_is_said_plainly(h: Harness) -> None:
    poller = Poller(
        h.ctx,
        client_factory=lambda: SendGridClient(h.server.url, "SG.wrong.key", clock=h.clock),
        clock=h.now,
        sleep=h.sleep,
    )
    report = h.poll(poller)
    assert not report.ok
    assert "rejected the API key" in report.summary()
    assert "SG.wrong.key" not in report.summary()


def test_run_forever_polls_at_the_interval_until_stopped(h: Harness) -> None:
    h.send([ANN])
    poller = h.poller()
    reports: list[PollReport] = []

    def seen(report: PollReport) -> None:
        reports.append(report)
        h.server.advance(0)
        if len(reports) == 3:
            poller.stop()

    asyncio.run(poller.run_forever(interval=45, on_report=seen))
    assert len(reports) == 3
    assert h.sleeps.count(45) == 2
    assert h.status(ANN) is S.DELIVERED
