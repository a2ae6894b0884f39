"""The whole send path: compose + enqueue into SQLite, then the outbox through the SMTP backend.

- compose and enqueue: a generated 400-team BP round (draw to everyone, ~1,150 recipients) and a
  2,000-recipient custom message. Target: 2,000 under 2 s.
- SMTP, the full outbox (claims and results committed per message) against the loopback server
  in its own process: (a) 20 ms before each end-of-DATA reply, vs one smtplib connection sending
  sequentially (Tabbycat's way), target >= 5x faster; (b) no added latency, vs a bare smtplib loop
  over the same number of connections sending the same stored bytes, target <= 1.5x the time.
- Peak memory (ru_maxrss) of the process that composes, enqueues and sends the 2,000: < 250 MB.
Each measured run happens in a child process so memory and imports are its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabmail.backends.base import OutgoingMessage
from tabmail.domain.imported import (
    DebateData,
    ImportBundle,
    InstitutionData,
    PersonData,
    RoundData,
    TeamData,
    TournamentData,
    VenueData,
)
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.domain.tournament import Position, Role
from tests.bench.bench_smtp import CONNECTIONS, server_process, with_smtplib

REPO = Path(__file__).resolve().parents[2]
COUNT = 2000


def bp_round(teams: int = 400, adjudicators: int = 350) -> ImportBundle:
    b = ImportBundle(TournamentData("bench-bp", "Bench BP Open", "Bench"))
    b.institutions = [InstitutionData(f"i{i}", f"University {i}") for i in range(60)]
    b.venues = [VenueData(f"v{i}", f"Room {i}") for i in range(teams // 4)]
    b.teams = [TeamData(f"t{i}", f"Team {i}", institution_key=f"i{i % 60}") for i in range(teams)]
    for i in range(teams):
        for s in range(2):
            b.people.append(
                PersonData(
                    f"s{i}-{s}", f"Speaker {i}-{s}", Role.SPEAKER, f"s{i}.{s}@example.org", team_key=f"t{i}"
                )
            )
    b.people += [
        PersonData(
            f"a{i}", f"Adjudicator {i}", Role.ADJUDICATOR, f"adj{i}@example.org", institution_key=f"i{i % 60}"
        )
        for i in range(adjudicators)
    ]
    b.rounds = [RoundData(1, "Round 1", "R1", draw_status="R")]
    b.complete_rounds = {1}
    adj = 0
    for d in range(teams // 4):
        panel = []
        for pos in (Position.CHAIR, Position.PANELLIST, Position.PANELLIST, Position.TRAINEE):
            if adj < adjudicators:
                panel.append((f"a{adj}", pos))
                adj += 1
        b.debates.append(
            DebateData(
                f"d{d}",
                1,
                f"v{d}",
                teams=[(f"t{4 * d + k}", side) for k, side in enumerate(("og", "oo", "cg", "co"))],
                adjudicators=panel,
            )
        )
    return b


def crowd(count: int) -> ImportBundle:
    b = ImportBundle(TournamentData("bench-crowd", "Bench Crowd", "Crowd"))
    b.people = [
        PersonData(f"p{i}", f"Person {i:05d}", Role.SPEAKER, f"p{i}@example.org") for i in range(count)
    ]
    return b


def child(db: str, port: int, connections: int) -> dict[str, float]:
    from tabmail.services import notify
    from tabmail.services.context import AppContext
    from tabmail.services.outbox import Outbox
    from tabmail.services.sending import build_backend
    from tests.keyrings import MemoryKeyring

    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    for key, value in {
        "backend": "smtp",
        "smtp.host": "127.0.0.1",
        "smtp.port": str(port or 25),
        "smtp.security": "none",
        "smtp.connections": str(connections),
        "smtp.messages_per_connection": "10000",
        "from_address": "tab@example.org",
    }.items():
        ctx.settings.set_text(key, value)
    out: dict[str, float] = {}
    ctx.tournaments.apply_import(bp_round())
    ctx.tournaments.apply_import(crowd(COUNT))
    start = time.perf_counter()
    plan = notify.plan(ctx, "bench-bp", Event.DRAW, round_seq=1, audience=Audience.ALL)
    res = notify.enqueue(ctx, plan)
    out["bp_enqueue_s"] = time.perf_counter() - start
    out["bp_messages"] = res.queued
    ctx.notifications.cancel_pending(res.batch_id)  # only the 2,000 are sent below
    start = time.perf_counter()
    templates = Templates(
        "News for {{ USER }}", "Dear {{ USER }},\n\n" + "The tab room has news for you. " * 40 + "\n", None
    )
    plan = notify.plan(ctx, "bench-crowd", Event.CUSTOM, templates=templates)
    res = notify.enqueue(ctx, plan)
    out["crowd_enqueue_s"] = time.perf_counter() - start
    out["crowd_messages"] = res.queued
    if port:
        outbox = Outbox(ctx.notifications, ctx.flags, lambda name: build_backend(ctx, name), ctx.bus)
        start = time.perf_counter()
        report = asyncio.run(outbox.run(batch_id=res.batch_id))
        out["send_s"] = time.perf_counter() - start
        out["sent"] = report.sent
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ctx.close()
    return out


def run_child(db: Path, port: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.bench.bench_send", "--child", str(db), str(port), str(CONNECTIONS)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def stored_messages(db: Path) -> list[OutgoingMessage]:
    import email
    from email import policy

    from tabmail.domain.notification import MessageState
    from tabmail.services.context import AppContext
    from tests.keyrings import MemoryKeyring

    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    try:
        out = []
        for m in ctx.notifications.messages(states=[MessageState.SENT]):
            raw = ctx.notifications.raw(m.id)
            msg = email.message_from_bytes(raw, policy=policy.default)
            out.append(OutgoingMessage(m.id, "tab@example.org", m.address, msg, raw))  # type: ignore[arg-type]
        return out
    finally:
        ctx.close()


def main() -> str:
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        with server_process(0.020) as port:
            a = run_child(Path(tmp) / "a.sqlite3", port)
            msgs = stored_messages(Path(tmp) / "a.sqlite3")
            start = time.perf_counter()
            with_smtplib(port, msgs, threads=1)
            sequential = time.perf_counter() - start
        # (b) is a ratio of two short runs on a shared 2-core machine: best of 3 for each side,
        # alternating, so both see the same conditions.
        with server_process(0.0) as port:
            runs: list[dict[str, float]] = []
            bares: list[float] = []
            for n in range(3):
                runs.append(run_child(Path(tmp) / f"b{n}.sqlite3", port))
                msgs = stored_messages(Path(tmp) / f"b{n}.sqlite3")
                with_smtplib(port, msgs[:100], threads=CONNECTIONS)
                start = time.perf_counter()
                with_smtplib(port, msgs, threads=CONNECTIONS)
                bares.append(time.perf_counter() - start)
            b = min(runs, key=lambda r: r["send_s"])
            bare = min(bares)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    rows.append(
        (
            f"plan + enqueue draw, 400-team BP round ({int(a['bp_messages'])} messages)",
            f"{a['bp_enqueue_s']:.2f} s",
            "",
            "",
        )
    )
    rows.append(
        (
            f"plan + enqueue custom message ({int(a['crowd_messages'])} messages)",
            f"{a['crowd_enqueue_s']:.2f} s",
            "< 2 s",
            verdict(a["crowd_enqueue_s"] < 2),
        )
    )
    rows.append(("(a) 20 ms latency: one smtplib connection, sequential", f"{sequential:.2f} s", "", ""))
    speedup = sequential / a["send_s"]
    rows.append(
        (
            f"(a) 20 ms latency: tabmail outbox, {CONNECTIONS} connections ({int(a['sent'])} sent)",
            f"{a['send_s']:.2f} s",
            f">= 5x faster: {speedup:.1f}x",
            verdict(speedup >= 5),
        )
    )
    rows.append(
        (f"(b) no latency: bare smtplib loop, {CONNECTIONS} threads (best of 3)", f"{bare:.2f} s", "", "")
    )
    slowdown = b["send_s"] / bare
    rows.append(
        (
            f"(b) no latency: tabmail outbox, {CONNECTIONS} connections, best of 3 ({int(b['sent'])} sent)",
            f"{b['send_s']:.2f} s",
            f"<= 1.5x time: {slowdown:.2f}x",
            verdict(slowdown <= 1.5),
        )
    )
    peak = max(a["maxrss_mb"], b["maxrss_mb"])
    rows.append(
        (
            "peak memory, compose + enqueue + send 2,000 (child ru_maxrss)",
            f"{peak:.0f} MB",
            "< 250 MB",
            verdict(peak < 250),
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"send path benchmark: {COUNT} messages, SQLite, loopback SMTP server in its own process"]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(main())
