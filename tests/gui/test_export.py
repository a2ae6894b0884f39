"""File → Export… and Print…: the round view, the Problems view and a person's history as CSV
(owner-only, formula-safe) and as PDF / printout, holding exactly the rows the page shows."""

from __future__ import annotations

import csv
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtPrintSupport import QPrinter
from pytestqt.qtbot import QtBot

from tabmail.gui.background import BackgroundWorker
from tabmail.gui.export import document
from tabmail.gui.main_window import MainWindow
from tabmail.services.context import AppContext
from tests.practice_support import FakeTime, play_out, send_demo_round

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot: QtBot, practice_demo: AppContext, qsettings: QSettings) -> MainWindow:
    """The demo's round 1 sent in practice mode and played out: a few problems among many rows."""
    t = FakeTime()
    send_demo_round(practice_demo, t)
    play_out(practice_demo, t)
    win = MainWindow(practice_demo, qsettings=qsettings, worker=BackgroundWorker(practice_demo))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def pdf_text(path: Path) -> str:
    assert shutil.which("pdftotext"), "pdftotext (poppler-utils, tools/system-deps.sh) is needed"
    done = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def shown_round_rows(window: MainWindow) -> list[list[str]]:
    """What the round view shows, read from its proxy here, independently of the exporter."""
    proxy = window.round_view.proxy
    rows = []
    for b in range(proxy.rowCount()):
        batch = proxy.index(b, 0)
        for r in range(proxy.rowCount(batch)):
            rows.append([str(batch.data())] + [str(proxy.index(r, c, batch).data() or "") for c in range(5)])
    return rows


def owner_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def open_round_1(window: MainWindow, ctx: AppContext) -> None:
    tournament = ctx.tournaments.list_all()[0]
    assert window.select_round(ctx.tournaments.get_round(tournament.id, 1).id)
    assert window.stack.currentWidget() is window.round_view


def test_the_round_view_exports_its_rows_as_csv_and_pdf(
    window: MainWindow, practice_demo: AppContext, tmp_path: Path
) -> None:
    open_round_1(window, practice_demo)
    assert window.exporter.export_action.isEnabled() and window.exporter.print_action.isEnabled()
    expected = shown_round_rows(window)
    assert len(expected) > 30

    target = tmp_path / "round.csv"
    assert window.exporter.export_to(target)
    assert owner_only(target)
    headers, rows = read_csv(target)
    assert headers == ["Batch", "Recipient", "Role", "Address", "Status", "Reason", "Last event"]
    assert [[r[0], r[1], r[2], r[3], r[4], r[6]] for r in rows] == expected
    bounced = [r for r in rows if r[4] == "Bounced"]
    assert bounced and all("550 5.1.1" in r[5] for r in bounced)  # the provider's reason travels
    assert "rows as CSV" in window.statusBar().currentMessage()

    pdf = tmp_path / "round.pdf"
    assert window.exporter.export_to(pdf)
    assert owner_only(pdf) and pdf.read_bytes().startswith(b"%PDF")
    text = pdf_text(pdf)
    assert "Round 1 · Demo Open" in text and f"{len(rows)} rows" in text
    squeezed = "".join(text.split())  # a long address may wrap inside its cell
    for row in rows:
        assert row[3] in squeezed  # every address is in the printout


def test_the_export_follows_the_filters(
    window: MainWindow, practice_demo: AppContext, tmp_path: Path
) -> None:
    open_round_1(window, practice_demo)
    page = window.round_view
    page.problems_only.setChecked(True)
    expected = shown_round_rows(window)
    assert 0 < len(expected) < 15
    target = tmp_path / "problems-only.csv"
    assert window.exporter.export_to(target)
    _headers, rows = read_csv(target)
    assert [[r[0], r[1], r[2], r[3], r[4], r[6]] for r in rows] == expected
    table = window.exporter.current_table()
    assert table is not None and "problems only" in table.subtitle
    assert "problems only" in document.to_html(table)


