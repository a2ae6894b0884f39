"""Many rows changing at once (a poll) are repainted whole, first column included: the model
announces those changes from the second column (QTreeView would otherwise ask every row of the
range whether it has children), and the view repaints the rest. (Offscreen, Qt repaints the
whole viewport here anyway; under X11 only the announced columns were repainted, leaving names
in the wrong weight: seen under Xvfb, and checked there after the fix.)"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject, QRect, QSettings
from PySide6.QtGui import QPaintEvent
from pytestqt.qtbot import QtBot

from tabmail.domain.events import StatusesChanged
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.main_window import MainWindow
from tabmail.services.context import AppContext
from tests.practice_support import FakeTime, send_demo_round

pytestmark = pytest.mark.gui


class PaintSpy(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.rects: list[QRect] = []

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and isinstance(event, QPaintEvent):
            self.rects.append(event.rect())
        return False


def test_a_poll_changing_many_rows_repaints_their_first_column(
    qtbot: QtBot, practice_demo: AppContext, qsettings: QSettings
) -> None:
    ctx = practice_demo
    batch_id = send_demo_round(ctx, FakeTime())
    window = MainWindow(ctx, qsettings=qsettings, worker=BackgroundWorker(ctx))
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    tournament = ctx.tournaments.list_all()[0]
    assert window.select_round(ctx.tournaments.get_round(tournament.id, 1).id)
    view = window.round_view
    ids = [m.id for m in ctx.notifications.messages(batch_id=batch_id)][:20]
    with ctx.db.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(
            text("UPDATE messages SET delivery_status = 'bounced' WHERE id = :id"), [{"id": i} for i in ids]
        )
    qtbot.wait(100)  # settle the first paints
    spy = PaintSpy()
    view.tree.viewport().installEventFilter(spy)
    with qtbot.waitSignal(view.model.rows_restyled, timeout=5000):
        ctx.bus.publish(StatusesChanged(tuple(ids)))
    qtbot.waitUntil(lambda: bool(spy.rects), timeout=5000)
    first_column = view.tree.header().sectionViewportPosition(0) + 2
    assert any(r.left() <= first_column for r in spy.rects)  # the names cells are repainted too
    view.tree.viewport().removeEventFilter(spy)
