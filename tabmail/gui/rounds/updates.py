"""Keeping the round tree current in place, from the bridge's signals.

``RoundMessagesModel`` owns a ``RoundUpdater`` and connects the bridge's signals to it. Signals
only mark messages (or new batches) dirty; a short timer then re-reads them in slices of
``FLUSH_CHUNK`` and has the model emit ``dataChanged`` for exactly those rows (one spanning
range when many rows of a batch changed at once), or inserts the rows that are new. Nothing here
resets the model, so the view keeps its expansion and selection. Reply counts (from the tab
room's mailbox) and addresses corrected in Participants are re-read here too.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QTimer

from tabmail.domain.notification import Message
from tabmail.gui.rounds.nodes import BatchNode, MessageNode, RoundContents
from tabmail.services.context import AppContext
from tabmail.services.problems import tracked_batch_ids

if TYPE_CHECKING:
    from tabmail.gui.rounds.model import RoundMessagesModel

log = logging.getLogger(__name__)

FLUSH_DELAY_MS = 40
# Messages re-read per timer tick: a poll that changes 1,000 statuses is applied in slices of
# well under 100 ms each, so the window keeps answering while it catches up.
FLUSH_CHUNK = 100
MAX_SINGLE_ROW_SIGNALS = 8


class RoundUpdater:
    """Keeps the model's contents current (see the module docstring). ``model`` is the owner:
    the updater asks it what is shown and has it emit Qt's model signals."""

    def __init__(self, model: RoundMessagesModel, ctx: AppContext, contents: RoundContents) -> None:
        self._model = model
        self._ctx = ctx
        self._c = contents
        self.dirty: dict[str, int] = {}  # message id → batch id, re-read at the next flush
        self._new_batches: set[int] = set()
        self._flush_timer = QTimer(model)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_DELAY_MS)
        self._flush_timer.timeout.connect(self._on_flush_timer_timeout)

    @property
    def pending(self) -> bool:
        """True while changes reported by the bridge wait to be applied."""
        return bool(self.dirty or self._new_batches)

    def clear(self) -> None:
        """Forget what waits (the model is loading afresh)."""
        self.dirty.clear()
        self._new_batches.clear()

    # -- replies read from the tab room's mailbox ----------------------------------------------
    def load_replies(self, nodes: list[MessageNode], batch_ids: list[int] | None = None) -> list[MessageNode]:
        """Each row's reply count (one query); returns the rows whose count changed."""
        try:
            if batch_ids is not None:
                counts = self._ctx.inbox.reply_counts_in_batches(batch_ids)
            else:
                counts = self._ctx.inbox.reply_counts([n.message.id for n in nodes]) if nodes else {}
        except Exception:  # the round still shows without its reply markers
            log.warning("could not read the reply counts", exc_info=True)
            return []
        changed = []
        for node in nodes:
            fresh = counts.get(node.message.id, (0, 0))
            if fresh != node.replies:
                node.replies = fresh
                changed.append(node)
        return changed

    def on_replies_received(self, message_ids: list[str]) -> None:
        nodes = [self._c.messages[m] for m in message_ids if m in self._c.messages]
        for node in self.load_replies(nodes):
            self._model.row_changed(node)
        if nodes:
            self._model.replies_changed.emit()

    def refresh_replies(self) -> None:
        """Re-read every row's reply count (a reply was read in the message view)."""
        for node in self.load_replies(list(self._c.messages.values()), batch_ids=list(self._c.batches)):
            self._model.row_changed(node)
        self._model.replies_changed.emit()

    # -- addresses corrected in Participants ------------------------------------------------------
    def take_corrections(self, nodes: list[MessageNode]) -> list[MessageNode]:
        """A problem row whose person's address was corrected since (in Participants, or by an
        import) shows the corrected address, ready to resend. Returns the rows that changed."""
        wanted = [
            n
            for n in nodes
            if n.resendable and n.message.person_id and not n.draft and n.message.id not in self._c.resent_as
        ]
        if not wanted:
            return []
        current = self._ctx.problems.current_addresses([n.message.person_id or 0 for n in wanted])
        changed = []
        for node in wanted:
            address, key = current.get(node.message.person_id or 0, ("", None))
            if not address or key == node.key:
                continue
            node.draft = address
            flag = self._c.flags.get(node.key)
            node.update(node.message, flag.kind if flag else None)
            changed.append(node)
        return changed

    def on_person_changed(self, person_id: int) -> None:
        nodes = [n for n in self._c.messages.values() if n.message.person_id == person_id]
        if not nodes:
            return
        current = self._ctx.problems.current_addresses([person_id]).get(person_id)
        for node in nodes:
            if node.draft and node.resendable and (current is None or node.draft != current[0]):
                node.draft = None  # the address in Participants wins over an older correction here
                self._model.row_changed(node)
                self._model.draft_changed.emit(node.message.id)
        for node in self.take_corrections(nodes):
            self._model.row_changed(node)
            self._model.draft_changed.emit(node.message.id)

    # -- statuses, flags and new rows ---------------------------------------------------------------
    def recategorise(self, nodes: list[MessageNode]) -> None:
        """Categories that depend on an address flag (a bounce from an invalid address)."""
        for node in nodes:
            flag = self._c.flags.get(node.key)
            node.update(node.message, flag.kind if flag else None)

    def settle(self, batch: BatchNode) -> list[MessageNode]:
        """Resolutions and counts of a batch (a delivered resend resolves its original)."""
        # Tracked or not only matters to resends (is an accepted resend enough?): a batch without
        # any costs no query.
        b = batch.batch
        has_resends = any(c.message.resend_of for c in batch.children)
        is_tracked = has_resends and b.id in tracked_batch_ids(self._ctx, [(b.id, b.backend)])
        return batch.settle(self._c.manual, tracked=is_tracked)

    def _schedule(self) -> None:
        # Not a debounce: a steady stream of events (an outbox sending) must not starve it.
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def on_message_state_changed(self, message_id: str, batch_id: int, state: str) -> None:
        if batch_id in self._c.batches:
            self.dirty[message_id] = batch_id
        elif self._model.scoped and batch_id not in self._c.foreign_batches:
            self._new_batches.add(batch_id)
        else:
            return
        self._schedule()

    def on_statuses_changed(self, message_ids: list[str]) -> None:
        marked = False
        for mid in message_ids:
            node = self._c.messages.get(mid)
            if node is not None:
                self.dirty[mid] = node.batch_id
                marked = True
        if marked:
            self._schedule()

    def on_batch_queued(self, batch_id: int, count: int) -> None:
        if self._model.scoped and batch_id not in self._c.batches and batch_id not in self._c.foreign_batches:
            self._new_batches.add(batch_id)
            self._schedule()

    def add_batch(self, batch_id: int) -> None:
        """Show a batch just queued for this round now (the bridge's signal may come later)."""
        self.on_batch_queued(batch_id, 0)
        self.flush()

    def on_flags_changed(self, keys: list[str]) -> None:
        mine = [k for k in keys if k in self._c.by_key]
        if not mine:
            return
        fresh = self._ctx.flags.active(mine)
        touched: dict[int, list[int]] = {}
        for key in mine:
            if key in fresh:
                self._c.flags[key] = fresh[key]
            else:
                self._c.flags.pop(key, None)
            nodes = self._c.by_key[key]
            self.recategorise(nodes)  # a bounce from an address now flagged invalid reads "invalid"
            for node in nodes:
                touched.setdefault(node.batch_id, []).append(node.row)
        for bid, rows in touched.items():
            batch = self._c.batches[bid]
            self.settle(batch)
            self._model.rows_changed(batch, rows)
            self._model.batch_changed(batch)

    def flush(self) -> None:
        """Apply everything the bridge reported so far, now (the timer does it in slices)."""
        self._flush_timer.stop()
        while self.dirty or self._new_batches:
            self._flush_step(None)

    def _on_flush_timer_timeout(self) -> None:
        self._flush_step(FLUSH_CHUNK)
        if self.dirty or self._new_batches:
            self._flush_timer.start(0)  # the rest after the window had its turn
        else:
            self._flush_timer.setInterval(FLUSH_DELAY_MS)

    def _flush_step(self, limit: int | None) -> None:
        new_batches, self._new_batches = self._new_batches, set()
        if limit is None or len(self.dirty) <= limit:
            dirty, self.dirty = self.dirty, {}
        else:
            keys = list(self.dirty)[:limit]
            dirty = {k: self.dirty.pop(k) for k in keys}
        if new_batches:
            self._insert_batches(new_batches)
        by_batch: dict[int, list[str]] = {}
        for mid, bid in dirty.items():
            by_batch.setdefault(bid, []).append(mid)
        refreshed: list[str] = []
        for bid, ids in by_batch.items():
            if bid in self._c.batches:
                refreshed += self._refresh_batch_messages(self._c.batches[bid], ids)
        if refreshed:
            self._model.messages_refreshed.emit(refreshed)

    def _refresh_batch_messages(self, batch: BatchNode, ids: list[str]) -> list[str]:
        # One query for the slice, not one per message.
        fresh: dict[str, Message] = {m.id: m for m in self._ctx.notifications.messages(ids=ids)}
        for mid in set(ids) - set(fresh):
            log.debug("message %s vanished before it could be shown", mid)
        counts_before = Counter(batch.counts)
        manual = self._ctx.problems.resolutions(list(fresh))
        manual_changed = False
        for mid in fresh:
            if manual.get(mid) != self._c.manual.get(mid):
                manual_changed = True
            if mid in manual:
                self._c.manual[mid] = manual[mid]
            else:
                self._c.manual.pop(mid, None)
        updated: list[str] = []
        added: list[Message] = []
        rows: list[int] = []
        for mid, m in fresh.items():
            node = self._c.messages.get(mid)
            if node is None:
                added.append(m)
                continue
            bucket = node.bucket
            flag = self._c.flags.get(node.key)
            node.update(m, flag.kind if flag else None)
            batch.counts[bucket] -= 1
            batch.counts[node.bucket] += 1
            rows.append(node.row)
            updated.append(mid)
        if added:
            self._append_messages(batch, added)
        if added or manual_changed or any(m.resend_of for m in fresh.values()):
            # A delivered resend resolves its original (a new bounce un-resolves it), and the
            # director's word resolves a problem: work the batch's resolutions out again.
            for node in self.settle(batch):
                if node.message.id not in fresh:
                    rows.append(node.row)
                    updated.append(node.message.id)
        else:
            batch.counts = +batch.counts  # only these rows changed: their counts moved above
        self._model.rows_changed(batch, rows)
        if added or batch.counts != counts_before:
            self._model.batch_changed(batch)
        return updated

    def _append_messages(self, batch: BatchNode, messages: list[Message]) -> None:
        parent = self._model.createIndex(batch.row, 0, 0)
        first = len(batch.children)
        self._model.beginInsertRows(parent, first, first + len(messages) - 1)
        for m in messages:
            self._c.attach(m)
        self._model.endInsertRows()
        originals = [m.resend_of for m in messages if m.resend_of and m.resend_of in self._c.messages]
        for mid in originals:
            self._model.row_changed(self._c.messages[mid])
        self.refresh_flags(self._c.messages[m.id].key for m in messages)
        self._model.rows_added.emit([m.id for m in messages])

    def _insert_batches(self, batch_ids: Iterable[int]) -> None:
        wanted = set(batch_ids)
        summaries = [s for s in self._model.scope_batches() if s.batch.id in wanted]
        self._c.foreign_batches |= wanted - {s.batch.id for s in summaries}
        if not summaries:
            return
        messages = self._ctx.notifications.messages(batch_ids=[s.batch.id for s in summaries])
        by_batch: dict[int, list[Message]] = {}
        for m in messages:
            by_batch.setdefault(m.batch_id, []).append(m)
        # Newest first, like load(): new batches go on top.
        self._model.beginInsertRows(QModelIndex(), 0, len(summaries) - 1)
        nodes = [BatchNode(s.batch, i) for i, s in enumerate(summaries)]
        for node in nodes:
            self._c.batches[node.batch.id] = node
        self._c.order = nodes + self._c.order
        for row, node in enumerate(self._c.order):
            node.row = row
        for node in nodes:
            for m in by_batch.get(node.batch.id, ()):
                self._c.attach(m)
            self.settle(node)
        self._model.endInsertRows()
        self.refresh_flags(self._c.messages[m.id].key for m in messages)
        self._model.rows_added.emit([m.id for m in messages])

    def refresh_flags(self, keys: Iterable[str]) -> None:
        unknown = {k for k in keys if k and k not in self._c.flags}
        if unknown:
            self._c.flags.update(self._ctx.flags.active(list(unknown)))
