"""Import a 400-team BP tournament from the loopback Tabbycat server: wall time and peak memory.

The server (with its generated data) runs in this process; the import runs in a child process
through ``services.importing.import_tabbycat`` into a fresh SQLite file, so the child's
``ru_maxrss`` is the importer's own peak resident memory (interpreter and libraries included).
Run: ``python -m tests.bench import``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.servers.tabbycat import TabbycatServer, generate_tournament

REPO = Path(__file__).resolve().parents[2]
TEAMS, ADJUDICATORS, ROUNDS = 400, 350, 9
TARGET_SECONDS, TARGET_MB = 10.0, 300.0


def _child(url: str, db_path: str, slug: str) -> None:
    """In the child: import twice (fresh, then unchanged) and print the figures as JSON."""
    import resource

    from tabmail.services.context import AppContext
    from tabmail.services.importing import import_tabbycat
    from tests.keyrings import MemoryKeyring

    ctx = AppContext.open(db_path, keyring_backend=MemoryKeyring())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fetched_at: list[float] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "ballots" and done == total:
            fetched_at.append(time.perf_counter())

    start = time.perf_counter()
    first = import_tabbycat(ctx, url, slug, progress=progress, token="admin")
    end = time.perf_counter()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    again_start = time.perf_counter()
    second = import_tabbycat(ctx, url, slug, token="admin")
    again = time.perf_counter() - again_start
    ctx.close()
    print(
        json.dumps(
            {
                "seconds": end - start,
                "fetch_seconds": (fetched_at[0] if fetched_at else end) - start,
                "store_seconds": end - (fetched_at[0] if fetched_at else end),
                "reimport_seconds": again,
                "rss_before_kb": rss_before,
                "rss_peak_kb": rss_peak,
                "created": first.created,
                "problems": [str(p) for p in first.problems],
                "reimport_changed": {**second.created, **second.updated},
            }
        )
    )


def main() -> str:
    gen = generate_tournament(TEAMS, ADJUDICATORS, ROUNDS, slug="bench400")
    with TabbycatServer(gen.dataset) as server, tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.bench.bench_import",
                "--child",
                server.url,
                f"{tmp}/bench.sqlite3",
                gen.slug,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        requests_served = server.count()
    if done.returncode != 0:
        raise RuntimeError(f"the import child failed:\n{done.stderr}")
    r: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {
        "team": gen.teams,
        "person": gen.speakers + gen.adjudicators,
        "debate": ROUNDS * gen.debates_per_round,
    }
    expected["ballot"] = gen.ballots
    complete = all(r["created"].get(k) == v for k, v in expected.items()) and not r["problems"]
    peak_mb = r["rss_peak_kb"] / 1024
    rows = [
        (
            "first import, wall time",
            f"< {TARGET_SECONDS:g} s",
            f"{r['seconds']:.2f} s",
            r["seconds"] < TARGET_SECONDS,
        ),
        ("  fetching (HTTP, 8 workers)", "", f"{r['fetch_seconds']:.2f} s", None),
        ("  storing (one SQLite transaction)", "", f"{r['store_seconds']:.2f} s", None),
        ("peak memory (child ru_maxrss)", f"< {TARGET_MB:g} MB", f"{peak_mb:.0f} MB", peak_mb < TARGET_MB),
        ("  resident before the import", "", f"{r['rss_before_kb'] / 1024:.0f} MB", None),
        ("re-import, nothing changed", "", f"{r['reimport_seconds']:.2f} s", not r["reimport_changed"]),
        ("everything imported, no problems", "yes", "yes" if complete else "NO", complete),
    ]
    lines = [
        "import benchmark: Tabbycat REST API -> SQLite via services.importing.import_tabbycat",
        f"generated BP tournament: {gen.teams} teams, {gen.speakers} speakers, {gen.adjudicators} adjudicators, "
        f"{gen.rounds} rounds x {gen.debates_per_round} debates, {gen.ballots} ballots; "
        f"{requests_served} HTTP requests served (both imports) on loopback",
        "",
        f"{'measure':<36} {'target':>10} {'result':>10}  verdict",
        "-" * 68,
    ]
    for name, target, result, ok in rows:
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        lines.append(f"{name:<36} {target:>10} {result:>10}  {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(*sys.argv[2:5])
    else:
        print(main())
