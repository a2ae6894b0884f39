"""A season's database for the dashboard benchmarks: 40 tournaments, 100,000 messages and
300,000 provider events, written with bulk inserts (a minute's work for the importer and the
outbox is not what these benchmarks measure).

Tournament "season-00" round 1 holds one 2,000-message batch: the round the benchmarks open.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from tabmail.store.db import Database
from tabmail.store.models import (
    BatchRow,
    MessageBodyRow,
    MessageRow,
    PersonRow,
    RoundRow,
    StatusEventRow,
    TournamentRow,
)

BIG_ROUND = 2000
RAW = (
    b"From: Season Tab Room <tab@example.org>\r\nTo: {name} <{addr}>\r\nSubject: Round 1 draw\r\n"
    b"Message-ID: <{mid}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + b"You are the chair in Room 12. The motion is released at 9:30.\r\n"
    * 8
)


@dataclass
class Season:
    path: Path
    tournaments: int
    messages: int
    events: int
    big_slug: str = "season-00"
    big_round: int = 1


def build_season(
    path: Path, tournaments: int = 40, messages: int = 100_000, events_per_message: int = 3, seed: int = 1
) -> Season:
    rng = random.Random(seed)
    db = Database(path)
    db.migrate()
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    rest = messages - BIG_ROUND
    rounds_per = 6
    small_batches = (tournaments - 1) * rounds_per * 2
    sizes = [rest // small_batches + (1 if i < rest % small_batches else 0) for i in range(small_batches)]
    per_tournament = rest // (tournaments - 1)
    n_msg = 0
    n_evt = 0
    with db.engine.begin() as conn:
        people_rows: list[dict[str, Any]] = []
        msg_rows: list[dict[str, Any]] = []
        body_rows: list[dict[str, Any]] = []
        evt_rows: list[dict[str, Any]] = []
        person_id = 0
        batch_id = 0
        round_id = 0
        for t in range(tournaments):
            slug = f"season-{t:02d}"
            conn.execute(
                insert(TournamentRow),
                [
                    {
                        "id": t + 1,
                        "slug": slug,
                        "name": f"Season Open {t:02d}",
                        "short_name": f"SO{t:02d}",
                        "source": "csv",
                        "settings": {},
                    }
                ],
            )
            size = BIG_ROUND if t == 0 else max(60, per_tournament // (rounds_per * 2))
            first_person = person_id + 1
            for p in range(size):
                person_id += 1
                people_rows.append(
                    {
                        "id": person_id,
                        "tournament_id": t + 1,
                        "key": f"p{p}",
                        "name": f"Person {t:02d}-{p:04d}",
                        "role": "adjudicator" if p % 4 == 0 else "speaker",
                        "email": f"p{t}.{p}@example.org",
                        "email_valid": True,
                        "email_key": f"p{t}.{p}@example.org",
                        "active": True,
                    }
                )
            rounds = 1 if t == 0 else rounds_per
            batches_per_round = 1 if t == 0 else 2
            for r in range(rounds):
                round_id += 1
                conn.execute(
                    insert(RoundRow),
                    [
                        {
                            "id": round_id,
                            "tournament_id": t + 1,
                            "seq": r + 1,
                            "name": f"Round {r + 1}",
                            "abbreviation": f"R{r + 1}",
                            "stage": "P",
                            "draw_status": "R",
                            "motions": [],
                        }
                    ],
                )
                for b in range(batches_per_round):
                    batch_id += 1
                    created = t0 + timedelta(days=7 * t, hours=r, minutes=b)
                    conn.execute(
                        insert(BatchRow),
                        [
                            {
                                "id": batch_id,
                                "tournament_id": t + 1,
                                "round_id": round_id,
                                "tournament_slug": slug,
                                "round_seq": r + 1,
                                "event": "draw" if b == 0 else "ballot",
                                "audience": "all",
                                "created_at": created,
                                "subject_template": "Round {{ ROUND }}",
                                "text_template": "Hello {{ USER }}",
                                "html_template": None,
                                "backend": "sendgrid",
                                "triggered_by": "bench",
                            }
                        ],
                    )
                    per_batch = BIG_ROUND if t == 0 else sizes.pop()
                    for k in range(per_batch):
                        n_msg += 1
                        pid = first_person + (k % size)
                        mid = f"M{n_msg:025d}"
                        addr = f"p{t}.{pid - first_person}@example.org"
                        roll = rng.random()
                        status = "bounced" if roll < 0.03 else "deferred" if roll < 0.05 else "delivered"
                        sent = created + timedelta(seconds=k % 300)
                        msg_rows.append(
                            {
                                "id": mid,
                                "batch_id": batch_id,
                                "person_id": pid,
                                "recipient_name": f"Person {t:02d}-{pid - first_person:04d}",
                                "role": "adjudicator" if (pid - first_person) % 4 == 0 else "speaker",
                                "address": addr,
                                "address_key": addr,
                                "envelope_from": "tab@example.org",
                                "envelope_to": addr,
                                "subject": f"Round {r + 1} draw",
                                "context": {},
                                "reasons": [],
                                "message_id_header": f"<{mid}@example.org>",
                                "provider_message_id": f"X{n_msg}",
                                "sg_message_id": f"X{n_msg}.filter",
                                "state": "sent",
                                "attempts": 1,
                                "created_at": created,
                                "sent_at": sent,
                                "delivery_status": status,
                                "status_at": sent,
                                "status_reason": "550 5.1.1 user unknown" if status == "bounced" else None,
                                "send_despite_flag": False,
                            }
                        )
                        body_rows.append({"message_id": mid, "raw": RAW.replace(b"{mid}", mid.encode())})
                        names = (
                            ("processed", "delivered", "open")
                            if status == "delivered"
                            else ("processed", "deferred", "bounce" if status == "bounced" else "delivered")
                        )
                        for e, name in enumerate(names[:events_per_message]):
                            n_evt += 1
                            evt_rows.append(
                                {
                                    "message_id": mid,
                                    "provider": "sendgrid",
                                    "provider_event_id": f"e{n_evt}",
                                    "event": name,
                                    "status": name if name != "bounce" else "bounced",
                                    "source": "activity",
                                    "event_time": sent + timedelta(seconds=30 * (e + 1)),
                                    "received_at": sent + timedelta(minutes=5),
                                    "address": addr,
                                    "address_key": addr,
                                    "reason": None,
                                    "raw": {"event": name},
                                }
                            )
                        if len(msg_rows) >= 5000:
                            _flush(conn, people_rows, msg_rows, body_rows, evt_rows)
        _flush(conn, people_rows, msg_rows, body_rows, evt_rows)
    db.dispose()
    return Season(path, tournaments, n_msg, n_evt)


def _flush(conn: Any, people: list[Any], msgs: list[Any], bodies: list[Any], evts: list[Any]) -> None:
    for model, rows in (
        (PersonRow, people),
        (MessageRow, msgs),
        (MessageBodyRow, bodies),
        (StatusEventRow, evts),
    ):
        if rows:
            conn.execute(insert(model.__table__), rows)
            rows.clear()


if __name__ == "__main__":
    import sys
    import time

    start = time.perf_counter()
    s = build_season(Path(sys.argv[1]))
    print(f"{s.messages} messages, {s.events} events in {time.perf_counter() - start:.1f} s -> {s.path}")
