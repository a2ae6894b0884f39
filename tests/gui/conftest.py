"""GUI test fixtures: a qasync loop on pytest-qt's QApplication, QSettings in tmp, sample data."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tabmail.domain.imported import (
    DebateData,
    ImportBundle,
    InstitutionData,
    PersonData,
    RoundData,
    TeamData,
    TournamentData,
    VenueData,
)
from tabmail.domain.tournament import Position, Role
from tabmail.gui.collector import GuiThreadCollector
from tabmail.services.context import AppContext
from tests.gui.loops import close_loop, open_loop

INVALID_ADDRESS = "broken@@example.org"


def sample_bundle(slug: str = "spring", name: str = "Spring Open") -> ImportBundle:
    """Two teams, four speakers, three adjudicators (one invalid address, one missing), two rounds."""
    people = [
        PersonData("s1", "Ada Lovelace", Role.SPEAKER, "ada@example.org", "t1", "i1"),
        PersonData("s2", "Alan Turing", Role.SPEAKER, "alan@example.org", "t1", "i1"),
        PersonData("s3", "Grace Hopper", Role.SPEAKER, "grace@example.org", "t2", "i2"),
        PersonData("s4", "Edsger Dijkstra", Role.SPEAKER, INVALID_ADDRESS, "t2", "i2"),
        PersonData("a1", "Barbara Liskov", Role.ADJUDICATOR, "barbara@example.org", None, "i1"),
        PersonData("a2", "Donald Knuth", Role.ADJUDICATOR, None, None, "i2"),
        PersonData("a3", "Frances Allen", Role.ADJUDICATOR, "frances@example.org", None, "i2"),
    ]
    return ImportBundle(
        tournament=TournamentData(slug, name, source="csv"),
        institutions=[
            InstitutionData("i1", "University of Arnor", "ARN"),
            InstitutionData("i2", "Dale", "DAL"),
        ],
        venues=[VenueData("v1", "Room 1")],
        teams=[
            TeamData("t1", "Arnor A", institution_key="i1"),
            TeamData("t2", "Dale A", institution_key="i2"),
        ],
        people=people,
        rounds=[
            RoundData(1, "Round 1", "R1", draw_status="R", motions=[(1, "This House would test", "Tests")]),
            RoundData(2, "Round 2", "R2"),
        ],
        debates=[
            DebateData("d1", 1, "v1", [("t1", "aff"), ("t2", "neg")], [("a1", Position.CHAIR)]),
        ],
        complete_rounds={1},
    )


@pytest.fixture(autouse=True)
def gui_thread_gc(qapp: QApplication) -> Iterator[None]:
    """Garbage collected on the GUI thread only, as the app does (gui/collector.py): Qt objects
    left in reference cycles by this test or an earlier one are never freed by a worker thread
    (a to_thread send, an IMAP wait) that happens to allocate when Python would collect — Qt
    objects destroyed off their thread warn ("Timers cannot be stopped") or crash the run."""
    gc.collect()  # what earlier tests (GUI or not) left, here and now
    collector = GuiThreadCollector()
    yield
    collector.stop()  # this test's garbage, here, then Python collects by itself again


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    """After pytest lets go of the test's fixtures (a bridge, a loop, a worker: Qt objects in
    reference cycles), collect them here on the GUI thread, before a later test's worker
    thread could."""
    try:
        return (yield)
    finally:
        gc.collect()


@pytest.fixture
def tournament_id(ctx: AppContext) -> int:
    return ctx.tournaments.apply_import(sample_bundle()).tournament_id


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    """Window geometry goes to a file in tmp, never to the developer's own settings."""
    return QSettings(str(tmp_path / "qt-settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def qloop(qapp: QApplication, qtbot: QtBot) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop riding on the Qt event loop pytest-qt spins (tests/gui/loops.py)."""
    loop = open_loop(qapp)
    yield loop
    close_loop(loop, lambda condition: qtbot.waitUntil(condition, timeout=5000))
