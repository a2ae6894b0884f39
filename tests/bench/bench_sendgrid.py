"""SendGrid Web API backend: 2,000 messages against the loopback server adding 100 ms per request.

Target (issue 3): at most 20 requests when the bodies fit SendGrid's substitution limit.
Run: `python -m tests.bench sendgrid`.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Sequence

from tabmail.backends.base import Outcome, OutgoingMessage, SendResult
from tabmail.backends.sendgrid import SendGridBackend, SendGridConfig
from tests.servers.sendgrid import DEFAULT_KEY, SendGridTestServer
from tests.servers.sendgrid.messages import outgoing

COUNT = 2000
LATENCY = 0.100
TARGET_REQUESTS = 20


class CountingHooks:
    def __init__(self) -> None:
        self.results: dict[str, SendResult] = {}

    async def handing_over(self, ids: Sequence[str]) -> Sequence[bool]:
        return [True] * len(ids)

    async def finished(self, result: SendResult) -> None:
        self.results[result.message_id] = result


def draw_message(index: int, *, big: bool = False) -> OutgoingMessage:
    """A draw release about the size tabmail sends (about 1 KB of text, 2 KB of HTML)."""
    panel = "\n".join(f"  Panellist {n}: Adjudicator {index * 3 + n} (Institution {n})" for n in range(3))
    rows = 400 if big else 8
    teams = "\n".join(
        f"  {side}: Team {index}-{side}" for side in ("OG", "OO", "CG", "CO")[: 4 if rows else 0]
    )
    extra = "\n".join(f"  Room {n}: debate {n}, see the motion sheet" for n in range(rows))
    text = (
        f"Dear Speaker {index},\n\nThe draw for Round 3 is out.\nVenue: Room {index % 120}\n"
        f"Your side: OG\nTeams:\n{teams}\nPanel:\n{panel}\nRooms:\n{extra}\n\n"
        "You are receiving this because: you are a speaker on a team in this round.\n"
    )
    html = "<html><body>" + "".join(f"<p>{line}</p>" for line in text.splitlines() if line) + "</body></html>"
    return outgoing(index, name=f"Speaker {index}", text=text, html=html)


def run_case(messages: list[OutgoingMessage], concurrency: int) -> tuple[int, float, int, int, int]:
    with SendGridTestServer(latency=LATENCY) as server:
        backend = SendGridBackend(SendGridConfig(server.url, DEFAULT_KEY, concurrency=concurrency))
        hooks = CountingHooks()

        async def go() -> None:
            try:
                await backend.send(messages, hooks)
            finally:
                await backend.close()

        started = time.perf_counter()
        asyncio.run(go())
        elapsed = time.perf_counter() - started
        sent = sum(1 for r in hooks.results.values() if r.outcome is Outcome.SENT)
        return (
            len(server.requests_to("/v3/mail/send")),
            elapsed,
            sent,
            len(server.validation_errors),
            len(server.recipients),
        )


def _peak_mb() -> float:
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def main() -> str:
    started = time.perf_counter()
    small = [draw_message(i) for i in range(COUNT)]
    built = time.perf_counter() - started
    # 5% too big to travel as substitutions: each goes in a request of its own
    mixed = [draw_message(i, big=True) if i % 20 == 0 else m for i, m in enumerate(small)]
    before = _peak_mb()
    rows = []
    for label, messages, concurrency in (
        ("2,000 draw messages, all fit", small, 4),
        ("2,000 draw messages, all fit, 1 request at a time", small, 1),
        ("2,000 with 5% too big (one request each)", mixed, 4),
    ):
        requests_made, elapsed, sent, invalid, recipients = run_case(messages, concurrency)
        rows.append((label, requests_made, elapsed, sent, recipients, invalid))
    after = _peak_mb()

    width = max(len(r[0]) for r in rows)
    lines = [
        f"SendGrid Web API backend, loopback server adding {LATENCY * 1000:.0f} ms per request",
        f"{'case':<{width}}  requests  wall (s)  sent  at server  spec errors",
    ]
    for label, requests_made, elapsed, sent, recipients, invalid in rows:
        lines.append(
            f"{label:<{width}}  {requests_made:>8}  {elapsed:>8.2f}  {sent:>4}  {recipients:>9}  {invalid:>11}"
        )
    best = rows[0][1]
    verdict = "PASS" if best <= TARGET_REQUESTS else "FAIL"
    lines += [
        f"target: <= {TARGET_REQUESTS} requests for 2,000 fitting messages: {best} ({verdict})",
        f"one request per message would be {COUNT} requests, >= {COUNT * LATENCY:.0f} s one at a time",
        f"building the {COUNT} EmailMessage fixtures (not part of the send): {built:.2f} s",
        f"peak RSS: {before:.0f} MB with the fixtures built, {after:.0f} MB after the sends "
        "(client and test server in one process)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
