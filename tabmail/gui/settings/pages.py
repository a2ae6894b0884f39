"""The settings dialog's pages: sending (with one box per backend) and general."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.domain.practice import EXPLANATION as PRACTICE_EXPLANATION
from tabmail.domain.practice import LABEL as PRACTICE_LABEL
from tabmail.gui.settings.fields import SecretField, SettingField
from tabmail.gui.theme import Theme
from tabmail.gui.widgets import muted_label
from tabmail.store.secrets import SecretStore

BACKENDS = (
    ("smtp", "SMTP server"),
    ("sendgrid", "SendGrid Web API"),
    ("file", "Files only (dry run: nothing is sent)"),
    (PRACTICE, PRACTICE_LABEL),
)
SMTP_SECURITY = (
    ("starttls", "STARTTLS (usually port 587)"),
    ("tls", "TLS from the start (usually port 465)"),
    ("none", "None (only for a server on this computer)"),
)
NUMBER_WIDTH = 110


class FieldSet:
    """Creates the editors of a page and remembers them, keyed by setting or secret name."""

    def __init__(self, theme: Theme, secrets: SecretStore) -> None:
        self.theme = theme
        self.secrets_store = secrets
        self.fields: dict[str, SettingField] = {}
        self.secrets: dict[str, SecretField] = {}

    def line(
        self,
        key: str,
        placeholder: str = "",
        *,
        number: bool = False,
        is_address: bool = False,
        hint: str = "",
    ) -> SettingField:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        if number:
            edit.setMaximumWidth(NUMBER_WIDTH)
            edit.setAlignment(Qt.AlignmentFlag.AlignRight)
        return self._add(SettingField(key, edit, self.theme, is_address=is_address, hint=hint))

    def combo(self, key: str, choices: tuple[tuple[str, str], ...]) -> SettingField:
        box = QComboBox()
        for value, label in choices:
            box.addItem(label, value)
        return self._add(SettingField(key, box, self.theme))

    def check(self, key: str, text: str) -> SettingField:
        return self._add(SettingField(key, QCheckBox(text), self.theme))

    def secret(self, name: str) -> SecretField:
        field = SecretField(name, self.secrets_store, self.theme)
        self.secrets[name] = field
        return field

    def _add(self, field: SettingField) -> SettingField:
        self.fields[field.key] = field
        return field


def _form(parent: QWidget) -> QFormLayout:
    form = QFormLayout(parent)
    form.setContentsMargins(12, 12, 12, 12)
    form.setHorizontalSpacing(14)
    form.setVerticalSpacing(8)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return form


def align_labels(page: QWidget) -> None:
    """Give every form label on a page one width, so the fields line up across group boxes."""
    labels: list[QWidget] = []
    for form in page.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and item.widget() is not None:
                labels.append(item.widget())
    width = max((label.sizeHint().width() for label in labels), default=0)
    for label in labels:
        label.setMinimumWidth(width)


class BackendBox(QGroupBox):
    """A backend's settings with its Test button and the test's inline result."""

    test_clicked = Signal(str)  # backend name

    def __init__(self, backend: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.backend = backend
        self.setObjectName(f"backend-{backend}")
        self.form = _form(None)
        self.test_button = QPushButton("Test", self)
        self.test_button.setObjectName(f"test-{backend}")
        self.test_button.clicked.connect(lambda: self.test_clicked.emit(self.backend))
        self.test_result = QLabel(self)
        self.test_result.setWordWrap(True)
        self.test_result.setObjectName(f"test-result-{backend}")
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.test_button.setToolTip("Try these settings as typed, without saving them; nothing is sent")
        # The result can run to several lines: below the form, as wide as the box.
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 8)
        outer.addLayout(self.form)
        row = QHBoxLayout()
        row.setContentsMargins(12, 0, 12, 0)
        row.addWidget(self.test_button)
        row.addStretch(1)
        outer.addLayout(row)
        self.test_result.setContentsMargins(12, 0, 12, 0)
        outer.addWidget(self.test_result)


def build_sending_page(fs: FieldSet, parent: QWidget) -> tuple[QWidget, dict[str, BackendBox]]:
    page = QWidget(parent)
    outer = QVBoxLayout(page)
    outer.setContentsMargins(8, 8, 8, 8)
    outer.setSpacing(10)

    general = QGroupBox("Sender", page)
    form = _form(general)
    backend = fs.combo("backend", BACKENDS)
    form.addRow("Send with:", backend)
    form.addRow("From name:", fs.line("from_name", "empty: “<tournament> Tab Room”"))
    form.addRow("From address:", fs.line("from_address", "tab@example.org", is_address=True))
    form.addRow("Reply-To:", fs.line("reply_to", "empty: replies go to the From address", is_address=True))
    outer.addWidget(general)

    boxes: dict[str, BackendBox] = {}
    stack = QStackedWidget(page)

    smtp = BackendBox("smtp", "SMTP server", stack)
    smtp.form.insertRow(0, "Host:", fs.line("smtp.host", "smtp.example.org"))
    smtp.form.insertRow(1, "Port:", fs.line("smtp.port", "587", number=True))
    smtp.form.insertRow(2, "Encryption:", fs.combo("smtp.security", SMTP_SECURITY))
    smtp.form.insertRow(3, "User name:", fs.line("smtp.username", "empty: no login"))
    smtp.form.insertRow(4, "Password:", fs.secret("smtp-password"))
    limits = QHBoxLayout()
    limits.setSpacing(8)
    for key, label in (
        ("smtp.connections", "connections at once,"),
        ("smtp.rate_per_minute", "messages a minute (0: no limit)"),
    ):
        field = fs.line(key, number=True)
        unit = muted_label(label)
        unit.setMinimumHeight(field.editor.sizeHint().height())  # level with the box's text
        limits.addWidget(field, 0, Qt.AlignmentFlag.AlignTop)
        limits.addWidget(unit, 0, Qt.AlignmentFlag.AlignTop)
    limits.addStretch(1)
    smtp.form.insertRow(5, "Limits:", limits)
    boxes["smtp"] = smtp

    sendgrid = BackendBox("sendgrid", "SendGrid Web API", stack)
    sendgrid.form.insertRow(0, "API key:", fs.secret("sendgrid-api-key"))
    sendgrid.form.insertRow(1, "API address:", fs.line("sendgrid.base_url", "https://api.sendgrid.com"))
    sendgrid.form.insertRow(
        2, "", fs.check("sendgrid.sandbox", "Sandbox mode: SendGrid checks each message but delivers nothing")
    )
    boxes["sendgrid"] = sendgrid

    files = BackendBox("file", "Files (dry run)", stack)
    directory = fs.line("file.directory", "empty: the data folder")
    browse = QPushButton("Browse…", files)
    directory_edit = directory.editor
    assert isinstance(directory_edit, QLineEdit)

    def choose_directory() -> None:
        chosen = QFileDialog.getExistingDirectory(page, "Folder for the .eml files", directory_edit.text())
        if chosen:
            directory_edit.setText(chosen)

    browse.clicked.connect(choose_directory)
    row = QHBoxLayout()
    row.setSpacing(6)
    row.addWidget(directory, 1)
    row.addWidget(browse, 0, Qt.AlignmentFlag.AlignTop)
    files.form.insertRow(0, "Folder:", row)
    note = muted_label("Every message is written as an .eml file you can open; nothing leaves this computer.")
    note.setWordWrap(True)
    files.form.insertRow(1, "", note)
    boxes["file"] = files

    practice = BackendBox(PRACTICE, PRACTICE_LABEL, stack)
    explanation = muted_label(
        PRACTICE_EXPLANATION + " Use it for the demo and to rehearse a release; the pretend bounces "
        "are forgotten when another backend is chosen."
    )
    explanation.setWordWrap(True)
    practice.form.insertRow(0, "", explanation)
    boxes[PRACTICE] = practice

    for box in boxes.values():
        stack.addWidget(box)
    combo = backend.editor
    assert isinstance(combo, QComboBox)

    def show_backend() -> None:
        box = boxes.get(str(combo.currentData()))
        if box is not None:
            stack.setCurrentWidget(box)

    combo.currentIndexChanged.connect(lambda _: show_backend())
    show_backend()
    outer.addWidget(stack)
    outer.addStretch(1)
    align_labels(page)
    return page, boxes


APPEARANCES = (
    ("system", "Follow the system"),
    ("light", "Light"),
    ("dark", "Dark"),
)


def build_general_page(fs: FieldSet, parent: QWidget) -> QWidget:
    page = QWidget(parent)
    outer = QVBoxLayout(page)
    outer.setContentsMargins(8, 8, 8, 8)
    outer.setSpacing(10)

    appearance = QGroupBox("Appearance", page)
    form = _form(appearance)
    form.addRow("Colours:", fs.combo("appearance", APPEARANCES))
    outer.addWidget(appearance)

    tracking = QGroupBox("Delivery tracking", page)
    form = _form(tracking)
    form.addRow(
        "Check every:",
        fs.line(
            "poll.interval_seconds",
            "60",
            number=True,
            hint="Seconds between checks for delivery events while tabmail is open (10 or more).",
        ),
    )
    outer.addWidget(tracking)

    test_mode = QGroupBox("Test mode", page)
    form = _form(test_mode)
    form.addRow(
        "Send everything to:",
        fs.line(
            "test_mode.reroute_to",
            "empty: test mode is off",
            is_address=True,
            hint="While set, every message goes to this address instead of its recipient, "
            "and the window shows a TEST MODE banner.",
        ),
    )
    outer.addWidget(test_mode)

    tabbycat = QGroupBox("Tabbycat", page)
    form = _form(tabbycat)
    form.addRow("API token:", fs.secret("tabbycat-token"))
    form.addRow(
        "",
        fs.check(
            "tabbycat.write_back",
            "Write addresses corrected for a resend back to Tabbycat (needs an admin token)",
        ),
    )
    outer.addWidget(tabbycat)
    outer.addStretch(1)
    align_labels(page)
    return page
