"""The compose dialog's template side: the editor, and the templates a tournament keeps.

"Restore Default Template" (asked first: it discards the edits and the tournament's kept
templates) and "Keep for This Tournament" act on the template shown; what they did is said
through ``notice`` (text, Tone), in the dialog's strip.

A changes-only draw re-release has two templates: the draw for the changed and new people, and
the notice to those no longer in the draw. "Template:" chooses which one the editor shows; the
other keeps its text (and whether it was edited) until it is shown again."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from tabmail.compose.changes import Change
from tabmail.compose.templates import TemplateRenderError, preview_variables
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.domain.tournament import Tournament
from tabmail.gui.composer.editor import TemplateEditor
from tabmail.gui.theme import Theme, Tone
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.notify import PlannedRecipient


def gets_removal(planned: PlannedRecipient) -> bool:
    """Changes-only: no longer in the draw, so gets the removal notice."""
    return planned.change is Change.REMOVED


CHOICES = (
    ("The draw: changed and new people", False),
    ("Removal notice: people no longer in the draw", True),
)


class TemplatePanel(QWidget):
    notice = Signal(str, object)  # text, Tone
    changed = Signal()  # the director edited a template
    switched = Signal(bool)  # the editor now shows the removal notice (True) or the main template

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
        self.removal_shown = False
        self._other: dict[bool, tuple[Templates, bool]] = {}  # the set not shown: (texts, edited)
        self.editor = TemplateEditor(theme, self)
        self.choice = QComboBox(self)
        self.choice.setObjectName("template-choice")
        for label, removal in CHOICES:
            self.choice.addItem(label, removal)
        self.choice.setToolTip(
            "A changes-only re-release sends two messages: the draw to those whose assignment changed "
            "(or who are new), and a notice to those no longer in the draw"
        )
        self.choice_row = QWidget(self)
        row = QHBoxLayout(self.choice_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Template:", self.choice_row))
        row.addWidget(self.choice, 1)
        self.choice_row.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.choice_row)
        layout.addWidget(self.editor, 1)
        # The buttons sit in the dialog's bottom row.
        self.restore_button = QPushButton("Restore Default Template", parent)
        self.restore_button.clicked.connect(self.ask_restore_defaults)
        self.save_button = QPushButton("Keep for This Tournament", parent)
        self.save_button.setToolTip(
            "Use these templates for every later message of this kind in this tournament"
        )
        self.save_button.clicked.connect(self.save_for_tournament)
        self.editor.changed.connect(self._on_editor_changed)
        self.choice.currentIndexChanged.connect(lambda _: self.show_removal(bool(self.choice.currentData())))

    # -- the two sets ---------------------------------------------------------------------------
    def templates(self) -> Templates:
        """The kind's own templates (a changes-only draw: the draw's)."""
        return self._other[False][0] if self.removal_shown else self.editor.templates()

    def removal(self) -> Templates | None:
        """Changes-only: the removal notice's templates; None otherwise."""
        if self.removal_shown:
            return self.editor.templates()
        other = self._other.get(True)
        return other[0] if other else None

    def for_removed(self, removed: bool) -> Templates:
        """The templates a recipient gets (``removed``: a changes-only removal notice)."""
        removal = self.removal() if removed else None
        return removal if removal is not None else self.templates()

    def load(
        self, event: Event, audience: Audience | None, templates: Templates, removal: Templates | None = None
    ) -> None:
        """A plan for this kind arrived with ``templates`` (the tournament's kept ones, else the
        shipped ones; ``removal``: a changes-only plan's removal notice): each shown unless the
        director has edited it."""
        self.kind = (event, audience)
        if removal is None and self.removal_shown:
            self.choice.setCurrentIndex(0)  # back to the main template
        incoming = {False: templates, True: removal}
        for which, texts in incoming.items():
            if which == self.removal_shown:
                if texts is not None and not self.editor.edited:
                    self.editor.set_templates(texts)
            elif texts is None:
                self._other.pop(which, None)
            elif which not in self._other or not self._other[which][1]:
                self._other[which] = (texts, False)
        self.choice_row.setVisible(removal is not None)
        self._refresh()

    def show_removal(self, removal: bool) -> None:
        """Show the removal notice (True) or the main template in the editor."""
        if removal == self.removal_shown or removal not in self._other:
            self.choice.setCurrentIndex(1 if self.removal_shown else 0)
            return
        self._other[self.removal_shown] = (self.editor.templates(), self.editor.edited)
        texts, edited = self._other.pop(removal)
        self.removal_shown = removal
        self.choice.setCurrentIndex(1 if removal else 0)
        self.editor.set_templates(texts)
        self.editor.edited = edited
        self._refresh()
        self.switched.emit(removal)

    def why_no_preview(self, other: PlannedRecipient | None, rows: list[PlannedRecipient]) -> str:
        """Why nothing is previewed: no recipient, or (changes-only) the one selected, ``other``,
        gets the template the editor does not show."""
        if other is None:
            return "No recipient to preview."
        if self.removal_shown and not any(gets_removal(p) for p in rows):
            return "Nobody gets the removal notice now: no one who had a draw email is out of the draw."
        gets, shown = (
            ("the removal notice", "the draw") if gets_removal(other) else ("the draw", "the removal notice")
        )
        marked = "Removed" if self.removal_shown else "Changed or New"
        return (
            f"{other.recipient.name} gets {gets}, not {shown}: select someone marked {marked} to preview it."
        )

    def _shipped(self) -> Templates:
        event, audience = self.kind
        return notify.shipped_templates(event, audience, removal=self.removal_shown)

    def _refresh(self) -> None:
        self.editor.set_variables(preview_variables(self.kind[0], removal=self.removal_shown))
        self.restore_button.setEnabled(self.editor.edited or self.editor.templates() != self._shipped())

    def _on_editor_changed(self) -> None:
        self.restore_button.setEnabled(self.editor.edited)
        self.changed.emit()

    def _what(self) -> str:
        return "the removal notice" if self.removal_shown else "this kind of message"

    # -- kept per tournament --------------------------------------------------------------------
    def ask_restore_defaults(self) -> QMessageBox:
        """Restoring throws away the edited templates (and the tournament's kept ones): ask first."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Restore default template",
            "Replace these templates with the shipped ones? Your edits here, and the templates kept "
            f"for {self.tournament.name} for {self._what()}, are discarded.",
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
        notify.save_templates(
            self._ctx, self.tournament.id, event, audience, None, removal=self.removal_shown
        )
        self.editor.set_templates(self._shipped())
        self.restore_button.setEnabled(False)
        self.notice.emit(f"The shipped templates are used again for {self._what()}.", Tone.GOOD)

    def save_for_tournament(self) -> None:
        event, audience = self.kind
        try:
            notify.save_templates(
                self._ctx,
                self.tournament.id,
                event,
                audience,
                self.editor.templates(),
                removal=self.removal_shown,
            )
        except TemplateRenderError as exc:
            self.editor.mark_problems(exc.problems)
            self.notice.emit(str(exc), Tone.BAD)
            return
        self.notice.emit(
            f"These templates are now {self.tournament.name}'s default for {self._what()}.", Tone.GOOD
        )

    def set_read_only(self, on: bool) -> None:
        self.editor.set_read_only(on)
        self.choice.setEnabled(not on)
        self.restore_button.setEnabled(not on)
        self.save_button.setEnabled(not on)
