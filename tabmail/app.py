"""The desktop app's composition root: Qt and asyncio on one thread (qasync), then the window.

``run_gui(args)`` is called by ``tabmail`` with no command. ``args`` carries ``db``, ``debug``,
``smoke_test`` and ``no_demo`` (see ``cli/main.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import qasync
from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from tabmail import __version__
from tabmail.gui.bridge import EventBridge
from tabmail.gui.collector import collect_on_gui_thread
from tabmail.gui.db_link import say_unreachable_in_status_bar
from tabmail.gui.main_window import MainWindow
from tabmail.resources import resource
from tabmail.services.context import AppContext
from tabmail.services.live import LiveChanges

log = logging.getLogger(__name__)

APP_NAME = "tabmail"
DESKTOP_ID = "org.tabmail.Tabmail"


def configure_application(app: QApplication) -> None:
    """Names (QSettings uses them) and the window icon."""
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    # The desktop file's id (packaging/linux): Wayland shells find the icon and name through it.
    app.setDesktopFileName(DESKTOP_ID)
    icon = QIcon()
    for name in ("tabmail.svg", "tabmail-64.png", "tabmail-128.png", "tabmail-256.png"):
        if resource("icons", name).is_file():  # PNGs too: they need no SVG plugin
            icon.addFile(str(resource("icons", name)))
    if not icon.isNull():
        app.setWindowIcon(icon)


def load_demo(ctx: AppContext) -> None:
    """Load the demo tournament into an empty database; a failure is logged, the app still starts."""
    from tabmail.services.demo import load_demo_if_empty  # the CSV importer: only for an empty database

    try:
        load_demo_if_empty(ctx)
    except Exception:
        log.warning("the demo tournament could not be loaded", exc_info=True)


def _fatal(args: argparse.Namespace, title: str, message: str) -> int:
    print(f"tabmail: error: {message}", file=sys.stderr)
    if not args.smoke_test:
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Close)
        box.setInformativeText("tabmail will now close. Use --db to open another database.")
        box.exec()
    return 1


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still running and let it finish unwinding before the loop closes."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()

    async def unwind() -> None:
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for _ in range(3):  # let done-callbacks scheduled just before the quit run too
            await asyncio.sleep(0)

    loop.run_until_complete(unwind())


def run_gui(args: argparse.Namespace) -> int:
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    configure_application(app)

    try:
        ctx = AppContext.open(getattr(args, "db", None), read_only=bool(getattr(args, "read_only", False)))
    except Exception as exc:  # TabmailError says it plainly; anything else still gets a dialog
        if getattr(args, "debug", False):
            log.exception("opening the database failed")
        if exc.__class__.__module__.startswith("tabmail"):
            text = str(exc)
        else:  # a driver error: its first line is the useful part
            where = getattr(args, "db", None) or "in tabmail's data folder"
            detail = (str(exc).splitlines() or [type(exc).__name__])[0]
            text = f"The database {where} cannot be opened: {detail}"
        return _fatal(args, "tabmail cannot open its database", text)

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    collector = collect_on_gui_thread(app)  # Qt objects in cycles are never freed off the GUI thread
    live = LiveChanges(ctx)  # PostgreSQL: other laptops' changes on this bus (SQLite: nothing)
    try:
        if not getattr(args, "no_demo", False) and not ctx.read_only:
            load_demo(ctx)
        bridge = EventBridge(ctx.bus)
        window = MainWindow(ctx, bridge)
        say_unreachable_in_status_bar(window)
        if getattr(args, "smoke_test", False):
            return _smoke_test(app, loop, window, ctx)
        window.show()
        app.processEvents()  # painted before the background work starts and loads what it needs
        live.start()
        window.start_background()  # the outbox resumes and polling starts on the loop set above
        _quit_on_sigint(app, window)
        log.info("window shown; tabmail is running")  # after the Ctrl+C handler is in place
        loop.run_forever()
        return 0
    finally:
        if not loop.is_closed():
            _drain(loop)
            loop.close()
        asyncio.set_event_loop(None)
        live.stop()
        ctx.close()
        collector.stop()


def _smoke_test(
    app: QApplication, loop: asyncio.AbstractEventLoop, window: MainWindow, ctx: AppContext
) -> int:
    """Show the window, spin the Qt+asyncio loop once (a worker-thread call included), start the
    background work as a real start does, quit. "window shown" is printed the moment the window
    is painted and the loop turns (tests/bench/bench_startup.py times it)."""

    async def check() -> tuple[int, str]:
        window.show()
        await asyncio.sleep(0)
        app.processEvents()
        print("smoke test: window shown", flush=True)
        window.start_background()
        tournaments = await asyncio.to_thread(ctx.tournaments.list_all)
        if not window.isVisible():
            raise RuntimeError("the main window did not show")
        banner = window.status.read_only
        shown = f" ({banner.text()})" if banner.isVisible() else ""
        # Quit as Ctrl+C does (the demo's waiting mail would otherwise ask, and the window stay
        # open with its background tasks running), while the loop still runs: the tasks are
        # cancelled in it. Before, a task step left for qasync's last processEvents ran with no
        # running loop ("RuntimeError: no running event loop" from the scheduled-batch check).
        window.quit_without_asking()
        if window.isVisible():
            raise RuntimeError("the main window did not close")
        return len(tournaments), shown

    count, shown = loop.run_until_complete(check())
    app.processEvents()
    _drain(loop)
    loop.close()
    print(f"smoke test ok: {count} tournaments{shown}", flush=True)
    return 0


def _quit_on_sigint(app: QApplication, window: MainWindow) -> None:
    """Ctrl+C in the terminal closes the window cleanly (Python only sees signals between events)."""
    signal.signal(signal.SIGINT, lambda *_: window.quit_without_asking())
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)
