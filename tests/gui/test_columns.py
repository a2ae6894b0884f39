"""Column widths fitted to the table's width (gui/columns.py) in the round and problems views.

At the window's first-start size the round view's address column was squeezed to 28 px (header
"Add", no address readable) and the problems view's reason column to 34 px (header "easo"): the
stretched column took what the fixed widths of the others left over. Participants' own tests are
in test_participants.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QHeaderView, QStyle
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, DeliveryStatus
from tabmail.gui.bridge import EventBridge
from tabmail.gui.columns import ColumnPlan
from tabmail.gui.main_window import MainWindow
from tabmail.gui.problems.model import Column as ProblemColumn
from tabmail.gui.rounds.model import Column
from tabmail.gui.rounds.page import RoundMessagesPage
from tabmail.gui.theme import Theme
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tests.gui.test_rounds_model import queue, report, send

pytestmark = pytest.mark.gui

# The round page's width in the first-start window (92 % of the screen beside the 280 px
# navigator): on a 1366x768 laptop, and on a 1400-px-wide screen or window.
PAGE_WIDTHS = [960, 1100]


@pytest.fixture
def demo(ctx: AppContext) -> AppContext:
    assert load_demo_if_empty(ctx) is not None
    ctx.settings.set_text("backend", "file")
    return ctx


@pytest.fixture
def bridge(demo: AppContext) -> Iterator[EventBridge]:
    b = EventBridge(demo.bus)
    yield b
    b.detach()


@pytest.fixture
def round_page(qtbot: QtBot, demo: AppContext, bridge: EventBridge) -> RoundMessagesPage:
    """Round 1 with a teams batch: two bounces and a failure among the delivered."""
    batch = queue(demo, Audience.TEAMS)
    ids = send(demo, batch, failed=1)
    for mid in ids[:2]:
        report(demo, mid, DeliveryStatus.BOUNCED, 3, "550 5.1.1 user unknown")
    page = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    t = demo.tournaments.list_all()[0]
    page.show_round(t, demo.tournaments.get_round(t.id, 1))
    page.resize(1200, 800)
    page.show()
    qtbot.waitExposed(page)
    return page


def unreadable_headers(header: QHeaderView) -> list[str]:
    """The header labels that do not fit their section (the words and the style's margins)."""
    margin = header.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
    model = header.model()
    clipped = []
    for c in range(header.count()):
        if header.isSectionHidden(c):
            continue
        text = str(model.headerData(c, Qt.Orientation.Horizontal))
        if header.fontMetrics().horizontalAdvance(text) + 2 * margin > header.sectionSize(c):
            clipped.append(text)
    return clipped


def shown_width(header: QHeaderView) -> int:
    return sum(header.sectionSize(c) for c in range(header.count()) if not header.isSectionHidden(c))


def test_a_plan_gives_way_in_order_down_to_each_smallest_width() -> None:
    plan = ColumnPlan({0: 200, 1: 100, 2: 150}, give_way=((1, 60), (0, 120), (2, 100)), fill=2)
    assert plan.widths(600) == {0: 200, 1: 100, 2: 300}  # the fill column takes the room left
    assert plan.widths(400) == {0: 190, 1: 60, 2: 150}  # the first to give way first
    assert plan.widths(300) == {0: 120, 1: 60, 2: 120}
    assert plan.widths(100) == {0: 120, 1: 60, 2: 100}  # below the smallest sum: scrolls sideways
    assert plan.widths(400, hidden={0}) == {1: 100, 2: 300}
    assert plan.widths(300, floors={1: 90}) == {0: 120, 1: 90, 2: 100}  # a header's words first


@pytest.mark.parametrize("width", PAGE_WIDTHS)
def test_the_round_views_address_and_headers_stay_readable_in_a_narrow_window(
    qtbot: QtBot, round_page: RoundMessagesPage, width: int
) -> None:
    """The address is what is read and corrected in the round view: it keeps 180 px at least,
    every header is readable and every column is in view (no sideways scrolling)."""
    round_page.resize(width, 800)
    qtbot.wait(50)
    tree = round_page.tree
    header = tree.header()
    assert header.sectionSize(Column.ADDRESS) >= 180
    assert unreadable_headers(header) == []
    assert shown_width(header) <= tree.viewport().width()
    bounced = round_page.proxy.index(0, Column.ADDRESS, round_page.proxy.index(0, 0))
    address = str(bounced.data())
    icon = 16 + 12  # the problem's icon beside the address, and the cell's margins
    assert tree.fontMetrics().horizontalAdvance(address) + icon <= header.sectionSize(Column.ADDRESS)


def test_a_wide_round_view_gives_the_room_left_to_the_address(
    qtbot: QtBot, round_page: RoundMessagesPage
) -> None:
    round_page.resize(1400, 800)
    qtbot.wait(50)
    header = round_page.tree.header()
    assert header.sectionSize(Column.STATUS) == 390  # the batch's bar and counts in full
    assert header.sectionSize(Column.ADDRESS) > 260
    assert shown_width(header) == round_page.tree.viewport().width()


def test_a_round_column_resized_by_hand_keeps_its_width(qtbot: QtBot, round_page: RoundMessagesPage) -> None:
    header = round_page.tree.header()
    header.resizeSection(Column.RECIPIENT, 320)  # as the director dragging its edge
    address = header.sectionSize(Column.ADDRESS)
    round_page.resize(960, 800)
    qtbot.wait(50)
    assert header.sectionSize(Column.RECIPIENT) == 320
    assert header.sectionSize(Column.ADDRESS) == address
    assert round_page.columns.by_hand


@pytest.mark.parametrize("window_width", [1256, 1288])
def test_the_problems_views_reason_and_headers_stay_readable_at_the_first_start_size(
    qtbot: QtBot, demo: AppContext, round_page: RoundMessagesPage, qsettings: QSettings, window_width: int
) -> None:
    """At the first-start size (92 % of a 1366x768 or a 1400x900 screen) in every tournament
    and in one (whose page hides the tournament column: the others share its room)."""
    window = MainWindow(demo, qsettings=qsettings)
    qtbot.addWidget(window)
    window.resize(window_width, 800)
    window.show()
    qtbot.waitExposed(window)
    page = window.problems_page
    table = page.table
    header = table.horizontalHeader()
    tournament = demo.tournaments.list_all()[0]
    for shown in (None, tournament.id, None):
        assert window.select_problems(shown)
        qtbot.waitUntil(lambda: page.model.rowCount() == 3, timeout=5000)  # 2 bounced, 1 failed
        qtbot.wait(20)
        assert table.isColumnHidden(ProblemColumn.TOURNAMENT) is (shown is not None)
        assert header.sectionSize(ProblemColumn.REASON) >= 150, shown
        assert header.sectionSize(ProblemColumn.ADDRESS) >= 180
        assert unreadable_headers(header) == []
        assert shown_width(header) == table.viewport().width()  # all in view, none to spare
    window.close()
