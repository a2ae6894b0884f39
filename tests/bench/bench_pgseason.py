"""The season database (40 tournaments, 100,000 messages, 300,000 events) on PostgreSQL.

- `tabmail db copy` from the season's SQLite file into an empty PostgreSQL database, and back
  into a new SQLite file, each as a fresh process: wall time and peak resident memory
  (ru_maxrss of that process alone); every table's count and checksum must match.
- the dashboard on the PostgreSQL copy (bench_gui's measurements, in a fresh process): show the
  2,000-message round after it is selected, target < 0.5 s; open the Problems view across every
  tournament, target < 0.5 s.

The server is tests/servers/postgres.py's (initdb/pg_ctl in a temporary folder, unix socket,
fsync off as in the tests). Each time has the calibration beside it (bench_startup's fixed
pure-Python loop, timed just before in the same process) and the figure in calibrations.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.bench_startup import calibration_seconds

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }


def copy_process(source: str, target: str, env: dict[str, str]) -> tuple[float, float, str]:
    cmd = [sys.executable, "-m", "tabmail", "db", "copy", "--from", source, "--to", target]
    # ru_maxrss of this child alone: wait4 before Popen reaps it.
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0 or "database copied" not in out:
            err.seek(0)
            raise RuntimeError(f"db copy failed ({proc.returncode}): {out[-3000:]}{err.read()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024, out


def in_process(url: str, ini: Path) -> dict[str, float]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from sqlalchemy import event

    from tabmail.gui.bridge import EventBridge
    from tabmail.gui.collector import collect_on_gui_thread
    from tabmail.gui.main_window import MainWindow
    from tabmail.services.context import AppContext
    from tests.keyrings import MemoryKeyring

    app = QApplication.instance() or QApplication([])
    # As tabmail/app.py does: the cyclic collector runs from a GUI-thread timer, not in the middle
    # of whatever allocates (without it a full collection of the start-up heap, ~180 ms, could
    # land inside the measured round load on one run and not on the next).
    collector = collect_on_gui_thread(app)
    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    assert ctx.db.engine.dialect.name == "postgresql"
    window = MainWindow(
        ctx, bridge=EventBridge(ctx.bus), qsettings=QSettings(str(ini), QSettings.Format.IniFormat)
    )
    window.resize(1440, 900)
    window.show()
    app.processEvents()
    out: dict[str, float] = {}
    big = ctx.tournaments.get("season-00")
    rnd = ctx.tournaments.get_round(big.id, 1)
    window.select_tournament(big.id)
    app.processEvents()
    out["show_round_cal"] = calibration_seconds()
    event.listen(ctx.db.engine, "before_cursor_execute", count)
    cpu = time.process_time()
    start = time.perf_counter()
    window.select_round(rnd.id)
    app.processEvents()
    window.round_view.repaint()
    out["show_round_s"] = time.perf_counter() - start
    out["show_round_cpu_s"] = time.process_time() - cpu
    event.remove(ctx.db.engine, "before_cursor_execute", count)
    out["show_round_statements"] = len(statements)
    out["round_messages"] = window.round_view.model.message_count()

    from tabmail.services import problems as problem_service

    hub = window.problems_hub
    deadline = time.perf_counter() + 60
    while (hub.problems is None or not hub.fresh) and time.perf_counter() < deadline:
        app.processEvents()
    out["problems_cal"] = calibration_seconds()
    start = time.perf_counter()
    problem_service.unresolved(ctx)
    out["problems_read_s"] = time.perf_counter() - start
    start = time.perf_counter()
    window.select_problems(None)
    app.processEvents()
    window.problems_page.repaint()
    out["problems_view_s"] = time.perf_counter() - start
    out["problems_listed"] = window.problems_page.model.rowCount()
    window.close()
    ctx.close()
    collector.stop()
    return out


def main() -> str:
    from tests.bench.season import build_season
    from tests.servers.postgres import PostgresServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        return "pgseason: PostgreSQL is not installed (tools/system-deps.sh); nothing measured"
    server = PostgresServer(bin_dir)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            env = _env(home)
            db = Path(tmp) / "season.sqlite3"
            t = time.perf_counter()
            season = build_season(db)
            built = time.perf_counter() - t
            server.admin("CREATE DATABASE season")
            url = server.url("season")
            to_cal = calibration_seconds()
            to_s, to_rss, to_out = copy_process(str(db), url, env)
            back_cal = calibration_seconds()
            back_s, back_rss, _ = copy_process(url, str(Path(tmp) / "back.sqlite3"), env)
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.bench.bench_pgseason",
                    "--child",
                    url,
                    str(Path(tmp) / "w.ini"),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-3000:])
            r: dict[str, Any] = eval(done.stdout.strip().splitlines()[-1])  # our own child's dict repr
    finally:
        server.stop()

    def row(what: str, seconds: float, cal: float, target: float | None, extra: str = "") -> tuple[str, ...]:
        figure = f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"
        goal = "" if target is None else (f"< {target:g} s" if target >= 1 else f"< {target * 1000:.0f} ms")
        verdict = "" if target is None else ("ok" if seconds < target else "MISSED")
        return (what, figure, goal, verdict, f"{cal * 1000:.0f} ms", f"{seconds / cal:.0f}", extra)

    rows = [
        ("", "figure", "target", "", "calibration", "× calibration", "peak memory / CPU"),
        row("db copy SQLite -> PostgreSQL (fresh process)", to_s, to_cal, None, f"{to_rss:.0f} MB"),
        row("db copy PostgreSQL -> SQLite (fresh process)", back_s, back_cal, None, f"{back_rss:.0f} MB"),
        row(
            f"show a {int(r['round_messages'])}-message round",
            r["show_round_s"],
            r["show_round_cal"],
            0.5,
            f"CPU {r['show_round_cpu_s'] * 1000:.0f} ms, {int(r['show_round_statements'])} statements",
        ),
        row(
            f"open the Problems view, every tournament ({int(r['problems_listed'])} problems)",
            r["problems_view_s"],
            r["problems_cal"],
            0.5,
        ),
        row("  reading them all at once", r["problems_read_s"], r["problems_cal"], None),
    ]
    widths = [max(len(line[i]) for line in rows) for i in range(7)]
    lines = [
        f"season on PostgreSQL: {season.tournaments} tournaments, {season.messages} messages, "
        f"{season.events} events (SQLite season built in {built:.0f} s); every table's count and "
        "checksum matched in both copies"
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in rows]
    lines += ["", "db copy's own table (SQLite -> PostgreSQL):", to_out.rstrip()]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        print(repr(in_process(sys.argv[2], Path(sys.argv[3]))), flush=True)
        os._exit(0)  # measured; skip tearing Qt down under a finalizing interpreter
    else:
        print(main())
