"""Resending from the round view: one message, or every corrected one of a batch.

Both go through ``run_op`` (the action is disabled while it runs, failures get a dialog) and
``services.resend``; the outbox then runs in the background. When SendGrid holds the address on
a suppression list, nothing is queued and the director is asked whether to take it off there
first (``unsuppress=True``) — the question is a window-modal box, never a blocking ``exec``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox, QWidget

from tabmail.domain.problems import HAPPENED, Category
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.run_op import Op, run_op
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)


def _service() -> Any:
    from tabmail.services import resend as service

    return service


class Resender(QObject):
    """Signals: ``queued(words, new_ids)`` after resends were queued; ``suppressed_asked(box)``."""

    queued = Signal(str, list)  # what to tell the director, the new message ids
    suppression_question_opened = Signal(object)  # the QMessageBox asking about SendGrid's lists

    def __init__(
        self,
        ctx: AppContext,
        worker: BackgroundWorker | None,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._worker = worker
        self._parent = parent
        # The round view's categories (what happened to a message), for the dialog's words.
        self.category_of: Callable[[str], Category | None] | None = None

    # -- one message ----------------------------------------------------------------------------
    def resend(
        self,
        message_id: str,
        new_address: str | None,
        *,
        action: QAction | None = None,
        unsuppress: bool = False,
    ) -> Op:
        async def work() -> Any:
            return await _service().resend(self._ctx, message_id, new_address, unsuppress=unsuppress)

        return run_op(self._parent, work, action=action, title="Resend", on_success=self._on_resent_one)

    def _on_resent_one(self, result: Any) -> None:
        if str(result.outcome) == "suppressed":
            self._ask_unsuppress(
                [result], lambda: self.resend(result.original_id, result.address, unsuppress=True)
            )
            return
        self._after([result])

    # -- a batch --------------------------------------------------------------------------------
    def resend_corrected(
        self,
        batch_id: int,
        drafts: Mapping[str, str],
        *,
        action: QAction | None = None,
        unsuppress: bool = False,
    ) -> Op:
        """Resend every message of the batch corrected here (``drafts``) or in Participants."""

        async def work() -> list[Any]:
            service = _service()
            results = []
            for message_id, address in drafts.items():
                results.append(await service.resend(self._ctx, message_id, address, unsuppress=unsuppress))
            results += await service.resend_bounced(self._ctx, batch_id, unsuppress=unsuppress)
            return results

        def done(results: list[Any]) -> None:
            suppressed = [r for r in results if str(r.outcome) == "suppressed"]
            if suppressed:
                again = {r.original_id: r.address for r in suppressed}
                self._ask_unsuppress(suppressed, lambda: self._resend_suppressed(again))
            self._after([r for r in results if str(r.outcome) != "suppressed"], batch=not suppressed)

        return run_op(self._parent, work, action=action, title="Resend all corrected", on_success=done)

    def _resend_suppressed(self, targets: Mapping[str, str]) -> Op:
        async def work() -> list[Any]:
            service = _service()
            return [
                await service.resend(self._ctx, mid, address, unsuppress=True)
                for mid, address in targets.items()
            ]

        return run_op(self._parent, work, title="Resend", on_success=self._after)

    def _happened(self, message_id: str) -> str:
        """What happened to the original, in the one vocabulary ("the recipient reported it as spam")."""
        category = self.category_of(message_id) if self.category_of is not None else None
        return HAPPENED[category] if category is not None else "the earlier message had a problem"

    # -- shared ---------------------------------------------------------------------------------
    def _after(self, results: list[Any], batch: bool = True) -> None:
        new_ids = [r.new_message_id for r in results if r.new_message_id]
        if not results:
            if batch:
                self.queued.emit(
                    "Nothing to resend: no bounced message of this batch has a corrected address yet. "
                    "Correct an address in the list (double-click it) or in Participants first.",
                    [],
                )
            return
        batches = {r.batch_id for r in results}
        if self._worker is not None:
            for batch_id in batches:
                self._worker.run_outbox(batch_id)
        if len(results) == 1:
            r = results[0]
            words = f"Queued a resend to {r.address}" + ("; " + "; ".join(r.notes) if r.notes else "") + "."
        else:
            words = f"Queued {len(new_ids)} resends: " + ", ".join(r.address for r in results)
            practice = next((n for r in results for n in r.notes if n == _service().PRACTICE_ONLY), None)
            words += f" ({practice})." if practice else "."
        self.queued.emit(words, new_ids)

    def _ask_unsuppress(self, results: list[Any], go: Any) -> QMessageBox:
        if len(results) == 1:
            r = results[0]
            text = (
                f"{r.address} is on {_service().lists_words(r.suppressed_on)}, so SendGrid would drop "
                "the message without trying to deliver it."
            )
        else:
            text = (
                f"{len(results)} addresses are on SendGrid's suppression lists, so SendGrid would drop "
                "these messages: " + ", ".join(r.address for r in results)
            )
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Address suppressed by SendGrid",
            text,
            QMessageBox.StandardButton.Cancel,
            self._parent,
        )
        box.setObjectName("unsuppress-question")
        happened = {self._happened(r.original_id) for r in results}
        since = happened.pop() if len(happened) == 1 else "the earlier message had a problem"
        box.setInformativeText(
            "Remove it from SendGrid's lists and resend? Only do this if the address has been fixed "
            f"since {since}, or you know the mailbox works now."
        )
        remove = box.addButton("Remove and Resend", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(remove)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered() -> None:
            if box.clickedButton() is remove:
                go()

        box.finished.connect(lambda _code: answered())
        box.open()
        self.suppression_question_opened.emit(box)
        return box
