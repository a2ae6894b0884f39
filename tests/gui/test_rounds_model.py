"""The round tree: grouping, counts, filters, sorting, highlights and in-place updates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QTreeView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot
from sqlalchemy import event

from tabmail.domain.events import StatusesChanged
from tabmail.domain.notification import Audience, DeliveryStatus, Event, MessageState
from tabmail.domain.problems import Category as Bucket
from tabmail.gui.bridge import EventBridge
from tabmail.gui.collation import sort_key
from tabmail.gui.roles import Roles
from tabmail.gui.rounds import Column, RoundMessagesModel, RoundMessagesProxy, RoundRoles
from tabmail.gui.theme import Theme, Tone
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.status.events import ProviderEvent, derive_status, stable_event_id

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qapp")]

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def queue(ctx: AppContext, audience: Audience, round_seq: int = 1) -> int:
    slug = ctx.tournaments.list_all()[0].slug
    plan = notify.plan(ctx, slug, Event.DRAW, round_seq=round_seq, audience=audience)
    return notify.enqueue(ctx, plan).batch_id


def send(ctx: AppContext, batch_id: int, *, failed: int = 0) -> list[str]:
    """Mark every message of the batch sent (the last ``failed`` ones failed); returns the ids."""
    ids = [m.id for m in ctx.notifications.messages(batch_id=batch_id)]
    for i, mid in enumerate(ids):
        if i >= len(ids) - failed:
            ctx.notifications.mark_unsent(mid, MessageState.FAILED, "550 5.1.1 mailbox unavailable")
        else:
            ctx.notifications.mark_sent(mid, f"x-{mid}", "250 ok", T0)
    return ids


def report(
    ctx: AppContext, mid: str, status: DeliveryStatus, minutes: float, reason: str | None = None
) -> None:
    name = {DeliveryStatus.BOUNCED: "bounce", DeliveryStatus.DELIVERED: "delivered"}.get(status, status.value)
    ev = ProviderEvent(
        provider_event_id=stable_event_id(name, mid, minutes),
        name=name,
        status=status,
        event_time=T0 + timedelta(minutes=minutes),
        tabmail_id=mid,
        reason=reason,
        source="test",
    )
    ctx.tracking.ingest([ev], derive=derive_status, now=T0 + timedelta(hours=1))


@pytest.fixture
def demo(ctx: AppContext) -> AppContext:
    assert load_demo_if_empty(ctx) is not None
    return ctx


@pytest.fixture
def scenario(demo: AppContext) -> dict[str, object]:
    """Round 1: an older adjudicators batch (all delivered) and a newer teams batch with two
    bounces and one failure."""
    ctx = demo
    older = queue(ctx, Audience.ADJUDICATORS)
    for mid in send(ctx, older):
        report(ctx, mid, DeliveryStatus.DELIVERED, 1)
    newer = queue(ctx, Audience.TEAMS)
    ids = send(ctx, newer, failed=1)
    bounced = ids[:2]
    for mid in ids[2:-1]:
        report(ctx, mid, DeliveryStatus.DELIVERED, 2)
    for mid in bounced:
        report(ctx, mid, DeliveryStatus.BOUNCED, 3, "550 5.1.1 user unknown")
    round_id = ctx.tournaments.get_round(ctx.tournaments.list_all()[0].id, 1).id
    return {
        "older": older,
        "newer": newer,
        "bounced": bounced,
        "failed": ids[-1],
        "ids": ids,
        "round": round_id,
    }


@pytest.fixture
def bridge(demo: AppContext) -> Iterator[EventBridge]:
    b = EventBridge(demo.bus)
    yield b
    b.detach()


@pytest.fixture
def model(demo: AppContext, bridge: EventBridge, scenario: dict[str, object]) -> RoundMessagesModel:
    m = RoundMessagesModel(demo, Theme(), bridge)
    m.load(scenario["round"])  # type: ignore[arg-type]
    return m


def children(model: RoundMessagesModel | RoundMessagesProxy, parent: QModelIndex) -> list[str]:
    return [model.index(r, 0, parent).data(Roles.ID) for r in range(model.rowCount(parent))]


def test_the_tree_and_the_proxy_pass_the_model_tester(
    qtmodeltester: ModelTester, model: RoundMessagesModel, scenario: dict[str, object]
) -> None:
    qtmodeltester.check(model)
    proxy = RoundMessagesProxy()
    proxy.setSourceModel(model)
    proxy.sort(Column.STATUS, Qt.SortOrder.AscendingOrder)
    qtmodeltester.check(proxy)
    proxy.set_problems_only(True)
    proxy.set_search("a")
    qtmodeltester.check(proxy)


def test_batches_newest_first_with_their_messages_and_counts(
    model: RoundMessagesModel, scenario: dict[str, object], demo: AppContext
) -> None:
    assert [model.index(r, 0).data(Roles.ID) for r in range(model.rowCount())] == [
        scenario["newer"],
        scenario["older"],
    ]
    newer, older = model.index(0, 0), model.index(1, 0)
    assert newer.data(Roles.KIND) == "batch"
    assert newer.data() == "Draw release · teams"
    assert older.data() == "Draw release · adjudicators"
    assert set(children(model, newer)) == set(scenario["ids"])  # type: ignore[arg-type]
    counts = newer.data(RoundRoles.COUNTS)
    assert counts == {Bucket.DELIVERED: len(scenario["ids"]) - 3, Bucket.BOUNCED: 2, Bucket.FAILED: 1}  # type: ignore[arg-type]
    assert (
        model.index(0, Column.STATUS).data() == f"2 bounced · 1 failed · {counts[Bucket.DELIVERED]} delivered"
    )
    assert older.data(RoundRoles.COUNTS) == {Bucket.DELIVERED: model.rowCount(older)}
    assert model.index(0, Column.ROLE).data() == f"{len(scenario['ids'])} messages"  # type: ignore[arg-type]
    local = demo.notifications.get_batch(scenario["newer"]).created_at  # type: ignore[arg-type]
    assert model.index(0, Column.WHEN).data() == local.replace(
        tzinfo=local.tzinfo or UTC
    ).astimezone().strftime("%H:%M")


def test_bounced_and_failed_rows_and_their_batch_are_highlighted_with_more_than_colour(
    model: RoundMessagesModel, scenario: dict[str, object]
) -> None:
    theme = Theme()
    bounced = model.index_of_message(scenario["bounced"][0])  # type: ignore[index]
    row = [bounced.siblingAtColumn(c) for c in Column]
    assert bounced.data(Roles.STATUS) == "bounced" and bounced.data(Roles.PROBLEM) is True
    assert all(i.data(Qt.ItemDataRole.BackgroundRole) == theme.background(Tone.BAD) for i in row)
    status = bounced.siblingAtColumn(Column.STATUS)
    assert status.data() == "Bounced"  # words
    assert not status.data(Qt.ItemDataRole.DecorationRole).isNull()  # an icon
    font = status.data(Qt.ItemDataRole.FontRole)
    assert isinstance(font, QFont) and font.weight() >= QFont.Weight.DemiBold
    assert "550 5.1.1 user unknown" in status.data(Qt.ItemDataRole.ToolTipRole)
    failed = model.index_of_message(scenario["failed"], Column.STATUS)  # type: ignore[arg-type]
    assert failed.data() == "Failed" and failed.data(Roles.PROBLEM) is True
    assert "mailbox unavailable" in failed.data(Qt.ItemDataRole.ToolTipRole)
    delivered = model.index_of_message(scenario["ids"][3], Column.STATUS)  # type: ignore[index]
    assert delivered.data() == "Delivered" and delivered.data(Qt.ItemDataRole.BackgroundRole) is None
    newer, older = model.index_of_batch(scenario["newer"]), model.index_of_batch(scenario["older"])  # type: ignore[arg-type]
    assert newer.data(Qt.ItemDataRole.BackgroundRole) == theme.background(Tone.BAD)
    assert newer.data(Roles.PROBLEM) is True and newer.data(Roles.STATUS) == "bounced"
    assert older.data(Qt.ItemDataRole.BackgroundRole) != theme.background(Tone.BAD)
    assert older.data(Roles.PROBLEM) is False


def test_problems_only_keeps_a_batch_for_its_matching_children_and_search_matches_name_address_id(
    model: RoundMessagesModel, scenario: dict[str, object]
) -> None:
    proxy = RoundMessagesProxy()
    proxy.setSourceModel(model)
    proxy.set_problems_only(True)
    assert proxy.rowCount() == 1
    batch = proxy.index(0, 0)
    assert batch.data(Roles.ID) == scenario["newer"]
    assert set(children(proxy, batch)) == {*scenario["bounced"], scenario["failed"]}  # type: ignore[misc]
    proxy.set_problems_only(False)
    assert proxy.rowCount() == 2

    target = model.message(scenario["ids"][4])  # type: ignore[index]
    assert target is not None
    for needle in (target.recipient_name.upper(), target.address, target.id[-8:]):
        proxy.set_search(needle)
        found = [mid for r in range(proxy.rowCount()) for mid in children(proxy, proxy.index(r, 0))]
        assert target.id in found, needle
        assert len(found) < model.message_count()
    proxy.set_search("no such person anywhere")
    assert proxy.rowCount() == 0


def test_a_batch_the_filter_hides_shows_when_a_change_or_a_new_row_matches(
    demo: AppContext, model: RoundMessagesModel, scenario: dict[str, object]
) -> None:
    """The proxy decides a batch row itself (not Qt's recursive filtering): a batch hidden by the
    filter is looked at again when one of its rows becomes a problem or a matching row arrives."""
    import asyncio

    from tabmail.services.resend import resend

    proxy = RoundMessagesProxy()
    proxy.setSourceModel(model)
    proxy.set_problems_only(True)
    assert [proxy.index(r, 0).data(Roles.ID) for r in range(proxy.rowCount())] == [scenario["newer"]]
    older = model.message_ids(scenario["older"])  # type: ignore[arg-type]
    report(demo, older[0], DeliveryStatus.BOUNCED, 4, "550 5.1.1 user unknown")
    demo.bus.publish(StatusesChanged((older[0],)))
    model.flush()
    assert proxy.rowCount() == 2
    older_row = proxy.mapFromSource(model.index_of_batch(scenario["older"]))  # type: ignore[arg-type]
    assert children(proxy, older_row) == [older[0]]

    proxy.set_problems_only(False)
    proxy.set_search("resent.fixed")
    assert proxy.rowCount() == 0
    bounced = scenario["bounced"][0]  # type: ignore[index]
    result = asyncio.run(resend(demo, bounced, "resent.fixed@example.org"))
    model.flush()
    assert proxy.rowCount() == 1
    assert children(proxy, proxy.index(0, 0)) == [result.new_message_id]


def test_a_batch_queued_for_the_round_is_shown_at_once_on_top(
    demo: AppContext, model: RoundMessagesModel, scenario: dict[str, object]
) -> None:
    model.load(demo.tournaments.get_round(demo.tournaments.list_all()[0].id, 2).id)
    first = queue(demo, Audience.ADJUDICATORS, round_seq=2)
    model.add_batch(first)  # as the composer does, before the bridge says so
    assert model.batch_ids() == [first]
    batch = queue(demo, Audience.TEAMS, round_seq=2)
    model.add_batch(batch)
    assert model.batch_ids() == [batch, first]
    assert len(model.message_ids(batch)) == len(demo.notifications.messages(batch_id=batch))


def test_sorting_orders_messages_within_each_batch_and_keeps_batches_newest_first(
    model: RoundMessagesModel, scenario: dict[str, object]
) -> None:
    proxy = RoundMessagesProxy()
    proxy.setSourceModel(model)
    for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
        proxy.sort(Column.RECIPIENT, order)
        assert [proxy.index(r, 0).data(Roles.ID) for r in range(2)] == [scenario["newer"], scenario["older"]]
        batch = proxy.index(0, 0)
        names = [proxy.index(r, 0, batch).data() for r in range(proxy.rowCount(batch))]
        # Locale collation, not code points: "Céline" comes before "Chiara".
        assert names == sorted(names, key=sort_key, reverse=order == Qt.SortOrder.DescendingOrder)
        if order == Qt.SortOrder.AscendingOrder and "Céline Novak" in names and "Chiara Quiroga" in names:
            assert names.index("Céline Novak") < names.index("Chiara Quiroga")
    proxy.sort(Column.STATUS, Qt.SortOrder.AscendingOrder)
    batch = proxy.index(0, 0)
    statuses = [proxy.index(r, 0, batch).data(Roles.STATUS) for r in range(proxy.rowCount(batch))]
    assert statuses[:3] == ["bounced", "bounced", "failed"]  # worst first


def test_only_problem_addresses_are_editable_and_a_bad_address_is_refused(
    qtbot: QtBot, model: RoundMessagesModel, scenario: dict[str, object]
) -> None:
    bounced = model.index_of_message(scenario["bounced"][0], Column.ADDRESS)  # type: ignore[index]
    delivered = model.index_of_message(scenario["ids"][3], Column.ADDRESS)  # type: ignore[index]
    assert model.flags(bounced) & Qt.ItemFlag.ItemIsEditable
    assert not model.flags(delivered) & Qt.ItemFlag.ItemIsEditable
    assert not model.setData(delivered, "someone@example.org")
    with qtbot.waitSignal(model.draft_rejected) as rejected:
        assert not model.setData(bounced, "not an address")
    assert rejected.args[0] == scenario["bounced"][0]  # type: ignore[index]
    assert model.setData(bounced, "  Fixed@Example.org ")
    assert bounced.data(RoundRoles.DRAFT) == "Fixed@example.org"
    assert bounced.data() == "Fixed@example.org"
    assert bounced.data(Qt.ItemDataRole.EditRole) == "Fixed@example.org"
    assert bounced.siblingAtColumn(Column.STATUS).data() == "Bounced · corrected"
    assert model.drafts(scenario["newer"]) == {scenario["bounced"][0]: "Fixed@example.org"}  # type: ignore[index,arg-type]


def test_a_poll_updates_only_the_affected_rows_keeping_selection_and_expansion(
    qtbot: QtBot, demo: AppContext, model: RoundMessagesModel, scenario: dict[str, object]
) -> None:
    proxy = RoundMessagesProxy()
    proxy.setSourceModel(model)
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(Column.RECIPIENT, Qt.SortOrder.AscendingOrder)
    view.expandAll()
    older = proxy.mapFromSource(model.index_of_batch(scenario["older"]))  # type: ignore[arg-type]
    view.collapse(older)
    selected_id = scenario["ids"][5]  # type: ignore[index]
    view.selectionModel().setCurrentIndex(
        proxy.mapFromSource(model.index_of_message(selected_id)),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    changed: list[tuple[object, int, int]] = []
    model.dataChanged.connect(
        lambda tl, br, roles: changed.append((tl.parent().data(Roles.ID), tl.row(), br.row()))
    )
    resets: list[bool] = []
    model.modelAboutToBeReset.connect(lambda: resets.append(True))

    target = scenario["ids"][6]  # type: ignore[index]
    report(demo, target, DeliveryStatus.BOUNCED, 9, "552 mailbox full")
    with qtbot.waitSignal(model.messages_refreshed) as refreshed:
        demo.bus.publish(StatusesChanged((target,)))
    assert refreshed.args == [[target]]
    row = model.index_of_message(target).row()
    batch_row = model.index_of_batch(scenario["newer"]).row()  # type: ignore[arg-type]
    assert sorted(changed, key=str) == sorted(
        [(scenario["newer"], row, row), (None, batch_row, batch_row)], key=str
    )
    assert not resets
    assert model.index_of_message(target).data(Roles.STATUS) == "bounced"
    assert model.batch_counts(scenario["newer"])[Bucket.BOUNCED] == 3  # type: ignore[arg-type]
    assert proxy.mapToSource(view.currentIndex()).data(Roles.ID) == selected_id
    assert view.isExpanded(proxy.mapFromSource(model.index_of_batch(scenario["newer"])))  # type: ignore[arg-type]
    assert not view.isExpanded(proxy.mapFromSource(model.index_of_batch(scenario["older"])))  # type: ignore[arg-type]

    # Many at once (a poll): still only the affected batch, in place, and the counts follow.
    changed.clear()
    many = scenario["ids"][8:28]  # type: ignore[index]
    for mid in many:
        report(demo, mid, DeliveryStatus.OPENED, 12)
    with qtbot.waitSignal(model.messages_refreshed):
        demo.bus.publish(StatusesChanged(tuple(many)))
    # delivered -> opened: the batch's counts stay, so its row is not even touched
    assert {parent for parent, _, _ in changed} == {scenario["newer"]}
    covered = {r for _, first, last in changed for r in range(first, last + 1)}
    assert {model.index_of_message(mid).row() for mid in many} <= covered
    assert not resets
    assert all(model.status_of(mid) == "opened" for mid in many)
    assert model.batch_counts(scenario["newer"])[Bucket.DELIVERED] == len(scenario["ids"]) - 4  # type: ignore[arg-type]
    assert proxy.mapToSource(view.currentIndex()).data(Roles.ID) == selected_id

    # Messages of other rounds are not this model's business: nothing is read or emitted.
    changed.clear()
    demo.bus.publish(StatusesChanged(("01UNKNOWNMESSAGE",)))
    model.flush()
    assert changed == []


def test_a_resend_appears_under_its_batch_linked_to_the_original(
    qtbot: QtBot, demo: AppContext, model: RoundMessagesModel, scenario: dict[str, object], qloop: object
) -> None:
    import asyncio

    from tabmail.services.resend import resend

    original = scenario["bounced"][0]  # type: ignore[index]
    batch_index = model.index_of_batch(scenario["newer"])  # type: ignore[arg-type]
    before = model.rowCount(batch_index)
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda parent, first, last: inserted.append((first, last)))
    task = asyncio.ensure_future(resend(demo, original, "corrected@example.org"))
    qtbot.waitUntil(task.done, timeout=5000)
    new_id = task.result().new_message_id
    qtbot.waitUntil(lambda: model.message(new_id) is not None, timeout=3000)
    assert inserted == [(before, before)]
    new = model.index_of_message(new_id)
    assert new.parent().data(Roles.ID) == scenario["newer"]
    assert new.siblingAtColumn(Column.ADDRESS).data() == "corrected@example.org"
    assert new.data(Roles.STATUS) == "queued"
    assert model.resent_as(original) == [new_id]
    assert model.index_of_message(original, Column.STATUS).data() == "Bounced · resent"
    assert batch_index.data(RoundRoles.COUNTS)[Bucket.PENDING] == 1


@pytest.mark.both_engines
def test_a_2000_message_round_loads_with_a_handful_of_queries(
    demo: AppContext, bridge: EventBridge, scenario: dict[str, object]
) -> None:
    from tabmail.store.notifications import NewMessage

    batch = demo.notifications.get_batch(scenario["newer"])  # type: ignore[arg-type]
    template = demo.notifications.messages(batch_id=batch.id)[0]
    extra = [
        NewMessage(
            id=f"BULK{i:06d}",
            person_id=None,
            recipient_name=f"Person {i}",
            role="speaker",
            address=f"p{i}@example.org",
            address_key=f"p{i}@example.org",
            envelope_from="tab@example.org",
            envelope_to=f"p{i}@example.org",
            subject="Draw",
            context=template.context,
            reasons=("you speak",),
            raw=b"Subject: Draw\r\n\r\nHello\r\n",
            message_id_header=f"<BULK{i:06d}@example.org>",
        )
        for i in range(2000)
    ]
    demo.notifications.add_messages(batch.id, extra)
    statements: list[str] = []
    binds: list[int] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))
        params = args[3]
        binds.append(len(params) if isinstance(params, dict | list | tuple) else 0)

    event.listen(demo.db.engine, "before_cursor_execute", count)
    try:
        model = RoundMessagesModel(demo, Theme(), bridge)
        model.load(scenario["round"])  # type: ignore[arg-type]
    finally:
        event.remove(demo.db.engine, "before_cursor_execute", count)
    assert model.message_count() > 2000
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # batches and their counts, messages, flags; resolutions and corrected addresses of problems;
    # the reply counts read from the tab room's mailbox
    assert len(selects) <= 7, selects
    if demo.db.engine.dialect.name == "postgresql":
        # the round's 2,000 address keys go to PostgreSQL as one array, not 2,000 parameters
        assert max(binds) < 20, list(zip(binds, statements, strict=True))


def test_a_search_starting_or_ending_lays_nothing_out_again(model: RoundMessagesModel) -> None:
    """The first keystroke of a search re-sorted the proxy (turning its dynamic filter on), a
    layout change that makes the tree lay out every row again: 2,000 rows of a round."""
    proxy = RoundMessagesProxy()
    proxy.setSourceModel(model)
    layouts: list[object] = []
    proxy.layoutChanged.connect(lambda *args: layouts.append(args))
    proxy.set_search("a")
    proxy.set_search("")
    proxy.set_problems_only(True)
    proxy.set_problems_only(False)
    assert layouts == []
    assert proxy.rowCount() == model.rowCount()


def test_a_cleared_search_is_laid_out_without_asking_the_source_for_parents(
    demo: AppContext, bridge: EventBridge, scenario: dict[str, object], qtbot: QtBot
) -> None:
    """The view asks every row's flags twice per layout; the proxy answered a message row's by
    asking the source model for the row's parent (a Python call each: 4,000 per keystroke on
    a 2,000-message round)."""
    asked: list[int] = []

    class CountingModel(RoundMessagesModel):
        def parent(self, child=None):  # type: ignore[no-untyped-def]
            if child is not None:
                asked.append(child.row())
            return super().parent(child)

    model = CountingModel(demo, Theme(), bridge)
    model.load(scenario["round"])  # type: ignore[arg-type]
    proxy = RoundMessagesProxy()
    proxy.setSourceModel(model)
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.expandAll()
    proxy.set_search("no such name anywhere")
    view.doItemsLayout()
    proxy.set_search("")
    view.expandAll()  # as the round view does when a batch row comes back
    asked.clear()
    view.doItemsLayout()
    rows = sum(proxy.rowCount(proxy.index(r, 0)) for r in range(proxy.rowCount()))
    assert rows == model.message_count() > 10
    assert len(asked) < rows  # it was more than two per row
    batch = proxy.index(0, 0)
    message = proxy.index(0, 0, batch)
    assert not proxy.flags(batch) & Qt.ItemFlag.ItemNeverHasChildren
    assert proxy.flags(message) & Qt.ItemFlag.ItemNeverHasChildren
    assert proxy.flags(QModelIndex()) == model.flags(QModelIndex())
