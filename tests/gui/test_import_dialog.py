"""The import dialog: validation, the token's one-time use or keyring storage, results, failures."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from tabmail.domain.errors import TabmailError
from tabmail.domain.imported import ImportProblem, ImportResult
from tabmail.gui.importer import ImportDialog, ImportFunctions, split_tabbycat_url
from tabmail.gui.theme import Tone
from tabmail.services.context import AppContext

pytestmark = pytest.mark.gui


class FakeImports:
    """Records calls (and the thread they ran in) instead of reaching a network or a disk."""

    def __init__(self, result: ImportResult | None = None, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.threads: list[int] = []
        self.result = result or ImportResult(1, "spring", {"person": 7, "round": 2}, {}, [], [], [])
        self.error = error

    def tabbycat(
        self, ctx: AppContext, url: str, slug: str, progress: Any, token: str | None, *, insecure: bool
    ) -> ImportResult:
        self.threads.append(threading.get_ident())
        progress("fetching teams", 1, 3)
        self.calls.append(("tabbycat", (url, slug, token) + (("insecure",) if insecure else ())))
        if self.error:
            raise self.error
        return self.result

    def csv(self, ctx: AppContext, folder: Path, name: str | None) -> ImportResult:
        self.calls.append(("csv", (folder, name)))
        return self.result

    def functions(self) -> ImportFunctions:
        return ImportFunctions(tabbycat=self.tabbycat, csv=self.csv)


def _dialog(qtbot: QtBot, ctx: AppContext, fake: FakeImports) -> ImportDialog:
    dialog = ImportDialog(ctx, functions=fake.functions())
    qtbot.addWidget(dialog)
    return dialog


def test_token_is_used_once_unless_remembered(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, ctx: AppContext
) -> None:
    fake = FakeImports()
    dialog = _dialog(qtbot, ctx, fake)
    dialog.url.setText("https://spring.calicotab.com/")
    dialog.slug.setText("spring")
    dialog.token.setText("tok-123")
    with qtbot.waitSignal(dialog.imported, timeout=5000) as imported:
        dialog.import_button.click()
    assert imported.args == [1]
    assert fake.calls == [("tabbycat", ("https://spring.calicotab.com", "spring", "tok-123"))]
    assert fake.threads[0] != threading.get_ident()  # the blocking import ran off the GUI thread
    assert ctx.secrets.get("tabbycat-token") is None
    assert dialog.token.text() == ""
    assert dialog.message.tone == Tone.GOOD
    assert "New: 7 people, 2 rounds." in dialog.message.text()

    dialog.token.setText("tok-456")
    dialog.remember.setChecked(True)
    with qtbot.waitSignal(dialog.imported, timeout=5000):
        dialog.import_button.click()
    assert ctx.secrets.get("tabbycat-token") == "tok-456"


def test_pasted_tournament_url_fills_the_slug(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, ctx: AppContext
) -> None:
    assert split_tabbycat_url("https://x.calicotab.com/bp88/") == ("https://x.calicotab.com", "bp88")
    assert split_tabbycat_url("https://x.calicotab.com") == ("https://x.calicotab.com", None)
    fake = FakeImports()
    dialog = _dialog(qtbot, ctx, fake)
    dialog.url.setText("https://x.calicotab.com/bp88/")
    with qtbot.waitSignal(dialog.imported, timeout=5000):
        dialog.import_button.click()
    assert fake.calls[0][1][:2] == ("https://x.calicotab.com", "bp88")


def test_problems_are_listed(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, ctx: AppContext, tmp_path: Path
) -> None:
    result = ImportResult(
        1,
        "spring",
        {"person": 5},
        {},
        [],
        [],
        [
            ImportProblem("teams.csv:4", "no institution named 'Nowhere'"),
            ImportProblem("adjudicators.csv:9", "no name"),
        ],
    )
    fake = FakeImports(result)
    dialog = _dialog(qtbot, ctx, fake)
    dialog.tabs.setCurrentIndex(1)
    dialog.folder.setText(str(tmp_path))
    with qtbot.waitSignal(dialog.imported, timeout=5000):
        dialog.import_button.click()
    assert fake.calls == [("csv", (tmp_path, None))]
    assert dialog.problems_model.stringList() == [
        "teams.csv:4: no institution named 'Nowhere'",
        "adjudicators.csv:9: no name",
    ]
    assert not dialog.problems.isHidden()
    assert dialog.message.tone == Tone.WARNING


def test_form_is_checked_before_anything_runs(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, ctx: AppContext, tmp_path: Path
) -> None:
    fake = FakeImports()
    dialog = _dialog(qtbot, ctx, fake)
    dialog.url.setText("spring.calicotab.com")
    dialog.import_button.click()
    assert "https://" in dialog.message.text()
    dialog.tabs.setCurrentIndex(1)
    dialog.folder.setText(str(tmp_path / "missing"))
    dialog.import_button.click()
    assert "no folder" in dialog.message.text()
    assert fake.calls == []


def test_plain_http_to_another_machine_needs_the_box_ticked(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, ctx: AppContext
) -> None:
    fake = FakeImports()
    dialog = _dialog(qtbot, ctx, fake)
    dialog.url.setText("http://tab.example.org")
    dialog.slug.setText("spring")
    dialog.token.setText("tok-123")
    dialog.import_button.click()
    assert dialog.message.tone == Tone.BAD
    assert "tab.example.org uses plain http://" in dialog.message.text()
    assert "in clear" in dialog.message.text()
    assert fake.calls == []

    dialog.insecure.setChecked(True)
    with qtbot.waitSignal(dialog.imported, timeout=5000):
        dialog.import_button.click()
    assert fake.calls == [("tabbycat", ("http://tab.example.org", "spring", "tok-123", "insecure"))]

    dialog.insecure.setChecked(False)  # this machine: no need to tick anything
    dialog.url.setText("http://127.0.0.1:8000")
    with qtbot.waitSignal(dialog.imported, timeout=5000):
        dialog.import_button.click()
    assert fake.calls[-1] == ("tabbycat", ("http://127.0.0.1:8000", "spring", None))


def test_a_failed_import_is_reported(qtbot: QtBot, qloop: asyncio.AbstractEventLoop, ctx: AppContext) -> None:
    fake = FakeImports(error=TabmailError("Tabbycat refused the token (403)."))
    dialog = _dialog(qtbot, ctx, fake)
    dialog.url.setText("https://spring.calicotab.com")
    dialog.slug.setText("spring")
    dialog.import_button.click()
    qtbot.waitUntil(lambda: dialog.findChild(QMessageBox, "op-failure") is not None, timeout=5000)
    assert dialog.findChild(QMessageBox, "op-failure").text() == "Tabbycat refused the token (403)."
    qtbot.waitUntil(dialog.import_button.isEnabled, timeout=5000)


def test_an_error_never_cuts_the_hints(qtbot: QtBot, ctx: AppContext) -> None:
    """Issue 10 defect 9: showing an error squeezed the tab and cut its wrapped hint text."""
    from PySide6.QtWidgets import QApplication, QLabel

    dialog = _dialog(qtbot, ctx, FakeImports())
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.message.show_message(
        "Could not reach https://mytournament.calicotab.com: the name does not resolve. Check the "
        "address, or that this computer is online, then try again. " * 2,
        Tone.BAD,
    )
    for _ in range(3):
        QApplication.processEvents()
    hints = [
        label
        for label in dialog.tabs.currentWidget().findChildren(QLabel)
        if label.wordWrap() and label.isVisible()
    ]
    assert hints
    for label in hints:
        assert label.height() >= label.heightForWidth(label.width()), label.text()
