"""The settings dialog's Inbox page: the tab room's mailbox, read over IMAP for bounces, spam
reports and participants' replies (whatever the sending backend), with its Test button."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from tabmail.gui.settings.pages import BackendBox, FieldSet, align_labels
from tabmail.gui.widgets import muted_label

IMAP_SECURITY = (
    ("ssl", "TLS from the start (usually port 993)"),
    ("starttls", "STARTTLS (usually port 143)"),
    ("none", "None (only for a server on this computer)"),
)


def build_inbox_page(fs: FieldSet, parent: QWidget) -> tuple[QWidget, BackendBox]:
    page = QWidget(parent)
    outer = QVBoxLayout(page)
    outer.setContentsMargins(8, 8, 8, 8)
    outer.setSpacing(10)
    box = BackendBox("inbox", "The tab room's mailbox (IMAP)", page)
    rows = [
        ("Server:", fs.line("imap.host", "empty: the mailbox is not read")),
        ("Port:", fs.line("imap.port", "993", number=True)),
        ("Encryption:", fs.combo("imap.security", IMAP_SECURITY)),
        ("User name:", fs.line("imap.username", "tab@example.org")),
        ("Password:", fs.secret("imap-password")),
        ("Folder:", fs.line("imap.folder", "INBOX")),
        (
            "Check every:",
            fs.line(
                "imap.poll_seconds",
                "60",
                number=True,
                hint="Seconds between checks when the server cannot announce new mail (IMAP IDLE).",
            ),
        ),
        (
            "Move read mail to:",
            fs.line("imap.processed_folder", "empty: never move or delete anything"),
        ),
    ]
    for i, (label, widget) in enumerate(rows):
        box.form.insertRow(i, label, widget)

    ca = fs.line("tls.ca_file", "empty: the system's certificates")
    ca_edit = ca.editor
    assert isinstance(ca_edit, QLineEdit)
    browse = QPushButton("Browse…", box)

    def choose_ca() -> None:
        chosen, _ = QFileDialog.getOpenFileName(page, "CA certificate (PEM)", ca_edit.text())
        if chosen:
            ca_edit.setText(chosen)

    browse.clicked.connect(choose_ca)
    row = QHBoxLayout()
    row.setSpacing(6)
    row.addWidget(ca, 1)
    row.addWidget(browse, 0, Qt.AlignmentFlag.AlignTop)
    box.form.insertRow(len(rows), "Own CA file:", row)
    box.form.insertRow(
        len(rows) + 1,
        "",
        fs.check(
            "smtp.verp", "Name each message in its return address (tab+tm-<id>@…), for servers that keep it"
        ),
    )
    note = muted_label(
        "Bounces, spam reports and replies that reach this mailbox update the messages' status, "
        "whichever way mail is sent. Nothing is deleted; the CA file is also used for SMTP."
    )
    note.setWordWrap(True)
    outer.addWidget(box)
    outer.addWidget(note)
    outer.addStretch(1)
    align_labels(page)
    return page, box
