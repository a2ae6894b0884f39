"""Laptop A of bench_live: makes one change per command read from stdin and prints the
wall-clock time of its commit. ``python -m tests.bench.live_writer URL TOURNAMENT_ID ROUNDS``.

Commands: ``address PERSON_ID NEW`` (a corrected address), ``draw SEQ`` (queue that round's
draw as one batch; prints the message count too), ``quit``.
"""

from __future__ import annotations

import sys
import time

from tabmail.domain.notification import Audience, Event
from tabmail.services import notify
from tabmail.services.context import AppContext


def main(argv: list[str]) -> int:
    url, tournament_id = argv[0], int(argv[1])
    ctx = AppContext.open(url)
    try:
        slug = ctx.tournaments.get_by_id(tournament_id).slug
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            if words[0] == "address":
                ctx.tournaments.set_person_email(int(words[1]), words[2], source="bench")
                print(f"address {time.time():.6f}", flush=True)
            elif words[0] == "draw":
                plan = notify.plan(ctx, slug, Event.DRAW, round_seq=int(words[1]), audience=Audience.ALL)
                queued = notify.enqueue(ctx, plan)
                print(f"draw {time.time():.6f} {queued.queued}", flush=True)
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
