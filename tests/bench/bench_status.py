"""Delivery tracking: ingest speed, the requests a poll costs, and memory.

- ingest: 20,000 provider events for 5,000 messages into SQLite, matched by every method
  (tabmail_id, X-Message-Id prefix, address + time), with statuses derived and flags added;
  target under 2 s. Ingesting the same events again (all duplicates) is timed too.
- poll: a 2,000-message batch sent to the loopback SendGrid server (500 personalizations per
  request, as the backend groups them), 2 % bouncing, 2 % deferred, some opened; then polls at
  the configured minute interval on the server's clock. Targets: at most 5 Activity + Logs
  requests per poll cycle, never more than 6 a minute on /v3/messages (capability detection,
  once per day, is counted apart).
- memory: peak RSS (ru_maxrss) of each child process; target under 200 MB. The poll child
  also runs the test server (in threads), so its figure includes the server.
Each part runs in a child process so memory and imports are its own.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MESSAGES = 5000
EVENTS_PER_MESSAGE = 4
BATCH = 2000
POLLS = 6


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _context(tmp: Path) -> Any:
    from tabmail.services.context import AppContext
    from tests.keyrings import MemoryKeyring

    return AppContext.open(tmp / "bench.sqlite3", keyring_backend=MemoryKeyring())


def child_ingest() -> dict[str, Any]:
    from sqlalchemy import update

    from tabmail.domain.notification import DeliveryStatus as S
    from tabmail.domain.notification import Event, FlagKind, Templates
    from tabmail.status.events import ProviderEvent, derive_status, stable_event_id
    from tabmail.store.models import MessageRow
    from tabmail.store.notifications import NewBatch, NewMessage
    from tests.status_support import small_tournament

    ctx = _context(Path(tempfile.mkdtemp()))
    small_tournament(ctx, ["someone@example.org"])
    tournament = ctx.tournaments.get("mini")
    t0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
    ids = [f"m{i:05d}" for i in range(MESSAGES)]
    ctx.notifications.create_batch(
        NewBatch(tournament.id, None, Event.CUSTOM, None, Templates("s", "t"), "sendgrid", "bench"),
        [
            NewMessage(
                id=mid,
                person_id=None,
                recipient_name=f"Recipient {mid}",
                role="adjudicator",
                address=f"{mid}@example.org",
                address_key=f"{mid}@example.org",
                envelope_from="tab@example.org",
                envelope_to=f"{mid}@example.org",
                subject="Draw",
                context={"USER": mid},
                reasons=("you judge",),
                raw=b"Subject: Draw\r\n\r\nHello\r\n",
                message_id_header=f"<{mid}@example.org>",
            )
            for mid in ids
        ],
    )
    with ctx.db.session() as s:  # as the outbox leaves them: sent, with the request's X-Message-Id
        s.execute(
            update(MessageRow).values(state="sent", sent_at=t0, provider_message_id="X" + MessageRow.id)
        )

    def at(minutes: int) -> datetime:
        return t0 + timedelta(minutes=minutes)

    events: list[ProviderEvent] = []
    for i, mid in enumerate(ids):
        sg, x, addr = f"X{mid}.recvd-bench-{i}.0", f"X{mid}", f"{mid}@example.org"
        events.append(
            ProviderEvent(
                stable_event_id(mid, 1), "processed", S.PROCESSED, at(0), tabmail_id=mid, address=addr
            )
        )
        events.append(
            ProviderEvent(
                stable_event_id(mid, 2), "deferred", S.DEFERRED, at(1), sg_message_id=sg, x_message_id=x,
                address=addr, reason="421 4.7.0 try later", raw={"event": "deferred", "attempt": "1"},
            )
        )  # fmt: skip
        if i % 50 == 0:  # a bounce only the suppression list tells: address + time
            events.append(
                ProviderEvent(
                    stable_event_id(mid, 3), "suppression:bounces", S.BOUNCED, at(3), address=addr,
                    reason="550 5.1.1 user unknown", flag=FlagKind.HARD, raw={"email": addr},
                )
            )  # fmt: skip
        else:
            events.append(
                ProviderEvent(
                    stable_event_id(mid, 3), "delivered", S.DELIVERED, at(3), tabmail_id=mid, sg_message_id=sg,
                    address=addr, reason="250 OK", raw={"event": "delivered"},
                )
            )  # fmt: skip
        events.append(
            ProviderEvent(
                stable_event_id(mid, 4),
                "open",
                S.OPENED,
                at(9),
                sg_message_id=sg,
                x_message_id=x,
                address=addr,
            )
        )
    start = time.perf_counter()
    first = ctx.tracking.ingest(events, derive=derive_status)
    ingest_s = time.perf_counter() - start
    start = time.perf_counter()
    again = ctx.tracking.ingest(events, derive=derive_status)
    again_s = time.perf_counter() - start
    ctx.close()
    return {
        "events": len(events),
        "messages": MESSAGES,
        "ingest_s": ingest_s,
        "inserted": first.inserted,
        "matched": first.matched,
        "matched_by": first.matched_by,
        "changed": len(first.changed_message_ids),
        "flagged": len(first.flagged_keys),
        "again_s": again_s,
        "again_inserted": again.inserted,
        "rss_mb": _rss_mb(),
    }


def child_poll() -> dict[str, Any]:
    from tabmail.providers.sendgrid import SendGridClient
    from tabmail.services.tracking import Poller
    from tests.servers.sendgrid import DEFAULT_KEY, FakeClock, SendGridTestServer, bounced, deferred, opened
    from tests.status_support import send_through, small_tournament

    clock = FakeClock(1772355600)
    ctx = _context(Path(tempfile.mkdtemp()))
    addresses = [f"p{i:04d}@example.org" for i in range(BATCH)]
    people = small_tournament(ctx, addresses, slug="mini")

    def now() -> datetime:
        return datetime.fromtimestamp(clock.now(), UTC)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    with SendGridTestServer(clock=clock) as server:
        for i, address in enumerate(addresses):
            if i % 50 == 0:
                server.script(address, bounced("bounce"))
            elif i % 50 == 1:
                server.script(address, deferred(times=2, every=120))
            elif i % 10 == 2:
                server.script(address, opened(after=90))
        ctx.settings.set("backend", "sendgrid")
        ctx.settings.set("sendgrid.base_url", server.url)
        ctx.secrets.set("sendgrid-api-key", DEFAULT_KEY)
        client = SendGridClient(server.url, DEFAULT_KEY, clock=clock)
        send_through(
            ctx, client, addresses, now(), people=people, per_request=500, between=lambda: clock.advance(20)
        )
        client.close()
        poller = Poller(ctx, clock=now, sleep=sleep)
        asyncio.run(poller.detect())
        detection = dict(poller.requester.counts)
        cycles = []
        for _ in range(POLLS):
            clock.advance(60)
            before = dict(poller.requester.counts)
            started = time.perf_counter()
            report = asyncio.run(poller.poll_once())
            took = time.perf_counter() - started
            after = poller.requester.counts
            cycles.append(
                {
                    "activity": after["activity"] - before.get("activity", 0),
                    "logs": after["logs"] - before.get("logs", 0),
                    "suppressions": after["suppressions"] - before.get("suppressions", 0),
                    "events": report.inserted,
                    "ok": report.ok,
                    "seconds": took,
                }
            )
        statuses: dict[str, int] = {}
        for m in ctx.notifications.messages():
            statuses[m.delivery_status.value] = statuses.get(m.delivery_status.value, 0) + 1
        result = {
            "detection": detection,
            "cycles": cycles,
            "peak_per_minute": poller.requester.per_minute_peak("activity"),
            "server_429": sum(1 for r in server.requests_to("/v3/messages") if r.status == 429),
            "validation_errors": len(server.validation_errors),
            "statuses": statuses,
            "flags": len(ctx.flags.active()),
            "rss_mb": _rss_mb(),
        }
        poller.close()
    ctx.close()
    return result


def _child(part: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_status", part],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    last: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return last


def main() -> str:
    ingest = _child("ingest")
    poll = _child("poll")
    first = poll["cycles"][0]
    worst = max(c["activity"] + c["logs"] for c in poll["cycles"])
    lines = [
        "delivery tracking benchmark",
        "",
        f"{'measure':<58} {'result':>14} {'target':>10}",
        f"{'-' * 58} {'-' * 14} {'-' * 10}",
        f"{'ingest 20,000 events / 5,000 messages (SQLite)':<58} {ingest['ingest_s']:>13.2f}s {'< 2 s':>10}",
        f"{'  matched (tabmail_id / X-Message-Id / address+time)':<58} "
        f"{'/'.join(str(ingest['matched_by'].get(k, 0)) for k in ('tabmail_id', 'x_message_id', 'address_time')):>14}",
        f"{'  statuses changed, addresses flagged':<58} {str(ingest['changed']) + ', ' + str(ingest['flagged']):>14}",
        f"{'ingest the same 20,000 again (all duplicates)':<58} {ingest['again_s']:>13.2f}s",
        f"{'peak RSS, ingest process':<58} {ingest['rss_mb']:>12.0f}MB {'< 200 MB':>10}",
        f"{'poll a 2,000-message batch: Activity+Logs requests, 1st cycle':<58} "
        f"{first['activity'] + first['logs']:>14} {'<= 5':>10}",
        f"{'  worst cycle of ' + str(POLLS) + ' (one a minute), Activity+Logs requests':<58} {worst:>14} {'<= 5':>10}",
        f"{'  /v3/messages requests in any 60 s (detection included)':<58} {poll['peak_per_minute']:>14} {'<= 6':>10}",
        f"{'  429 answers from /v3/messages':<58} {poll['server_429']:>14} {'0':>10}",
        f"{'  capability detection (once a day): requests':<58} {json.dumps(poll['detection']):>14}",
        f"{'  first cycle wall time':<58} {first['seconds']:>13.2f}s",
        f"{'  statuses after the polls':<58} {json.dumps(poll['statuses'], sort_keys=True)}",
        f"{'  addresses flagged':<58} {poll['flags']:>14}",
        f"{'  requests failing spec validation':<58} {poll['validation_errors']:>14} {'0':>10}",
        f"{'peak RSS, poll process (includes the test server)':<58} {poll['rss_mb']:>12.0f}MB {'< 200 MB':>10}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("ingest", "poll"):
        outcome = child_ingest() if sys.argv[1] == "ingest" else child_poll()
        print(json.dumps(outcome))
    else:
        print(main())
