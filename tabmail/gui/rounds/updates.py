"""Keeping the round tree current in place, from the bridge's signals.

A mixin of ``RoundMessagesModel``. Signals only mark messages (or new batches) dirty; a short
timer then re-reads them in slices of ``FLUSH_CHUNK`` and emits ``dataChanged`` for exactly
those rows (one spanning range when many rows of a batch changed at once), or inserts the rows
that are new. Nothing here resets the model, so the view keeps its expansion and selection.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QTimer

from tabmail.domain.notification import AddressFlag, Message
from tabmail.domain.problems import Resolution
from tabmail.gui.rounds.nodes import BatchNode, Column, MessageNode
from tabmail.services.context import AppContext
from tabmail.services.problems import tracked_batch_ids
from tabmail.store.notifications import BatchSummary

AnyIndex = QModelIndex | QPersistentModelIndex
log = logging.getLogger(__name__)

FLUSH_DELAY_MS = 40
# Messages re-read per timer tick: a poll that changes 1,000 statuses is applied in slices of
# well under 100 ms each, so the window keeps answering while it catches up.
FLUSH_CHUNK = 100
MAX_SINGLE_ROW_SIGNALS = 8


class RoundUpdates:
    """The update half of ``RoundMessagesModel`` (see the module docstring)."""

    # The model's state this mixin works on (set in RoundMessagesModel.__init__ and load()).
    _ctx: AppContext
    round_id: int | None
    tournament_wide: int | None
    _order: list[BatchNode]
    _batches: dict[int, BatchNode]
    _messages: dict[str, MessageNode]
    _by_key: dict[str, list[MessageNode]]
    _flags: dict[str, AddressFlag]
    _manual: dict[str, Resolution]
    _foreign_batches: set[int]
    _dirty: dict[str, int]
    _new_batches: set[int]
    _flush_timer: QTimer

    @property
    def scoped(self) -> bool:
        """True when a round or a tournament's round-less batches are shown."""
        return self.round_id is not None or self.tournament_wide is not None

    def scope_batches(self) -> list[BatchSummary]:
        """The batches of what is shown, newest first (one query with the counts)."""
        if self.round_id is not None:
            return self._ctx.notifications.batches(round_id=self.round_id)
        if self.tournament_wide is not None:
            return self._ctx.notifications.batches(tournament_id=self.tournament_wide, no_round=True)
        return []

    def _recategorise(self, nodes: list[MessageNode]) -> None:
        """Categories that depend on an address flag (a bounce from an invalid address)."""
        for node in nodes:
            flag = self._flags.get(node.key)
            node.update(node.message, flag.kind if flag else None)

    def _settle(self, batch: BatchNode) -> list[MessageNode]:
        """Resolutions and counts of a batch (a delivered resend resolves its original)."""
        # Tracked or not only matters to resends (is an accepted resend enough?): a batch without
        # any costs no query.
        b = batch.batch
        has_resends = any(c.message.resend_of for c in batch.children)
        is_tracked = has_resends and b.id in tracked_batch_ids(self._ctx, [(b.id, b.backend)])
        return batch.settle(self._manual, tracked=is_tracked)

    def _emit_row(self, node: MessageNode) -> None:
        parent = self.createIndex(self._batches[node.batch_id].row, 0, 0)
        self.dataChanged.emit(
            self.index(node.row, 0, parent), self.index(node.row, len(Column) - 1, parent), []
        )

    def _emit_rows(self, batch: BatchNode, rows: list[int]) -> None:
        """dataChanged for these rows of a batch: one signal per row when there are a few, one
        spanning range when many (each signal makes the view and the proxy re-read the row, and
        the view re-measure its first row: hundreds of them cost more than one range)."""
        if not rows:
            return
        parent = self.createIndex(batch.row, 0, 0)
        last = len(Column) - 1
        if len(rows) <= MAX_SINGLE_ROW_SIGNALS:
            for row in rows:
                self.dataChanged.emit(self.index(row, 0, parent), self.index(row, last, parent), [])
        else:
            # From the second column: for a range that starts in the first, QTreeView asks every
            # row in it whether it has children (a flags() and a hasChildren() call into Python
            # per row: 3,000 rows of a batch at every slice of a poll); message rows never have
            # children. The first column is repainted by the view (``rows_restyled``).
            self.dataChanged.emit(self.index(min(rows), 1, parent), self.index(max(rows), last, parent), [])
            self.rows_restyled.emit()

    def _emit_batch(self, node: BatchNode) -> None:
        self.dataChanged.emit(
            self.createIndex(node.row, 0, 0), self.createIndex(node.row, len(Column) - 1, 0), []
        )

    def _schedule(self) -> None:
        # Not a debounce: a steady stream of events (an outbox sending) must not starve it.
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _on_bridge_message_state_changed(self, message_id: str, batch_id: int, state: str) -> None:
        if batch_id in self._batches:
            self._dirty[message_id] = batch_id
        elif self.scoped and batch_id not in self._foreign_batches:
            self._new_batches.add(batch_id)
        else:
            return
        self._schedule()

    def _on_bridge_statuses_changed(self, message_ids: list[str]) -> None:
        marked = False
        for mid in message_ids:
            node = self._messages.get(mid)
            if node is not None:
                self._dirty[mid] = node.batch_id
                marked = True
        if marked:
            self._schedule()

    def _on_bridge_batch_queued(self, batch_id: int, count: int) -> None:
        if self.scoped and batch_id not in self._batches and batch_id not in self._foreign_batches:
            self._new_batches.add(batch_id)
            self._schedule()

    def add_batch(self, batch_id: int) -> None:
        """Show a batch just queued for this round now (the bridge's signal may come later)."""
        self._on_bridge_batch_queued(batch_id, 0)
        self.flush()

    def _on_bridge_flags_changed(self, keys: list[str]) -> None:
        mine = [k for k in keys if k in self._by_key]
        if not mine:
            return
        fresh = self._ctx.flags.active(mine)
        touched: dict[int, list[int]] = {}
        for key in mine:
            if key in fresh:
                self._flags[key] = fresh[key]
            else:
                self._flags.pop(key, None)
            nodes = self._by_key[key]
            self._recategorise(nodes)  # a bounce from an address now flagged invalid reads "invalid"
            for node in nodes:
                touched.setdefault(node.batch_id, []).append(node.row)
        for bid, rows in touched.items():
            batch = self._batches[bid]
            self._settle(batch)
            self._emit_rows(batch, rows)
            self._emit_batch(batch)

    def flush(self) -> None:
        """Apply everything the bridge reported so far, now (the timer does it in slices)."""
        self._flush_timer.stop()
        while self._dirty or self._new_batches:
            self._flush_step(None)

    def _on_flush_timer_timeout(self) -> None:
        self._flush_step(FLUSH_CHUNK)
        if self._dirty or self._new_batches:
            self._flush_timer.start(0)  # the rest after the window had its turn
        else:
            self._flush_timer.setInterval(FLUSH_DELAY_MS)

    def _flush_step(self, limit: int | None) -> None:
        new_batches, self._new_batches = self._new_batches, set()
        if limit is None or len(self._dirty) <= limit:
            dirty, self._dirty = self._dirty, {}
        else:
            keys = list(self._dirty)[:limit]
            dirty = {k: self._dirty.pop(k) for k in keys}
        if new_batches:
            self._insert_batches(new_batches)
        by_batch: dict[int, list[str]] = {}
        for mid, bid in dirty.items():
            by_batch.setdefault(bid, []).append(mid)
        refreshed: list[str] = []
        for bid, ids in by_batch.items():
            if bid in self._batches:
                refreshed += self._refresh_batch_messages(self._batches[bid], ids)
        if refreshed:
            self.messages_refreshed.emit(refreshed)

    def _refresh_batch_messages(self, batch: BatchNode, ids: list[str]) -> list[str]:
        # One query for the slice, not one per message.
        fresh: dict[str, Message] = {m.id: m for m in self._ctx.notifications.messages(ids=ids)}
        for mid in set(ids) - set(fresh):
            log.debug("message %s vanished before it could be shown", mid)
        counts_before = Counter(batch.counts)
        manual = self._ctx.problems.resolutions(list(fresh))
        manual_changed = False
        for mid in fresh:
            if manual.get(mid) != self._manual.get(mid):
                manual_changed = True
            if mid in manual:
                self._manual[mid] = manual[mid]
            else:
                self._manual.pop(mid, None)
        updated: list[str] = []
        added: list[Message] = []
        rows: list[int] = []
        for mid, m in fresh.items():
            node = self._messages.get(mid)
            if node is None:
                added.append(m)
                continue
            bucket = node.bucket
            flag = self._flags.get(node.key)
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
            for node in self._settle(batch):
                if node.message.id not in fresh:
                    rows.append(node.row)
                    updated.append(node.message.id)
        else:
            batch.counts = +batch.counts  # only these rows changed: their counts moved above
        self._emit_rows(batch, rows)
        if added or batch.counts != counts_before:
            self._emit_batch(batch)
        return updated

    def _append_messages(self, batch: BatchNode, messages: list[Message]) -> None:
        parent = self.createIndex(batch.row, 0, 0)
        first = len(batch.children)
        self.beginInsertRows(parent, first, first + len(messages) - 1)
        for m in messages:
            self._attach(m)
        self.endInsertRows()
        originals = [m.resend_of for m in messages if m.resend_of and m.resend_of in self._messages]
        for mid in originals:
            self._emit_row(self._messages[mid])
        self._refresh_flags(self._messages[m.id].key for m in messages)
        self.rows_added.emit([m.id for m in messages])

    def _insert_batches(self, batch_ids: Iterable[int]) -> None:
        wanted = set(batch_ids)
        summaries = [s for s in self.scope_batches() if s.batch.id in wanted]
        self._foreign_batches |= wanted - {s.batch.id for s in summaries}
        if not summaries:
            return
        messages = self._ctx.notifications.messages(batch_ids=[s.batch.id for s in summaries])
        by_batch: dict[int, list[Message]] = {}
        for m in messages:
            by_batch.setdefault(m.batch_id, []).append(m)
        # Newest first, like load(): new batches go on top.
        self.beginInsertRows(QModelIndex(), 0, len(summaries) - 1)
        nodes = [BatchNode(s.batch, i) for i, s in enumerate(summaries)]
        for node in nodes:
            self._batches[node.batch.id] = node
        self._order = nodes + self._order
        for row, node in enumerate(self._order):
            node.row = row
        for node in nodes:
            for m in by_batch.get(node.batch.id, ()):
                self._attach(m)
            self._settle(node)
        self.endInsertRows()
        self._refresh_flags(self._messages[m.id].key for m in messages)
        self.rows_added.emit([m.id for m in messages])

    def _refresh_flags(self, keys: Iterable[str]) -> None:
        unknown = {k for k in keys if k and k not in self._flags}
        if unknown:
            self._flags.update(self._ctx.flags.active(list(unknown)))
