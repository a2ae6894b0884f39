"""An ``ExportTable`` as CSV, as an HTML document, and through that as a PDF or a printout.

The PDF is laid out by ``QTextDocument`` (an HTML table: headers repeat on each page, problem
rows in bold red, page numbers at the foot) and written by ``QPdfWriter`` into memory, then to
an owner-only file, as every file tabmail writes. Printing goes through ``QPrinter``
(QtPrintSupport is loaded only when something is printed).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF
from PySide6.QtGui import QFont, QPagedPaintDevice, QPageLayout, QPageSize, QPdfWriter, QTextDocument

from tabmail.gui.export.table import ExportTable
from tabmail.services.files import write_csv_file, write_private_bytes

PROBLEM_COLOUR = "#a40000"
HEADER_BACKGROUND = "#e4e4e4"
GROUP_BACKGROUND = "#f2f2f2"


def write_csv(table: ExportTable, path: Path) -> int:
    """The table as an owner-only CSV file (cells safe for spreadsheets); rows written."""
    return write_csv_file(path, table.headers, table.rows)


def to_html(table: ExportTable) -> str:
    """The table as a self-contained HTML document (every value escaped); rows of a group
    (``group_column``) under a heading row instead of repeating it."""
    group = table.group_column
    shown = [i for i in range(len(table.headers)) if i != group]
    head = "".join(
        f"<th align='left' bgcolor='{HEADER_BACKGROUND}'>{escape(table.headers[i])}</th>" for i in shown
    )
    body = []
    current: str | None = None
    for row, marked in zip(table.rows, table.marked, strict=True):
        if group is not None and row[group] != current:
            current = row[group]
            body.append(
                f"<tr><td colspan='{len(shown)}' bgcolor='{GROUP_BACKGROUND}'><b>{escape(current)}</b></td></tr>"
            )
        style = f" style='color: {PROBLEM_COLOUR}; font-weight: bold'" if marked else ""
        body.append("<tr>" + "".join(f"<td{style}>{escape(row[i])}</td>" for i in shown) + "</tr>")
    if not table.rows:
        body.append(f"<tr><td colspan='{len(shown)}'><i>Nothing to show.</i></td></tr>")
    count = len(table.rows)
    return (
        "<html><head><meta charset='utf-8'>"
        f"<title>{escape(table.title)}</title></head><body>"
        f"<h2>{escape(table.title)}</h2>"
        f"<p>{escape(table.subtitle)}{' · ' if table.subtitle else ''}{count} row{'s' if count != 1 else ''}</p>"
        "<table border='1' cellspacing='0' cellpadding='4' width='100%'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>"
    )


def text_document(table: ExportTable) -> QTextDocument:
    doc = QTextDocument()
    font = QFont()
    font.setPointSizeF(8.5)
    if hasattr(font, "setFeature"):  # Qt 6.7+: no "fi" ligatures, so addresses copy as typed
        font.setFeature(QFont.Tag("liga"), 0)
    doc.setDefaultFont(font)
    doc.setHtml(to_html(table))
    return doc


def _lay_out(device: QPagedPaintDevice, table: ExportTable) -> None:
    wide = len(table.headers) - (table.group_column is not None) > 5
    device.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Landscape if wide else QPageLayout.Orientation.Portrait,
            QMarginsF(12, 12, 12, 12),
            QPageLayout.Unit.Millimeter,
        )
    )


def pdf_bytes(table: ExportTable) -> bytes:
    """The table as a PDF document, in memory."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(table.title)
    writer.setCreator("tabmail")
    writer.setResolution(300)
    _lay_out(writer, table)
    doc = text_document(table)
    print_document(doc, writer)
    del writer  # finishes the PDF into the buffer
    buffer.close()
    return bytes(data.data())


def write_pdf(table: ExportTable, path: Path) -> int:
    """The table as an owner-only PDF file; its size in bytes."""
    data = pdf_bytes(table)
    write_private_bytes(path, data)
    return len(data)


def print_document(doc: QTextDocument, device: Any) -> None:
    doc.print_(device)


def print_table(table: ExportTable, printer: Any) -> None:
    """Print the table on ``printer`` (a QPrinter the director chose in the print dialog)."""
    _lay_out(printer, table)
    print_document(text_document(table), printer)