def test_the_problems_view_exports_every_unresolved_problem(
    window: MainWindow, practice_demo: AppContext, tmp_path: Path
) -> None:
    tournament = practice_demo.tournaments.list_all()[0]
    assert window.select_problems(tournament.id)
    page = window.problems_page
    shown = [
        [
            str(page.proxy.index(r, c).data() or "")
            for c in range(page.model.columnCount())
            if not page.table.isColumnHidden(c)
        ]
        for r in range(page.proxy.rowCount())
    ]
    assert len(shown) >= 5
    target = tmp_path / "problems.csv"
    assert window.exporter.export_to(target)
    headers, rows = read_csv(target)
    assert "Tournament" not in headers and headers[:2] == ["Round", "Recipient"]  # as shown
    assert rows == shown
    pdf = tmp_path / "problems.pdf"
    assert window.exporter.export_to(pdf)
    text = pdf_text(pdf)
    assert "Problems — Demo Open" in text
    assert all(row[2] in "".join(text.split()) for row in rows)


def test_a_persons_history_exports_and_prints(
    qtbot: QtBot, window: MainWindow, practice_demo: AppContext, tmp_path: Path
) -> None:
    tournament = practice_demo.tournaments.list_all()[0]
    assert window.select_participants(tournament.id)
    assert not window.exporter.export_action.isEnabled()  # nobody selected yet
    page = window.participants_page
    bounced = next(
        m
        for m in practice_demo.notifications.messages()
        if m.delivery_status.value == "bounced" and m.person_id is not None
    )
    practice_demo.tournaments.set_person_email(
        bounced.person_id, "fixed." + bounced.address, source="director"
    )
    page.reload()
    assert page.select_person(bounced.person_id)
    qtbot.waitUntil(window.exporter.export_action.isEnabled, timeout=2000)

    target = tmp_path / "person.csv"
    assert window.exporter.export_to(target)
    headers, rows = read_csv(target)
    assert headers == ["When", "What", "Round", "Address", "Status", "Detail"]
    assert any(r[1:5] == ["Draw release", "Round 1", bounced.address, "Bounced"] for r in rows)
    assert any(r[1] == "Address edited in tabmail" and r[3] == "fixed." + bounced.address for r in rows)

    printed = tmp_path / "printed.pdf"
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(printed))
    assert window.exporter.print_on(printer)
    text = pdf_text(printed)
    squeezed = "".join(text.split())
    assert "history" in text and bounced.address in squeezed and "fixed." + bounced.address in squeezed


def test_csv_cells_cannot_run_as_formulas(
    window: MainWindow, practice_demo: AppContext, tmp_path: Path
) -> None:
    from tabmail.gui.export.table import ExportTable

    table = ExportTable("t", ["Name", "Address"], [['=HYPERLINK("http://x")', "a@example.org"]])
    target = tmp_path / "formula.csv"
    document.write_csv(table, target)
    _headers, rows = read_csv(target)
    assert rows == [['\'=HYPERLINK("http://x")', "a@example.org"]]


def test_nothing_to_export_on_the_welcome_page(qtbot: QtBot, ctx: AppContext, qsettings: QSettings) -> None:
    win = MainWindow(ctx, qsettings=qsettings, worker=BackgroundWorker(ctx))
    qtbot.addWidget(win)
    assert win.exporter.current_table() is None
    assert not win.exporter.export_action.isEnabled() and not win.exporter.print_action.isEnabled()
    assert "Open a round" in win.exporter.export_action.toolTip()
    assert not win.exporter.export_to(Path("/nonexistent/x.csv"))


def test_a_folder_that_cannot_be_written_is_said_in_one_line(
    window: MainWindow, practice_demo: AppContext, tmp_path: Path
) -> None:
    open_round_1(window, practice_demo)
    assert not window.exporter.export_to(tmp_path / "missing-folder" / "round.csv")
    assert not (tmp_path / "missing-folder").exists()
