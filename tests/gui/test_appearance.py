"""Dark mode: Settings → Appearance (System / Light / Dark) takes effect at once, no restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QComboBox
from pytestqt.qtbot import QtBot

from tabmail.gui.appearance import appearance_for
from tabmail.gui.main_window import MainWindow
from tabmail.gui.theme import Tone, is_dark
from tabmail.services.context import AppContext

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


@pytest.fixture
def window(qtbot: QtBot, ctx: AppContext, tournament_id: int, qsettings: QSettings) -> Iterator[MainWindow]:
    win = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(win)
    win.show()
    yield win
    appearance_for(QApplication.instance()).apply("system")  # type: ignore[arg-type]


def choose(window: MainWindow, value: str) -> None:
    dialog = window.open_settings_dialog()
    combo = dialog.fields["appearance"].editor
    assert isinstance(combo, QComboBox)
    combo.setCurrentIndex(combo.findData(value))
    dialog.accept()


def test_dark_and_light_take_effect_without_a_restart(
    qtbot: QtBot, window: MainWindow, ctx: AppContext
) -> None:
    assert not is_dark(QApplication.palette())  # offscreen: the system says nothing, light
    light_bad = window.theme.background(Tone.BAD)

    choose(window, "dark")
    assert ctx.settings.get("appearance") == "dark"
    assert is_dark(QApplication.palette()) and window.theme.dark
    assert window.theme.background(Tone.BAD) != light_bad  # status colours follow
    qtbot.waitUntil(lambda: is_dark(window.navigator.palette()) and is_dark(window.palette()), timeout=3000)

    choose(window, "light")
    assert not is_dark(QApplication.palette()) and window.theme.background(Tone.BAD) == light_bad

    choose(window, "dark")
    choose(window, "system")
    assert not is_dark(QApplication.palette())  # back to the platform's own colours


def test_the_choice_is_applied_at_start(qtbot: QtBot, ctx: AppContext, qsettings: QSettings) -> None:
    ctx.settings.set_text("appearance", "dark")
    win = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(win)
    try:
        assert is_dark(QApplication.palette())
    finally:
        appearance_for(QApplication.instance()).apply("system")  # type: ignore[arg-type]


def test_the_settings_offer_system_light_and_dark(window: MainWindow) -> None:
    dialog = window.open_settings_dialog()
    combo = dialog.fields["appearance"].editor
    assert isinstance(combo, QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == ["Follow the system", "Light", "Dark"]
    assert combo.currentData() == "system"
    dialog.reject()
