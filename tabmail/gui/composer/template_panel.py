"""The compose dialog's template side: the editor, and the templates a tournament keeps.

"Restore Default Template" (asked first: it discards the edits and the tournament's kept
templates) and "Keep for This Tournament" act on the kind of message the dialog shows; what
they did is said through ``notice`` (text, Tone), in the dialog's strip."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QMessageBox, QPushButton, QVBoxLayout, QWidget

from tabmail.compose.templates import TemplateRenderError, default_templates, preview_variables
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.domain.tournament import Tournament
from tabmail.gui.composer.editor import TemplateEditor
from tabmail.gui.theme import Theme, Tone
from tabmail.services import notify
from tabmail.services.context import AppContext


class TemplatePanel(QWidget):
    notice = Signal(str, object)  # text, Tone
    changed = Signal()  # the director edited a template

    def __init__(
        self,
        ctx: AppContext,
        tournament: Tournament,
        theme: Theme,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self.tournament = tournament
        self.kind: tuple[Event, Audience | None] = (Event.DRAW, Audience.ALL)
        self.editor = TemplateEditor(theme, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.editor)
        # The buttons sit in the dialog's bottom row.
        self.restore_button = QPushButton("Restore Default Template", parent)
        self.restore_button.clicked.connect(self.ask_restore_defaults)
        self.save_button = QPushButton("Keep for This Tournament", parent)
        self.save_button.setToolTip(
            "Use these templates for every later message of this kind in this tournament"
        )
        self.save_button.clicked.connect(self.save_for_tournament)
        self.editor.changed.connect(self._on_editor_changed)

    def templates(self) -> Templates:
        return self.editor.templates()

    def load(self, event: Event, audience: Audience | None, templates: Templates) -> None:
        """A plan for this kind arrived with ``templates`` (the tournament's kept ones, else the
        shipped ones): shown unless the director has edited the editor's."""
        self.kind = (event, audience)
        self.editor.set_variables(preview_variables(event))
        if not self.editor.edited:
            self.editor.set_templates(templates)
        self.restore_button.setEnabled(self.editor.edited or templates != default_templates(event, audience))

    def _on_editor_changed(self) -> None:
        self.restore_button.setEnabled(self.editor.edited)
        self.changed.emit()

    def ask_restore_defaults(self) -> QMessageBox:
        """Restoring throws away the edited templates (and the tournament's kept ones): ask first."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Restore default template",
            "Replace these templates with the shipped ones? Your edits here, and the templates kept "
            f"for {self.tournament.name} for this kind of message, are discarded.",
            QMessageBox.StandardButton.Cancel,
            self.window(),
        )
        box.setObjectName("confirm-restore-defaults")
        restore = box.addButton("Restore Default", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(
            lambda _code: self.restore_defaults() if box.clickedButton() is restore else None
        )
        box.open()
        return box

    def restore_defaults(self) -> None:
        """Back to the shipped templates, here and for the tournament's later messages."""
        event, audience = self.kind
        notify.save_templates(self._ctx, self.tournament.id, event, audience, None)
        self.editor.set_templates(default_templates(event, audience))
        self.restore_button.setEnabled(False)
        self.notice.emit("The shipped templates are used again for this kind of message.", Tone.GOOD)

    def save_for_tournament(self) -> None:
        event, audience = self.kind
        try:
            notify.save_templates(self._ctx, self.tournament.id, event, audience, self.editor.templates())
        except TemplateRenderError as exc:
            self.editor.mark_problems(exc.problems)
            self.notice.emit(str(exc), Tone.BAD)
            return
        self.notice.emit(
            f"These templates are now {self.tournament.name}'s default for this kind of message.", Tone.GOOD
        )

    def set_read_only(self, on: bool) -> None:
        self.editor.set_read_only(on)
        self.restore_button.setEnabled(not on)
        self.save_button.setEnabled(not on)
