"""The compose dialog: marks and ticks, live preview, inline problems, confirm, send, cancel."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, Event, FlagKind, MessageState
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.composer import ComposeDialog, backend_phrase
from tabmail.gui.composer.recipients import RecipientColumn
from tabmail.gui.roles import Roles
from tabmail.gui.theme import Theme
from tabmail.services import notify
from tabmail.services.context import AppContext
from tests.servers.smtp import SmtpTestServer

pytestmark = pytest.mark.gui


@pytest.fixture
def demo(smtp_demo: AppContext) -> AppContext:
    return smtp_demo


@pytest.fixture
def bridge(demo: AppContext) -> Iterator[EventBridge]:
    b = EventBridge(demo.bus)
    yield b
    b.detach()


@pytest.fixture
def worker(demo: AppContext, qloop: asyncio.AbstractEventLoop) -> Iterator[BackgroundWorker]:
    w = BackgroundWorker(demo)
    yield w
    w.stop()


def open_dialog(
    qtbot: QtBot, ctx: AppContext, bridge: EventBridge, worker: BackgroundWorker | None
) -> ComposeDialog:
    tournament = ctx.tournaments.list_all()[0]
    rnd = ctx.tournaments.get_round(tournament.id, 1)
    dialog = ComposeDialog(ctx, bridge, worker, tournament, rnd, theme=Theme())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    return dialog


def rows_by_status(dialog: ComposeDialog) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for row in range(dialog.recipients.rowCount()):
        out.setdefault(dialog.recipients.index(row, 0).data(Roles.STATUS), []).append(row)
    return out


def test_marks_and_default_ticks(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker
) -> None:
    slug = demo.tournaments.list_all()[0].slug
    # Adjudicators already got round 1's draw; one speaker's address bounced before.
    first = notify.enqueue(
        demo, notify.plan(demo, slug, Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    )
    teams = notify.plan(demo, slug, Event.DRAW, round_seq=1, audience=Audience.TEAMS)
    bouncing = next(p.recipient for p in teams.recipients if p.mark is notify.Mark.OK)
    assert bouncing.address is not None
    demo.flags.add(bouncing.address, FlagKind.HARD, "550 user unknown", "test")
    assert first.queued > 0

    dialog = open_dialog(qtbot, demo, bridge, worker)
    model = dialog.recipients
    by = rows_by_status(dialog)
    assert set(by) == {"ok", "already_sent", "flagged", "no_address", "invalid"}
    assert len(by["already_sent"]) == first.queued and len(by["flagged"]) == 1
    checked = Qt.CheckState.Checked
    for status, rows in by.items():
        for row in rows:
            name = model.index(row, RecipientColumn.NAME)
            note = model.index(row, RecipientColumn.NOTE)
            ticked = name.data(Qt.ItemDataRole.CheckStateRole) == checked
            assert ticked == (status == "ok"), (status, name.data())
            tickable = bool(model.flags(name) & Qt.ItemFlag.ItemIsUserCheckable)
            assert tickable == (status not in ("no_address", "invalid"))
            if status != "ok":  # marked with an icon and words, not colour alone
                assert note.data() and note.data(Qt.ItemDataRole.DecorationRole) is not None
    assert model.index(by["flagged"][0], RecipientColumn.NOTE).data() == "Bouncing"
    assert "550 user unknown" in model.index(by["flagged"][0], 0).data(Qt.ItemDataRole.ToolTipRole)
    # an address-less person cannot be ticked, whatever the view asks
    assert not model.setData(
        model.index(by["no_address"][0], 0), Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole
    )
    ok = len(by["ok"])
    assert dialog.send_button.text() == f"Send {ok} Emails…" and dialog.send_button.isEnabled()
    assert dialog.count_label.text().startswith(f"{ok} of {model.rowCount()} ticked")

    model.select(on=True, marks=(notify.Mark.ALREADY_SENT,))
    assert model.selected_count() == ok + first.queued
    model.select(on=False, role="adjudicator")
    assert all(p.recipient.role != "adjudicator" for p in model.selected_recipients())
    model.select(on=False)
    assert model.selected_count() == 0 and not dialog.send_button.isEnabled()


def test_the_preview_follows_the_template_and_the_chosen_recipient(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker
) -> None:
    dialog = open_dialog(qtbot, demo, bridge, worker)
    qtbot.waitUntil(lambda: dialog.preview.parts is not None, timeout=5000)  # the default template
    with qtbot.waitSignal(dialog.preview_updated, timeout=3000):
        dialog.editor.subject.setText("Hello {{ USER }} from {{ TOURN }}")
    who = dialog.preview_recipient()
    assert who is not None
    assert dialog.preview.subject.text() == f"Hello {who.recipient.name} from Demo Open"
    assert dialog.editor.edited and dialog.restore_button.isEnabled()
    # Choosing another recipient previews theirs.
    other = dialog.recipients_proxy.index(5, 0)
    with qtbot.waitSignal(dialog.preview_updated):
        dialog.table.setCurrentIndex(other)
    chosen = dialog.recipients.recipient(dialog.recipients_proxy.mapToSource(other).row())
    assert dialog.preview.subject.text() == f"Hello {chosen.recipient.name} from Demo Open"
    assert chosen.recipient.name in dialog.preview.heading.text()


# ~10 s of bare loop iterations in plain Jinja2 on the 2-core CI machine: far over the limit.
SLOW_TEMPLATE = "{% for i in range(100000) %}{% for j in range(3000) %}{% endfor %}{% endfor %}done\n"


def test_a_slow_template_previews_off_the_gui_thread_within_its_time_limit(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker
) -> None:
    dialog = open_dialog(qtbot, demo, bridge, worker)
    qtbot.waitUntil(lambda: dialog.preview.parts is not None, timeout=5000)
    dialog.preview_time_limit = 1.5
    beats: list[float] = []
    heartbeat = QTimer(dialog)
    heartbeat.setInterval(20)
    heartbeat.timeout.connect(lambda: beats.append(time.monotonic()))
    heartbeat.start()
    start = time.monotonic()
    with qtbot.waitSignal(dialog.preview_updated, timeout=20000):
        dialog.editor.text.setPlainText(SLOW_TEMPLATE)
    elapsed = time.monotonic() - start
    heartbeat.stop()
    # The event loop kept running all along: no gap between heartbeats like the render's length.
    gaps = [b - a for a, b in itertools.pairwise([start, *beats])]
    assert elapsed >= 1.5 and len(beats) > 20
    assert max(gaps) < 0.75, f"the window froze for {max(gaps):.2f} s"
    # ...and the render stopped at its time limit, said inline, for the previewed recipient.
    who = dialog.preview_recipient()
    assert who is not None
    assert "took longer than 1.5 s" in dialog.problems_strip.text()
    assert who.recipient.name in dialog.problems_strip.text()
    assert dialog.preview.parts is None and not dialog.send_button.isEnabled()


def test_a_stale_preview_result_is_dropped(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker
) -> None:
    dialog = open_dialog(qtbot, demo, bridge, worker)
    qtbot.waitUntil(lambda: dialog.preview.parts is not None, timeout=5000)
    dialog.preview_time_limit = 1.0
    dialog.editor.text.setPlainText(SLOW_TEMPLATE)
    dialog.update_preview()  # the slow render starts now, in its thread
    dialog.editor.text.setPlainText("Quick {{ USER }}\n")  # changed while it runs
    dialog.update_preview()
    shown: list[str] = []
    dialog.preview_updated.connect(lambda: shown.append(dialog.preview.text.toPlainText()))
    qtbot.waitUntil(lambda: bool(shown), timeout=20000)
    qtbot.wait(50)  # let any late signal through
    # only the latest templates were ever shown: the slow render's time-out was dropped
    assert len(shown) == 1 and shown[0].startswith("Quick ")
    assert not dialog.problems and dialog.send_button.isEnabled()


def test_unknown_variables_and_syntax_errors_are_shown_inline_and_block_sending(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker
) -> None:
    dialog = open_dialog(qtbot, demo, bridge, worker)
    with qtbot.waitSignal(dialog.preview_updated, timeout=3000):
        dialog.editor.text.setPlainText("Hi {{ USER }},\n\nyou are in {{ VENU }}.\n")
    strip = dialog.problems_strip
    assert strip.isVisible() and "VENU" in strip.text() and "line 3" in strip.text()
    assert dialog.editor.marked_lines["text"] == [3]
    assert not dialog.send_button.isEnabled()
    assert dialog.preview.parts is None

    with qtbot.waitSignal(dialog.preview_updated, timeout=3000):
        dialog.editor.text.setPlainText("Hi {{ USER }},\n{% if ROLE %}\nno end\n")
    assert "Plain text" in strip.text() and "line" in strip.text() and not dialog.send_button.isEnabled()

    with qtbot.waitSignal(dialog.preview_updated, timeout=3000):
        dialog.editor.text.setPlainText("Hi {{ USER }}\n")
    assert not strip.isVisible() and dialog.send_button.isEnabled()


def click(box: QMessageBox, text: str) -> None:
    button = next(b for b in box.buttons() if b.text().replace("&", "") == text)
    assert isinstance(button, QPushButton)
    button.click()


def test_send_reports_every_recipients_problem_and_queues_nothing(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker
) -> None:
    dialog = open_dialog(qtbot, demo, bridge, worker)
    speaker = next(i for i, p in enumerate(dialog.recipients.recipients) if p.recipient.role == "speaker")
    dialog.table.setCurrentIndex(dialog.recipients_proxy.mapFromSource(dialog.recipients.index(speaker, 0)))
    # TEAM exists for speakers only: the preview (a speaker) works, adjudicators would fail.
    with qtbot.waitSignal(dialog.preview_updated, timeout=3000):
        dialog.editor.text.setPlainText("Your team: {{ TEAM }}\n")
    assert dialog.send_button.isEnabled()
    dialog.send_button.click()
    qtbot.waitUntil(lambda: bool(dialog.problems), timeout=10000)
    adjudicators = [p for p in dialog.recipients.selected_recipients() if p.recipient.role == "adjudicator"]
    assert len(dialog.problems) == len(adjudicators) > 1
    assert "TEAM" in dialog.problems_strip.text() and "more" in dialog.problems_strip.text()
    assert dialog.confirm_box is None and not dialog.send_button.isEnabled()
    assert demo.notifications.batches() == []


def test_confirm_then_send_through_smtp_shows_progress_and_the_batch(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker, smtp: SmtpTestServer
) -> None:
    demo.settings.set_text("test_mode.reroute_to", "director@example.org")
    dialog = open_dialog(qtbot, demo, bridge, worker)
    assert dialog.banner.isVisible() and "director@example.org" in dialog.banner.text()
    n = dialog.recipients.selected_count()
    queued: list[int] = []
    dialog.batch_queued.connect(queued.append)
    dialog.send_button.click()
    qtbot.waitUntil(lambda: dialog.confirm_box is not None, timeout=10000)
    box = dialog.confirm_box
    assert box is not None
    assert box.text() == f"Send {n} emails {backend_phrase(demo.settings.all())}?"
    assert box.text() == f"Send {n} emails through 127.0.0.1?"
    assert "TEST MODE" in box.informativeText()
    click(box, "Send")
    qtbot.waitUntil(lambda: dialog.send_progress.label.text().startswith("Done"), timeout=20000)
    assert len(queued) == 1
    batch_id = queued[0]
    messages = demo.notifications.messages(batch_id=batch_id)
    assert len(messages) == n and {m.state for m in messages} == {MessageState.SENT}
    assert len(smtp.messages) == n
    assert {r.envelope_to for r in smtp.messages} == {("director@example.org",)}
    assert dialog.send_progress.bar.value() == dialog.send_progress.bar.maximum()
    assert f"{n} sent" in dialog.send_progress.label.text()
    assert not dialog.send_progress.cancel_button.isVisible() and not dialog.send_button.isVisible()
    assert not dialog.table.isEnabled()  # the sent batch cannot be edited any more


def test_cancel_stops_sending_and_marks_the_rest_skipped(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker, smtp: SmtpTestServer
) -> None:
    smtp.data_delay = 0.05
    demo.settings.set_text("smtp.connections", "1")
    dialog = open_dialog(qtbot, demo, bridge, worker)
    n = dialog.recipients.selected_count()
    dialog.send_button.click()
    qtbot.waitUntil(lambda: dialog.confirm_box is not None, timeout=10000)
    click(dialog.confirm_box, "Send")  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: len(dialog.send_progress.final) >= 2, timeout=10000)
    dialog.send_progress.cancel_button.click()
    assert dialog.send_progress.cancel_box is not None
    click(dialog.send_progress.cancel_box, "Mark as Skipped")
    qtbot.waitUntil(lambda: not worker.outbox_running, timeout=10000)
    assert dialog.send_progress.batch_id is not None
    states = [m.state for m in demo.notifications.messages(batch_id=dialog.send_progress.batch_id)]
    assert MessageState.SKIPPED in states and MessageState.QUEUED not in states
    assert states.count(MessageState.SENT) == len(smtp.messages) < n
    assert dialog.send_progress.label.text().startswith("Stopped: cancelled by you")


def test_templates_kept_for_the_tournament_come_back_in_the_next_composer(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, worker: BackgroundWorker
) -> None:
    dialog = open_dialog(qtbot, demo, bridge, worker)
    edited = dialog.editor.templates()
    mine = type(edited)("Kept: {{ ROUND }}", edited.text + "\nSee you there.\n", edited.html)
    dialog.editor.set_templates(mine)
    dialog.save_templates_for_tournament()
    event, audience = dialog.current_event()
    assert notify.templates_for(demo, dialog.tournament.id, event, audience) == mine
    again = open_dialog(qtbot, demo, bridge, worker)
    assert again.editor.templates() == mine
    assert again.restore_button.isEnabled()
    again.template_panel.restore_defaults()
    assert notify.templates_for(demo, dialog.tournament.id, event, audience) != mine
    assert again.editor.templates() != mine
