"""Import dialog: a tournament from a Tabbycat site (REST API) or from a folder of CSV files."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import QStringListModel, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QListView,
    QPushButton,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.config import is_loopback_host
from tabmail.domain.errors import TabmailError
from tabmail.domain.imported import ImportResult
from tabmail.gui.run_op import cancel_ops, run_op
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import MessageStrip, muted_wrapping_label
from tabmail.services.context import AppContext

TOKEN = "tabbycat-token"


def _import_tabbycat(*args: Any, **kwargs: Any) -> ImportResult:
    from tabmail.services import importing  # lazily: the importers load requests and friends

    return importing.import_tabbycat(*args, **kwargs)


def _import_csv(*args: Any, **kwargs: Any) -> ImportResult:
    from tabmail.services import importing

    return importing.import_csv(*args, **kwargs)


@dataclass(frozen=True, slots=True)
class ImportFunctions:
    """The blocking use cases the dialog runs in a worker thread (replaceable in tests)."""

    # (ctx, url, slug, progress, token, *, insecure)
    tabbycat: Callable[..., ImportResult] = _import_tabbycat
    csv: Callable[..., ImportResult] = _import_csv  # (ctx, folder, name)


def split_tabbycat_url(text: str) -> tuple[str, str | None]:
    """Accept a site URL or a pasted tournament URL: (site URL, slug found in the path or None)."""
    text = text.strip().rstrip("/")
    parts = urlsplit(text)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme and parts.netloc and len(segments) == 1 and segments[0] not in ("api", "admin"):
        return f"{parts.scheme}://{parts.netloc}", segments[0]
    return text, None


def summarise(result: ImportResult) -> str:
    plurals = {"person": "people", "tournament": "tournament"}

    def counts(d: dict[str, int]) -> str:
        return ", ".join(
            f"{n} {kind if n == 1 else plurals.get(kind, kind + 's')}" for kind, n in sorted(d.items()) if n
        )

    parts = [f"Imported “{result.slug}”."]
    if result.created:
        parts.append(f"New: {counts(result.created)}.")
    if result.updated:
        parts.append(f"Updated: {counts(result.updated)}.")
    if not result.created and not result.updated:
        parts.append("Nothing had changed since the last import.")
    if result.address_changes:
        n = len(result.address_changes)
        parts.append(f"{n} email address{'' if n == 1 else 'es'} changed.")
    if result.deactivated:
        n = len(result.deactivated)
        parts.append(f"{n} {'person is' if n == 1 else 'people are'} no longer listed.")
    if result.problems:
        n = len(result.problems)
        parts.append(f"{n} row{'' if n == 1 else 's'} could not be imported (listed below).")
    return " ".join(parts)


class ImportDialog(QDialog):
    imported = Signal(int)  # tournament id, after each successful import

    def __init__(
        self,
        ctx: AppContext,
        parent: QWidget | None = None,
        functions: ImportFunctions | None = None,
        theme: Theme | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("import-dialog")
        self.setWindowTitle("Import a tournament")
        self.setMinimumWidth(620)
        self._ctx = ctx
        self._functions = functions or ImportFunctions()
        self._theme = theme or Theme()
        self.result: ImportResult | None = None

        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._build_tabbycat_tab(), "From Tabbycat")
        self.tabs.addTab(self._build_csv_tab(), "From CSV files")

        self.message = MessageStrip(self, self._theme)
        self.problems_title = QLabel("<b>Rows that could not be imported</b>", self)
        self.problems_model = QStringListModel(self)
        self.problems = QListView(self)
        self.problems.setObjectName("import-problems")
        self.problems.setModel(self.problems_model)
        self.problems.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.problems.setAlternatingRowColors(True)
        self.problems.setMinimumHeight(140)
        self.problems_title.hide()
        self.problems.hide()

        self.buttons = QDialogButtonBox(self)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setDefault(True)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.buttons.accepted.connect(self.start_import)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 18, 18, 14)
        layout.setSpacing(10)
        # The tabs never give up height to an error strip (their wrapped hints were cut off):
        # the dialog grows instead.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        self.tabs.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.tabs)
        layout.addWidget(self.message)
        layout.addWidget(self.problems_title)
        layout.addWidget(self.problems, 1)
        layout.addWidget(self.buttons)

    # -- building ---------------------------------------------------------------------
    def _build_tabbycat_tab(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        form.setContentsMargins(14, 14, 14, 14)
        form.setVerticalSpacing(8)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.url = QLineEdit(page)
        self.url.setPlaceholderText("https://mytournament.calicotab.com")
        self.slug = QLineEdit(page)
        self.slug.setPlaceholderText("the tournament's short name in its URLs, e.g. bp88")
        self.token = QLineEdit(page)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.remember = QCheckBox("Remember the token in the system keyring", page)
        reason = self._ctx.secrets.unavailable_reason
        source = self._ctx.secrets.source_of(TOKEN)
        if source == "keyring":
            self.token.setPlaceholderText("stored in the keyring; leave empty to use it")
        elif source == "environment":
            self.token.setPlaceholderText("taken from TABMAIL_TABBYCAT_TOKEN; leave empty to use it")
        else:
            self.token.setPlaceholderText("an admin's API token, so email addresses can be read")
        if reason:
            self.remember.setEnabled(False)
            self.remember.setToolTip(reason)
        form.addRow("Tabbycat site:", self.url)
        form.addRow("Tournament:", self.slug)
        form.addRow("API token:", self.token)
        form.addRow("", self.remember)
        self.insecure = QCheckBox("Allow a plain http:// site (the token travels unencrypted)", page)
        self.insecure.setObjectName("import-insecure")
        self.insecure.setToolTip(
            "Only for a site on your own network that has no certificate: anyone on the way "
            "can read the token and the participants' addresses."
        )
        form.addRow("", self.insecure)
        hint = muted_wrapping_label(
            "Tabbycat shows the token on the user's API page. Without the remember box it is "
            "used for this import only and never written anywhere.",
            page,
        )
        form.addRow("", hint)
        return page

    def _build_csv_tab(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        form.setContentsMargins(14, 14, 14, 14)
        form.setVerticalSpacing(8)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.folder = QLineEdit(page)
        self.folder.setPlaceholderText("a folder with teams.csv, adjudicators.csv, rounds.csv…")
        browse = QPushButton("Browse…", page)
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.csv_name = QLineEdit(page)
        self.csv_name.setPlaceholderText("optional; taken from the folder's name when empty")
        form.addRow("Folder:", row)
        form.addRow("Tournament name:", self.csv_name)
        hint = muted_wrapping_label("Tabbycat's CSV layout (its importer's files) is understood.", page)
        form.addRow("", hint)
        return page

    # -- actions ----------------------------------------------------------------------
    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the folder of CSV files", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def start_import(self) -> None:
        """Validate the form and run the import; problems are shown in the dialog."""
        self.message.clear_message()
        try:
            factory, label = self._prepare()
        except TabmailError as exc:
            self.message.show_message(str(exc), Tone.BAD)
            return
        run_op(
            self,
            factory,
            reports_progress=True,
            progress_label=label,
            action=self.import_button,
            on_success=self._show_result,
            title="Import",
        )

    def _prepare(self) -> tuple[Callable[[Any], Any], str]:
        ctx, fns = self._ctx, self._functions
        if self.tabs.currentIndex() == 0:
            url, slug_in_url = split_tabbycat_url(self.url.text())
            slug = self.slug.text().strip() or slug_in_url or ""
            if not url.startswith(("http://", "https://")):
                raise TabmailError("Enter the Tabbycat site's address, starting with https://")
            if not slug:
                raise TabmailError("Enter the tournament's slug (the part of its URLs after the site).")
            parts = urlsplit(url)
            insecure = self.insecure.isChecked()
            if parts.scheme == "http" and not insecure and not is_loopback_host(parts.netloc):
                raise TabmailError(
                    f"{parts.netloc} uses plain http://: the token and the participants' addresses "
                    "would travel in clear. Use https://, or tick “Allow a plain http:// site”."
                )
            token = self.token.text().strip() or None
            if token and self.remember.isChecked():
                ctx.secrets.set(TOKEN, token)
            return (
                lambda progress: asyncio.to_thread(
                    fns.tabbycat, ctx, url, slug, progress, token, insecure=insecure
                ),
                f"Importing {slug} from {urlsplit(url).netloc or url}…",
            )
        folder_text = self.folder.text().strip()
        if not folder_text:
            raise TabmailError("Choose the folder holding the CSV files.")
        folder = Path(folder_text).expanduser()
        if not folder.is_dir():
            raise TabmailError(f"There is no folder at {folder}.")
        name = self.csv_name.text().strip() or None
        return (
            lambda _progress: asyncio.to_thread(fns.csv, ctx, folder, name),
            f"Reading the CSV files in {folder.name}…",
        )

    def _show_result(self, result: ImportResult) -> None:
        self.result = result
        self.token.clear()
        problems = [str(p) for p in result.problems]
        tone = Tone.WARNING if problems else Tone.GOOD
        self.message.show_message(summarise(result), tone)
        self.problems_model.setStringList(problems)
        self.problems_title.setVisible(bool(problems))
        self.problems.setVisible(bool(problems))
        self.imported.emit(result.tournament_id)

    # -- closing ----------------------------------------------------------------------
    def reject(self) -> None:
        cancel_ops(self)
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        cancel_ops(self)
        super().closeEvent(event)
