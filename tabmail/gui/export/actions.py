"""File → Export… (CSV or PDF) and File → Print… for the page the director is looking at.

What is exported is what the page shows: the round view's rows under the search and "Problems
only" filters, the Problems view's rows, or the selected participant's history. The actions are
enabled only when the current page has something to export, and say why not in their tooltip.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QStandardPaths, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QWidget

from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import TOURNAMENT_WIDE_NAME
from tabmail.gui.export import document
from tabmail.gui.export.table import ExportTable, person_table, problems_table, round_table

log = logging.getLogger(__name__)

FOLDER_KEY = "export/folder"
CSV_FILTER = "CSV for a spreadsheet (*.csv)"
PDF_FILTER = "PDF to print or share (*.pdf)"
NOTHING = "Open a round, the Problems view or a participant to export or print it"


class ExportActions(QObject):
    """Owns File → Export… and Print… of ``window`` (a MainWindow)."""

    def __init__(self, window: Any, menu: QMenu, before: QAction | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.export_action = QAction("&Export…", window)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.export_action.triggered.connect(self.ask_export)
        self.print_action = QAction("&Print…", window)
        self.print_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Print))
        self.print_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.print_action.triggered.connect(self.ask_print)
        menu.insertAction(before, self.export_action)
        menu.insertAction(before, self.print_action)
        menu.insertSeparator(before)
        window.stack.currentChanged.connect(lambda _i: self.update_actions())
        window.participants_page.person_selected.connect(lambda _p: self.update_actions())
        self.update_actions()

    # -- what the current page shows -----------------------------------------------------------
    def current_table(self) -> ExportTable | None:
        w = self.window
        page = w.stack.currentWidget()
        if page is w.round_view and _round_view_place(page):
            filters = []
            if page.search.text().strip():
                filters.append(f"search “{page.search.text().strip()}”")
            if page.problems_only.isChecked():
                filters.append("problems only")
            return round_table(
                page.proxy,
                f"{_round_view_place(page)} · {page.tournament.name}",
                filters=("only rows matching " + ", ".join(filters)) if filters else "",
            )
        if page is w.problems_page and page.shown_for is not None:
            hidden = {c for c in range(page.model.columnCount()) if page.table.isColumnHidden(c)}
            return problems_table(page.proxy, page.title.text(), hidden=hidden)
        if page is w.participants_page and page.tournament is not None:
            return self._person(page)
        return None

    def _person(self, page: Any) -> ExportTable | None:
        pid = page.selected_person_id()
        row = None if pid is None else page.model.row_of(pid)
        if pid is None or row is None:
            return None
        ctx = self.window.ctx
        person = page.model.person_at(row)
        messages = ctx.notifications.messages(person_id=pid)
        batches = {b: ctx.notifications.get_batch(b) for b in {m.batch_id for m in messages}}
        rounds = {r.id: r.name for r in ctx.tournaments.rounds(page.tournament.id)}
        history = ctx.tournaments.address_history(pid)
        return person_table(person, messages, batches, rounds, history, tournament=page.tournament.name)

    def update_actions(self) -> None:
        page = self.window.stack.currentWidget()
        w = self.window
        if page is w.participants_page and page.tournament is not None:
            able = page.selected_person_id() is not None
            why = "Select a participant to export or print their history"
        else:
            able = (page is w.round_view and bool(_round_view_place(page))) or (
                page is w.problems_page and page.shown_for is not None
            )
            why = NOTHING
        for action, what in ((self.export_action, "Export"), (self.print_action, "Print")):
            action.setEnabled(able)
            tip = f"{what} what this page shows" if able else why
            action.setToolTip(tip)
            action.setStatusTip(tip)

    # -- export ------------------------------------------------------------------------------
    def _folder(self) -> str:
        saved = self.window._qsettings.value(FOLDER_KEY)
        if isinstance(saved, str) and saved and Path(saved).is_dir():
            return saved
        documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        if documents and Path(documents).is_dir():
            return documents
        return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.HomeLocation)

    def ask_export(self) -> QFileDialog | None:
        """A save dialog (CSV or PDF, chosen by the file type); exports when a file is chosen."""
        table = self.current_table()
        if table is None:
            self._say(NOTHING)
            return None
        dialog = QFileDialog(self.window, "Export", str(Path(self._folder()) / f"{table.file_stem}.csv"))
        dialog.setObjectName("export-dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters([CSV_FILTER, PDF_FILTER])
        dialog.setDefaultSuffix("csv")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def on_filter(name: str) -> None:
            suffix = "pdf" if name == PDF_FILTER else "csv"
            dialog.setDefaultSuffix(suffix)
            dialog.selectFile(f"{table.file_stem}.{suffix}")

        dialog.filterSelected.connect(on_filter)
        dialog.fileSelected.connect(lambda path: self.export_to(Path(path), table))
        dialog.open()
        return dialog

    def export_to(self, path: Path, table: ExportTable | None = None) -> bool:
        """Write ``table`` (default: the current page's) to ``path``: PDF for a .pdf name, CSV
        otherwise. Says what happened in the status bar; a failure in a message box."""
        table = table or self.current_table()
        if table is None:
            self._say(NOTHING)
            return False
        try:
            if path.suffix.lower() == ".pdf":
                size = document.write_pdf(table, path)
                words = f"Saved {len(table.rows)} rows as a PDF ({size // 1024 + 1} kB) to {path}"
            else:
                document.write_csv(table, path)
                words = f"Saved {len(table.rows)} rows as CSV to {path}"
        except TabmailError as exc:
            self._fail(str(exc))
            return False
        self.window._qsettings.setValue(FOLDER_KEY, str(path.parent))
        self._say(words)
        log.info("exported %d rows to %s", len(table.rows), path)
        return True

    # -- print -------------------------------------------------------------------------------
    def ask_print(self) -> QWidget | None:
        table = self.current_table()
        if table is None:
            self._say(NOTHING)
            return None
        from PySide6.QtPrintSupport import QPrintDialog, QPrinter  # only when printing

        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setDocName(table.title)
        dialog = QPrintDialog(printer, self.window)
        dialog.setObjectName("print-dialog")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.print_on(printer, table))
        dialog.open()
        return dialog

    def print_on(self, printer: Any, table: ExportTable | None = None) -> bool:
        table = table or self.current_table()
        if table is None:
            return False
        document.print_table(table, printer)
        self._say(f"Sent {len(table.rows)} rows to {printer.printerName() or 'the printer'}")
        return True

    # -- words -------------------------------------------------------------------------------
    def _say(self, words: str) -> None:
        window: QMainWindow = self.window
        window.statusBar().showMessage(words, 10000)

    def _fail(self, why: str) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Export failed", why, QMessageBox.StandardButton.Close, self.window
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()


def _round_view_place(page: Any) -> str:
    """What the round view shows: a round's name, "Tournament messages" (a tournament's batches
    with no round: private URLs, registration), or "" (nothing to export)."""
    if page.tournament is None:
        return ""
    if page.round is not None:
        return str(page.round.name)
    return TOURNAMENT_WIDE_NAME if page.model.tournament_wide is not None else ""
