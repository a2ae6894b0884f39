"""`tabmail db copy --merge` on the season database (40 tournaments, 100,000 messages, 300,000
events): the whole season joins a PostgreSQL tab room that already holds the demo tournament,
then one tournament joins a SQLite file that holds the demo. Fresh processes, wall time and peak
memory (ru_maxrss from wait4); each merge checks every table's count and checksum itself."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.bench_pgseason import _env
from tests.bench.bench_startup import calibration_seconds


def merge_process(source: str, target: str, env: dict[str, str], *extra: str) -> tuple[float, float, str]:
    cmd = [sys.executable, "-m", "tabmail", "db", "copy", "--merge", "--from", source, "--to", target, *extra]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0 or " merged: " not in out:
            err.seek(0)
            raise RuntimeError(f"db copy --merge failed: {out[-3000:]}{err.read()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024, out


def _with_demo(url: str) -> None:
    from tabmail.services.context import AppContext
    from tabmail.services.demo import load_demo_if_empty
    from tests.keyrings import MemoryKeyring

    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    try:
        assert load_demo_if_empty(ctx) is not None
    finally:
        ctx.close()


def main() -> str:
    from tests.bench.season import build_season
    from tests.servers.postgres import PostgresServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        return "dbmerge: PostgreSQL is not installed (tools/system-deps.sh); nothing measured"
    server = PostgresServer(bin_dir)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            env = _env(home)
            season_db = Path(tmp) / "season.sqlite3"
            season = build_season(season_db)
            server.admin("CREATE DATABASE room")
            room = server.url("room")
            _with_demo(room)
            cal_in = calibration_seconds()
            in_s, in_rss, _ = merge_process(str(season_db), room, env)
            laptop = Path(tmp) / "laptop.sqlite3"
            _with_demo(str(laptop))
            cal_out = calibration_seconds()
            out_s, out_rss, out_table = merge_process(room, str(laptop), env, "--tournament", season.big_slug)
    finally:
        server.stop()
    rows = [
        ("", "figure", "calibration", "peak memory"),
        (
            f"merge the season ({season.tournaments} tournaments) SQLite -> PostgreSQL room",
            f"{in_s:.1f} s",
            f"{cal_in * 1000:.0f} ms",
            f"{in_rss:.0f} MB",
        ),
        (
            f"merge {season.big_slug} PostgreSQL -> SQLite file",
            f"{out_s:.1f} s",
            f"{cal_out * 1000:.0f} ms",
            f"{out_rss:.0f} MB",
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"db copy --merge: season of {season.messages} messages, {season.events} events; both targets held "
        "the demo tournament; every table's count and checksum matched"
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines += ["", f"the second merge's own table ({season.big_slug}):", out_table.rstrip()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
