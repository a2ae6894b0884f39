"""PySide6 6.12.0 drops a reference to None on every call of a Qt method that returns nothing
(setReadOnly, setPlainText, setTabEnabled...); after enough calls the interpreter aborts at exit
with "Fatal Python error: none_dealloc" (or bool_dealloc), failing a test run whose tests all
passed. pyproject.toml excludes that release; this test keeps a later one from bringing it back."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtWidgets import QApplication, QPlainTextEdit, QTabWidget, QWidget

pytestmark = pytest.mark.gui


def test_qt_calls_returning_nothing_keep_none_alive(qapp: QApplication) -> None:
    edit = QPlainTextEdit()
    tabs = QTabWidget()
    tabs.addTab(QWidget(), "a")
    before = sys.getrefcount(None)
    for _ in range(1000):
        edit.setReadOnly(False)
        edit.setPlainText("x")
        tabs.setTabEnabled(0, True)
    assert abs(sys.getrefcount(None) - before) < 100, "this PySide6 release loses references to None"
