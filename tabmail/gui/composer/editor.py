"""The template editor: subject, plain-text and HTML bodies, and the variables they may use.

Problems found by the dialog (syntax errors with their line numbers, unknown variables and
other rendering errors) are marked on the lines they come from, so the director sees where to
look without reading a list first; ``describe_problems`` turns them into one line per distinct
problem, naming how many recipients it affects.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QStandardItem, QStandardItemModel, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QTextEdit,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tabmail.compose.templates import TemplateProblem
from tabmail.domain.notification import Templates
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import muted_label

PART_NAMES = {"subject": "Subject", "text": "Plain text", "html": "HTML"}
_LINE = re.compile(r"^line (\d+):\s*")
_NAMES = (
    re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined"),
    re.compile(r"has no attribute '([A-Za-z_][A-Za-z0-9_]*)'"),
)


def problem_lines(source: str, message: str) -> list[int]:
    """The 1-based lines of ``source`` a problem points at (a syntax error's line, or every line
    using the unknown name)."""
    if m := _LINE.match(message):
        return [int(m.group(1))]
    for pattern in _NAMES:
        if m := pattern.search(message):
            word = re.compile(rf"\b{re.escape(m.group(1))}\b")
            return [i for i, line in enumerate(source.splitlines(), 1) if word.search(line)]
    return []


def describe_problems(problems: Sequence[TemplateProblem], sources: Templates, limit: int = 8) -> list[str]:
    """One sentence per distinct problem: where it is and whom it affects."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for p in problems:
        grouped.setdefault((p.part, p.message), [])
        if p.recipient:
            grouped[(p.part, p.message)].append(p.recipient)
    text_of = {"subject": sources.subject, "text": sources.text, "html": sources.html or ""}
    out = []
    for (part, message), who in list(grouped.items())[:limit]:
        where = PART_NAMES.get(part, part)
        lines = [] if _LINE.match(message) else problem_lines(text_of.get(part, ""), message)
        if lines:
            where += f", line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines[:5]))}"
        sentence = f"{where}: {message}"
        if who:
            names = ", ".join(who[:3]) + (f" and {len(who) - 3} more" if len(who) > 3 else "")
            sentence += f" (for {names})"
        out.append(sentence)
    if len(grouped) > limit:
        out.append(f"… and {len(grouped) - limit} more problems")
    return out


def _code_editor(parent: QWidget) -> QPlainTextEdit:
    editor = QPlainTextEdit(parent)
    editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    editor.setTabChangesFocus(True)
    return editor


class TemplateEditor(QWidget):
    changed = Signal()

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("template-editor")
        self._theme = theme
        self._loading = False
        self.edited = False
        self._last_body: QPlainTextEdit | None = None
        self.marked_lines: dict[str, list[int]] = {"text": [], "html": []}

        self.subject = QLineEdit(self)
        self.subject.setObjectName("template-subject")
        self.subject.setPlaceholderText("Subject, e.g. {{ ROUND }} draw: you are in {{ VENUE }}")
        self.text = _code_editor(self)
        self.text.setObjectName("template-text")
        self.html = _code_editor(self)
        self.html.setObjectName("template-html")
        self.html.setPlaceholderText("Leave empty to send plain text only")
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.text, "Plain text")
        self.tabs.addTab(self.html, "HTML")

        self.variables_model = QStandardItemModel(0, 2, self)
        self.variables_model.setHorizontalHeaderLabels(["Variable", "Meaning"])
        self.variables = QTreeView(self)
        self.variables.setObjectName("template-variables")
        self.variables.setModel(self.variables_model)
        self.variables.setRootIsDecorated(False)
        self.variables.setUniformRowHeights(True)
        self.variables.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.variables.setToolTip("Double-click a variable to insert it at the cursor")
        self.variables.header().resizeSection(0, 120)
        self.variables.doubleClicked.connect(self._on_variables_double_clicked)
        side = QWidget(self)
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(muted_label("Variables (double-click to insert)", side))
        sl.addWidget(self.variables, 1)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        split.addWidget(self.tabs)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        subject_row = QHBoxLayout()
        subject_row.addWidget(QLabel("Subject:", self))
        subject_row.addWidget(self.subject, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(subject_row)
        layout.addWidget(split, 1)

        self.subject.textChanged.connect(self._on_edited)
        self.text.textChanged.connect(self._on_edited)
        self.html.textChanged.connect(self._on_edited)
        self.text.cursorPositionChanged.connect(lambda: setattr(self, "_last_body", self.text))
        self.html.cursorPositionChanged.connect(lambda: setattr(self, "_last_body", self.html))

    # -- contents -----------------------------------------------------------------------------
    def templates(self) -> Templates:
        html = self.html.toPlainText()
        return Templates(self.subject.text(), self.text.toPlainText(), html if html.strip() else None)

    def set_templates(self, templates: Templates) -> None:
        self._loading = True
        try:
            self.subject.setText(templates.subject)
            self.subject.setCursorPosition(0)
            self.text.setPlainText(templates.text)
            self.html.setPlainText(templates.html or "")
        finally:
            self._loading = False
        self.edited = False
        self.changed.emit()

    def set_variables(self, variables: Sequence[tuple[str, str]]) -> None:
        self.variables_model.removeRows(0, self.variables_model.rowCount())
        for name, meaning in variables:
            n = QStandardItem(name)
            n.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
            m = QStandardItem(meaning)
            m.setToolTip(meaning)
            self.variables_model.appendRow([n, m])

    def set_read_only(self, on: bool) -> None:
        for w in (self.subject, self.text, self.html):
            w.setReadOnly(on)

    def _on_edited(self) -> None:
        if not self._loading:
            self.edited = True
            self.changed.emit()

    def _on_variables_double_clicked(self, index: object) -> None:
        row = index.row()  # type: ignore[attr-defined]
        name = self.variables_model.item(row, 0).text()
        target = self._last_body or self.text
        if self.subject.hasFocus():
            self.subject.insert(f"{{{{ {name} }}}}")
            return
        target.insertPlainText(f"{{{{ {name} }}}}")
        target.setFocus()

    # -- problems -------------------------------------------------------------------------------
    def mark_problems(self, problems: Sequence[TemplateProblem]) -> None:
        """Highlight the lines the problems point at (and the subject field if it has one)."""
        t = self.templates()
        sources = {"text": (self.text, t.text), "html": (self.html, t.html or "")}
        bad: dict[str, set[int]] = {"text": set(), "html": set()}
        subject_bad = False
        for p in problems:
            if p.part == "subject":
                subject_bad = True
            elif p.part in sources:
                bad[p.part].update(problem_lines(sources[p.part][1], p.message))
        for part, (editor, _) in sources.items():
            editor.setExtraSelections([self._line_selection(editor, n) for n in sorted(bad[part])])
        self.subject.setStyleSheet(
            f"QLineEdit {{ border: 1px solid {self._theme.accent(Tone.BAD).name()}; }}" if subject_bad else ""
        )
        for i, part in enumerate(("text", "html")):
            self.tabs.setTabText(i, PART_NAMES[part] + (" ⚠" if bad[part] else ""))
        self.marked_lines = {k: sorted(v) for k, v in bad.items()}

    def _line_selection(self, editor: QPlainTextEdit, line: int) -> QTextEdit.ExtraSelection:
        selection = QTextEdit.ExtraSelection()
        selection.format.setBackground(self._theme.background(Tone.BAD))
        selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        block = editor.document().findBlockByNumber(max(0, line - 1))
        cursor = QTextCursor(block)
        selection.cursor = cursor
        return selection
