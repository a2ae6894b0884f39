"""Peak memory of importing very large inputs: refused past the documented limits, and under
500 MB at the limits (issue 9, item 18; docs/limits.md).

Each case runs in a child process importing into a fresh SQLite file, so the child's peak
resident memory (VmHWM on Linux) is the importer's own (interpreter and libraries included).
Tabbycat cases are served by the loopback replay server running in this process.
Run: ``python -m tests.bench input_sizes``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.servers.tabbycat import TabbycatServer, generate_tournament

REPO = Path(__file__).resolve().parents[2]
TARGET_MB = 500.0
MIB = 1024 * 1024
SLUG = "big"
T = f"/api/v1/tournaments/{SLUG}"


def _child(kind: str, source: str, db_path: str) -> None:
    """In the child: one import; print peak memory and the outcome as JSON."""
    from tabmail.domain.errors import TabmailError
    from tabmail.services.context import AppContext
    from tabmail.services.importing import import_csv, import_tabbycat
    from tests.keyrings import MemoryKeyring

    ctx = AppContext.open(db_path, keyring_backend=MemoryKeyring())
    start = time.perf_counter()
    try:
        if kind == "csv":
            result = import_csv(ctx, Path(source), "Big")
        else:
            result = import_tabbycat(ctx, source, SLUG, token="admin")
        counts = result.created
        outcome = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()) if k in ("person", "team"))
        outcome = f"imported: {outcome}; {len(result.problems)} problem lines"
    except TabmailError as exc:
        outcome = f"refused: {exc}"
    seconds = time.perf_counter() - start
    ctx.close()
    print(json.dumps({"rss_peak_kb": _peak_kb(), "seconds": seconds, "outcome": outcome}))


def _peak_kb() -> int:
    """This process's peak resident memory. On Linux VmHWM: ``ru_maxrss`` survives exec and
    would report the parent's size at fork (the parent holds the 300 MB test body)."""
    import resource

    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1])


def _run_child(kind: str, source: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.bench.bench_input_sizes",
                "--child",
                kind,
                source,
                f"{tmp}/b.sqlite3",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the import child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- CSV inputs ---------------------------------------------------------------------------------
def _csv_huge(folder: Path) -> str:
    row = "Adjudicator Number 0000000,adjudicator.0000000@example.org,,University of Somewhere,FALSE,FALSE\n"
    with (folder / "adjudicators.csv").open("w", encoding="utf-8") as fh:
        fh.write("name,email,gender,institution,adj_core,independent\n")
        fh.writelines(row for _ in range(50 * MIB // len(row)))
    return "50 MB adjudicators.csv"


def _csv_people_at_limit(folder: Path) -> str:
    with (folder / "teams.csv").open("w", encoding="utf-8") as fh:
        fh.write("institution,reference,speaker1_name,speaker1_email,speaker2_name,speaker2_email\n")
        for i in range(19_999):
            fh.write(
                f"Uni {i % 500},T{i},Speaker {i} A,s{i}a@uni{i % 500}.example.org,Speaker {i} B,s{i}b@x.org\n"
            )
    with (folder / "adjudicators.csv").open("w", encoding="utf-8") as fh:
        fh.write("name,email,institution\n")
        fh.writelines(f"Adjudicator {i},adj{i}@example.org,Uni {i % 500}\n" for i in range(9_999))
    return "20,000 teams (40,000 speakers) + 10,000 adjudicators"


def _csv_wide_at_limit(folder: Path) -> str:
    columns = 99  # 99 x 20,000 cells, 2 bytes each: just under 2,000,000 cells and 8 MB
    with (folder / "adjudicators.csv").open("w", encoding="utf-8") as fh:
        fh.write("name," + ",".join(f"c{i}" for i in range(columns - 1)) + "\n")
        fh.writelines(f"A{i}" + ",x" * (columns - 1) + "\n" for i in range(20_000 - 1))
    return "2,000,000 cells (99 columns x 20,000 rows)"


# -- Tabbycat inputs ----------------------------------------------------------------------------
def _tabbycat_case(server: TabbycatServer, name: str) -> str:
    server.forced.clear()
    if name == "huge":
        item = json.dumps({"id": 1, "url": "x/adjudicators/1", "name": "A" * 100, "email": "a@example.org"})
        count = 300 * MIB // (len(item) + 1)
        server.respond_raw(f"{T}/adjudicators", b"[" + b",".join([item.encode()] * count) + b"]")
        return "300 MB adjudicators list"
    if name == "empty-objects":
        count = 990_000  # counted as 2 values each ("{" and ","): just under 2,000,000
        server.respond_raw(f"{T}/adjudicators", b"[" + b",".join([b"{}"] * count) + b"]")
        return f"{count:,} empty objects in one list (2.8 MB)"
    return "7 MB teams list (5,000 teams, 10,000 speakers)"


def main() -> str:
    rows: list[tuple[str, str, dict[str, Any]]] = []
    csv_cases: list[Callable[[Path], str]] = [_csv_huge, _csv_people_at_limit, _csv_wide_at_limit]
    for make in csv_cases:
        with tempfile.TemporaryDirectory() as tmp:
            label = make(Path(tmp))
            rows.append(("CSV", label, _run_child("csv", tmp)))
    gen = generate_tournament(5_000, 4, 1, slug=SLUG)  # teams list ~7 MB
    with TabbycatServer(gen.dataset) as server:
        for name in ("huge", "empty-objects", "at-limit"):
            label = _tabbycat_case(server, name)
            rows.append(("Tabbycat", label, _run_child("tabbycat", server.url)))
    lines = [
        "input sizes: peak memory (child VmHWM) importing very large inputs into SQLite",
        f"target: < {TARGET_MB:g} MB for every input; past the limits a one-line refusal (docs/limits.md)",
        "",
        f"{'source':<9} {'input':<52} {'peak':>7} {'time':>7}  verdict  outcome",
        "-" * 120,
    ]
    for source, label, r in rows:
        peak = r["rss_peak_kb"] / 1024
        verdict = "ok" if peak < TARGET_MB else "MISSED"
        outcome = r["outcome"] if len(r["outcome"]) < 140 else r["outcome"][:137] + "..."
        lines.append(
            f"{source:<9} {label:<52} {peak:>4.0f} MB {r['seconds']:>5.1f} s  {verdict:<7}  {outcome}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(*sys.argv[2:5])
    else:
        print(main())
