"""The round view's actions on its rows: resend (one message or a batch's corrected ones),
correct an address in place, Retry Now, Cancel Sending, Mark Resolved and its undo, the
context menu and the clipboard. ``RoundActions`` is owned by ``RoundMessagesPage`` (``page.row_actions``)
and acts on the page's current row; the page tells it what is selected (``update_for``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QObject, QPoint, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QInputDialog, QMenu, QMessageBox

from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Message
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.model import MESSAGE, Column
from tabmail.gui.rounds.resending import Resender
from tabmail.gui.theme import Tone
from tabmail.gui.undo import DoneCommand
from tabmail.services import problems as problem_service
from tabmail.services import schedule as schedule_service
from tabmail.services.context import AppContext

if TYPE_CHECKING:
    from tabmail.gui.rounds.page import RoundMessagesPage


class RoundActions(QObject):
    def __init__(self, ctx: AppContext, worker: BackgroundWorker | None, page: RoundMessagesPage) -> None:
        super().__init__(page)
        self._ctx = ctx
        self._worker = worker
        self._page = page
        self.resender = Resender(ctx, worker, page)
        self.resender.category_of = page.model.category_of
        self.resender.queued.connect(self._on_resender_queued)
        self._build()
        page.model.draft_rejected.connect(self._on_model_draft_rejected)
        page.model.draft_edited.connect(self._on_model_draft_edited)

    def update_for(self, kind: str | None, message: Message | None) -> None:
        """What can be done to the selected row (``kind`` None: nothing selected)."""
        model = self._page.model
        mid = message.id if message is not None else None
        self.resend_action.setEnabled(bool(mid and model.is_resendable(mid)))
        self.edit_address_action.setEnabled(self.resend_action.isEnabled())
        writable = not self._ctx.read_only
        self.resend_all_action.setEnabled(kind is not None and writable)
        state = message.state.value if message is not None else None
        self.retry_action.setEnabled(writable and state in ("retrying", "failed"))
        self.cancel_action.setEnabled(writable and state in ("queued", "retrying"))
        self.resolve_action.setEnabled(writable and bool(mid and model.is_problem(mid)))

    # -- building ---------------------------------------------------------------------------------
    def _build(self) -> None:
        def action(text: str, shortcut: str | None, slot: object, tip: str) -> QAction:
            a = QAction(text, self._page)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.setToolTip(tip)
            a.triggered.connect(slot)  # type: ignore[arg-type]
            self._page.addAction(a)
            return a

        self.resend_action = action("&Resend", "Ctrl+R", self.resend_current, "Resend this message")
        self.edit_address_action = action(
            "&Correct Address…", "F2", self.edit_current_address, "Correct the address"
        )
        self.resend_all_action = action(
            "Resend &All Corrected",
            None,
            self._on_resend_all_triggered,
            "Resend every corrected message of the batch",
        )
        self.retry_action = action(
            "Retry &Now", None, self._on_retry_triggered, "Send this message again now"
        )
        self.cancel_action = action(
            "&Cancel Sending",
            None,
            self._on_cancel_triggered,
            "Do not send this message (it becomes skipped)",
        )
        self.resolve_action = action(
            "&Mark Resolved…", None, self._on_resolve_triggered, "This problem needs nothing more (say why)"
        )
        self.copy_address_action = action("Copy &Address", None, self._copy_address, "Copy the address")
        self.copy_id_action = action("Copy Message &Id", None, self._copy_id, "Copy tabmail's message id")
        self.resend_action.setEnabled(False)
        self.edit_address_action.setEnabled(False)

    # -- editing and resending --------------------------------------------------------------------
    def edit_current_address(self) -> None:
        mid = self._page.current_message_id()
        if not mid or not self._page.model.is_resendable(mid):
            return
        index = self._page.proxy.mapFromSource(self._page.model.index_of_message(mid, Column.ADDRESS))
        self._page.tree.setCurrentIndex(index)
        self._page.tree.edit(index, QAbstractItemView.EditTrigger.AllEditTriggers, None)

    def resend_current(self) -> None:
        mid = self._page.current_message_id()
        if mid and self._page.model.is_resendable(mid):
            self.resend(mid)

    def resend(self, message_id: str) -> None:
        self.resender.resend(message_id, self._page.model.draft(message_id), action=self.resend_action)

    def resend_corrected(self, batch_id: int) -> None:
        self.resender.resend_corrected(
            batch_id, self._page.model.drafts(batch_id), action=self.resend_all_action
        )

    def _on_resend_all_triggered(self) -> None:
        batch_id = self._page.current_batch_id()
        if batch_id is not None:
            self.confirm_resend_corrected(batch_id)

    def cancel_scheduled(self, batch_id: int) -> QMessageBox:
        """Ask, then cancel a scheduled batch before its time (its messages become skipped)."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Cancel scheduled send",
            "Cancel this scheduled batch? Its waiting messages will not be sent (they are kept, "
            "marked skipped).",
            QMessageBox.StandardButton.No,
            self._page,
        )
        box.setObjectName("confirm-cancel-scheduled")
        go = box.addButton("Cancel the Batch", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(_code: int) -> None:
            if box.clickedButton() is not go:
                return
            try:
                n = schedule_service.cancel(self._ctx, batch_id)
            except TabmailError as exc:  # it started meanwhile
                self._page.notice.show_message(str(exc), Tone.WARNING)
                return
            self._page.notice.show_message(f"Cancelled: {n} message(s) will not be sent.", Tone.NEUTRAL)
            if self._page.model.scoped:
                self._page.model.reload()
                self._page.select_batch(batch_id)

        box.finished.connect(answered)
        box.open()
        return box

    def confirm_resend_corrected(self, batch_id: int) -> QMessageBox:
        """Ask before resending a whole batch's corrected messages (a window-modal box)."""
        drafts = self._page.model.drafts(batch_id)
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Resend all corrected",
            f"Resend every message of this batch whose address was corrected "
            f"({len(drafts)} here, plus any corrected in Participants)?",
            QMessageBox.StandardButton.Cancel,
            self._page,
        )
        box.setObjectName("confirm-resend-corrected")
        if drafts:
            box.setInformativeText("\n".join(f"{self._recipient(mid)} → {a}" for mid, a in drafts.items()))
        go = box.addButton("Resend", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(go)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(
            lambda _code: self.resend_corrected(batch_id) if box.clickedButton() is go else None
        )
        box.open()
        return box

    def _recipient(self, message_id: str) -> str:
        m = self._page.model.message(message_id)
        return m.recipient_name if m else message_id

    def resend_if_resendable(self, message_id: str) -> None:
        if self._page.model.is_resendable(message_id):
            self.resend(message_id)

    def correct_address(self, message_id: str, text: str) -> None:
        before = self._page.model.draft(message_id)
        problem = self._page.model.set_draft(message_id, text)
        if problem:
            self._page.notice.show_message(problem, Tone.BAD)
        elif self._page.model.draft(message_id) != before:
            self._on_model_draft_edited(message_id, before or "", self._page.model.draft(message_id) or "")

    def _on_model_draft_edited(self, message_id: str, old: str, new: str) -> None:
        """A corrected address typed in: undoable (Edit → Undo)."""
        if self._page.undo_stack is None:
            return
        name = self._recipient(message_id)
        what = f"correct {name}'s address to {new}" if new else f"clear {name}'s corrected address"
        self._page.undo_stack.push(
            DoneCommand(
                what,
                lambda: self._page.model.set_draft(message_id, new or None),
                lambda: self._page.model.set_draft(message_id, old or None),
            )
        )

    def _on_model_draft_rejected(self, message_id: str, problem: str) -> None:
        self._page.notice.show_message(problem, Tone.BAD)

    def _on_resender_queued(self, words: str, new_ids: list[str]) -> None:
        self._page.model.flush()  # show the new rows now, not at the next timer tick
        for mid in new_ids:
            m = self._page.model.message(mid)
            if m is not None and m.resend_of:
                self._page.model.clear_draft(m.resend_of)
        self._page.notice.show_message(words, Tone.GOOD if new_ids else Tone.NEUTRAL)
        self._page._refresh_detail(new_ids)

    # -- per message: retry now, cancel, mark resolved ------------------------------------------
    def _on_retry_triggered(self) -> None:
        if (mid := self._page.current_message_id()) is not None:
            self.retry_now(mid)

    def _on_cancel_triggered(self) -> None:
        if (mid := self._page.current_message_id()) is not None:
            self.cancel_message(mid)

    def _on_resolve_triggered(self) -> None:
        if (mid := self._page.current_message_id()) is not None:
            self.ask_resolve(mid)

    def retry_now(self, message_id: str) -> None:
        try:
            m = problem_service.retry_now(self._ctx, message_id)
        except TabmailError as exc:
            self._page.notice.show_message(str(exc), Tone.BAD)
            return
        if self._worker is not None:
            self._worker.run_outbox(m.batch_id)
        self._page.notice.show_message(f"Sending the message to {m.address} again now.", Tone.GOOD)

    def cancel_message(self, message_id: str) -> None:
        try:
            m = problem_service.cancel(self._ctx, message_id)
        except TabmailError as exc:
            self._page.notice.show_message(str(exc), Tone.BAD)
            return
        self._page.notice.show_message(
            f"Cancelled: the message to {m.address} will not be sent (skipped).", Tone.NEUTRAL
        )

    def ask_resolve(self, message_id: str) -> QInputDialog:
        """Ask why the problem is resolved (window-modal), then mark it (undoable)."""
        dialog = QInputDialog(self._page)
        dialog.setObjectName("resolve-reason")
        dialog.setWindowTitle("Mark resolved")
        dialog.setLabelText(
            f"Why does the problem with {self._recipient(message_id)}'s message need nothing more?"
        )
        dialog.setTextValue("")
        dialog.setOkButtonText("Mark Resolved")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(lambda reason: self.resolve(message_id, reason))
        dialog.open()
        return dialog

    def resolve(self, message_id: str, reason: str) -> bool:
        try:
            problem_service.mark_resolved(self._ctx, message_id, reason)
        except TabmailError as exc:
            self._page.notice.show_message(str(exc), Tone.BAD)
            return False
        self._page.model.flush()
        if self._page.undo_stack is not None:
            self._page.undo_stack.push(
                DoneCommand(
                    f"mark {self._recipient(message_id)}'s problem resolved",
                    lambda: problem_service.mark_resolved(self._ctx, message_id, reason),
                    lambda: problem_service.unmark_resolved(self._ctx, message_id),
                    lambda text: self._page.notice.show_message(text, Tone.BAD),
                )
            )
        self._page.notice.show_message(f"Marked resolved: {reason}", Tone.GOOD)
        return True

    def unresolve(self, message_id: str) -> None:
        resolution = self._page.model.resolution(message_id)
        try:
            problem_service.unmark_resolved(self._ctx, message_id)
        except TabmailError as exc:
            self._page.notice.show_message(str(exc), Tone.BAD)
            return
        self._page.model.flush()
        if self._page.undo_stack is not None and resolution is not None:
            reason = resolution.reason
            self._page.undo_stack.push(
                DoneCommand(
                    f"unmark {self._recipient(message_id)}'s problem as resolved",
                    lambda: problem_service.unmark_resolved(self._ctx, message_id),
                    lambda: problem_service.mark_resolved(self._ctx, message_id, reason),
                    lambda text: self._page.notice.show_message(text, Tone.BAD),
                )
            )

    # -- context menu and clipboard ---------------------------------------------------------------
    def show_context_menu(self, pos: QPoint) -> None:
        index = self._page.tree.indexAt(pos)
        if index.isValid():
            self._page.tree.setCurrentIndex(index)
            self.context_menu(index).popup(self._page.tree.viewport().mapToGlobal(pos))

    def context_menu(self, index: QModelIndex) -> QMenu:
        """The row's actions (they act on the current row)."""
        menu = QMenu(self._page)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if index.data(Roles.KIND) == MESSAGE:
            for a in (self.resend_action, self.edit_address_action):
                menu.addAction(a)
            for a in (self.retry_action, self.cancel_action, self.resolve_action):
                if a.isEnabled():
                    menu.addAction(a)
            menu.addSeparator()
            menu.addAction(self.copy_address_action)
            menu.addAction(self.copy_id_action)
            menu.addSeparator()
        menu.addAction(self.resend_all_action)
        return menu

    def _copy_address(self) -> None:
        mid = self._page.current_message_id()
        m = self._page.model.message(mid) if mid else None
        if m is not None:
            QGuiApplication.clipboard().setText(self._page.model.draft(m.id) or m.address)

    def _copy_id(self) -> None:
        mid = self._page.current_message_id()
        if mid:
            QGuiApplication.clipboard().setText(mid)
