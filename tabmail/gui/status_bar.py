"""The main window's permanent status widgets: test mode, backend, last poll, online state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStatusBar, QWidget

from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.domain.practice import EXPLANATION as PRACTICE_EXPLANATION
from tabmail.domain.practice import LABEL as PRACTICE_LABEL
from tabmail.gui.icons import dot_icon
from tabmail.gui.rounds.words import local_time
from tabmail.gui.theme import Theme, Tone
from tabmail.services.election import ago

BACKEND_NAMES = {
    "smtp": "SMTP",
    "sendgrid": "SendGrid API",
    "file": "Files (dry run)",
    PRACTICE: PRACTICE_LABEL,
}


def backend_description(settings: dict[str, Any]) -> tuple[str, str]:
    """(short text, tooltip) describing the configured backend; never shows a secret."""
    backend = str(settings.get("backend") or "file")
    name = BACKEND_NAMES.get(backend, backend)
    if backend == "smtp":
        host = settings.get("smtp.host") or "?"
        return f"{name} · {host}", f"Sending through the SMTP server {host}:{settings.get('smtp.port')}"
    if backend == "sendgrid":
        sandbox = " (sandbox: nothing is delivered)" if settings.get("sendgrid.sandbox") else ""
        return (
            name + (" · sandbox" if sandbox else ""),
            f"Sending through SendGrid's Web API{sandbox}",
        )
    if backend == PRACTICE:
        return name, PRACTICE_EXPLANATION
    folder = settings.get("file.directory") or "the data folder"
    return name, f"Nothing is sent: messages are written as .eml files to {folder}"


def _separator(parent: QWidget) -> QFrame:
    line = QFrame(parent)
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    line.setFixedHeight(14)
    return line


class _Indicator(QWidget):
    """A small dot followed by text; the text always says what the dot's colour means."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dot = QLabel(self)
        self.text = QLabel(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(5)
        layout.addWidget(self.dot)
        layout.addWidget(self.text)

    def set(self, text: str, colour_icon: Any, tooltip: str = "") -> None:
        self.dot.setPixmap(colour_icon.pixmap(10, 10))
        self.text.setText(text)
        self.setToolTip(tooltip)


class StatusWidgets:
    """Builds and updates the permanent widgets of a ``QStatusBar``."""

    def __init__(self, status_bar: QStatusBar, theme: Theme) -> None:
        self._theme = theme
        self.test_mode = QLabel(status_bar)
        self.test_mode.setObjectName("test-mode-banner")
        self.test_mode.setStyleSheet(theme.banner_style())
        self.test_mode.hide()
        self.read_only = QLabel("read-only: sending disabled", status_bar)
        self.read_only.setObjectName("read-only-banner")
        self.read_only.setStyleSheet(theme.banner_style())
        self.read_only.hide()
        self.database = QLabel(status_bar)  # the database server cannot be reached (PostgreSQL)
        self.database.setObjectName("database-unreachable-banner")
        self.database.setStyleSheet(theme.banner_style())
        self.database.hide()
        self._stepped_aside: list[QWidget] = []  # labels hidden while the banner is shown
        self.backend = QLabel(status_bar)
        self.backend.setObjectName("backend-label")
        self.last_poll = QLabel("Last check: never", status_bar)
        self.last_poll.setObjectName("last-poll-label")
        self.last_poll.setToolTip("When delivery statuses were last fetched from the provider")
        self.inbox = QLabel(status_bar)
        self.inbox.setObjectName("inbox-label")
        self.inbox.hide()  # shown once the tab room's mailbox has been read
        self.online = _Indicator(status_bar)
        self.online.setObjectName("online-indicator")
        self.online_state: bool | None = None
        self._last_ok = True
        self._poll_shown: tuple[datetime, str | None, str] | None = None  # shown with "… ago"
        self._inbox_shown: tuple[datetime, str | None, str] | None = None
        self._poll_online: bool | None = None
        self._send_online: bool | None = None
        self._send_detail = ""
        self.practice = False
        self._render_connection()
        status_bar.addPermanentWidget(self.database)
        status_bar.addPermanentWidget(self.read_only)
        status_bar.addPermanentWidget(self.test_mode)
        self._separators: dict[QWidget, QFrame] = {}
        for i, widget in enumerate((self.backend, self.last_poll, self.inbox, self.online)):
            if i:
                line = _separator(status_bar)
                self._separators[widget] = line
                status_bar.addPermanentWidget(line)
            widget.setContentsMargins(6, 0, 6, 0)
            status_bar.addPermanentWidget(widget)
        self._separators[self.inbox].hide()  # no line before a label that is not shown

    def set_read_only(self, where: str) -> None:
        """Show the read-only banner: the database ``where`` is opened without writing."""
        self.read_only.setToolTip(
            f"The database {where} is opened read-only (the file or its folder cannot be written, "
            "or --read-only was given). Everything can be reviewed; sending, resending, importing, "
            "checking delivery and changing settings are disabled."
        )
        self.read_only.show()

    def set_database_unreachable(self, since: datetime | None, detail: str = "") -> None:
        """The database server cannot be reached since ``since`` (None: it can again). While it
        cannot, the banner says so alone: the other labels (backend, last check) step aside so
        it is never cut short in a narrow window."""
        if since is None:
            self.database.hide()
            for widget in self._stepped_aside:
                widget.show()
            self._stepped_aside = []
            return
        self.database.setText(
            f"Database unreachable — showing what was last read at {local_time(since)}; reconnecting…"
        )
        self.database.setToolTip(
            f"The database server cannot be reached ({detail or 'no answer'}). The window shows what "
            "it read before; sending, composing and editing are refused until tabmail has "
            "reconnected by itself, and nothing is queued meanwhile."
        )
        if not self._stepped_aside:
            labels = (self.backend, self.last_poll, self.inbox, self.online)
            widgets = [*labels, *self._separators.values()]
            self._stepped_aside = [w for w in widgets if not w.isHidden()]
            for widget in self._stepped_aside:
                widget.hide()
        self.database.show()

    def update_from_settings(self, settings: dict[str, Any]) -> None:
        text, tooltip = backend_description(settings)
        self.backend.setText(f"Backend: {text}")
        self.backend.setToolTip(tooltip)
        self.practice = settings.get("backend") == PRACTICE
        # practice must never be mistaken for the real thing: the label stands out
        self.backend.setStyleSheet("font-weight: bold;" if self.practice else "")
        self._render_connection()
        reroute = str(settings.get("test_mode.reroute_to") or "").strip()
        if reroute:
            self.test_mode.setText(f"TEST MODE: all mail goes to {reroute}")
            self.test_mode.setToolTip(
                "Test mode is on: every message is rerouted to this address instead of its "
                "recipient. Turn it off in Settings before the real release."
            )
        self.test_mode.setVisible(bool(reroute))

    def retheme(self) -> None:
        """Colours for the current palette (light/dark changed)."""
        self.last_poll.setStyleSheet("" if self._last_ok else self._theme.text_style(Tone.BAD))
        self._render_connection()

    def set_poll_result(self, when: datetime, ok: bool, summary: str, by: str | None = None) -> None:
        """The last delivery check. ``by``: the machine that made it, in a tab room whose
        laptops share one database ("Last checked by tabroom-2, 12 s ago"; ``tick`` keeps the
        age current)."""
        local = when.astimezone() if when.tzinfo else when
        result = summary or ("OK" if ok else "failed")
        self._poll_shown = (when, by, result) if by else None
        self.last_poll.setText(self._poll_text(when, by, result))
        self.last_poll.setToolTip(
            f"Delivery statuses last fetched at {local:%Y-%m-%d %H:%M:%S}"
            + (f" by {by}" if by else "")
            + ("" if ok else " — the check failed")
        )
        self._last_ok = ok
        self.last_poll.setStyleSheet("" if ok else self._theme.text_style(Tone.BAD))

    @staticmethod
    def _poll_text(when: datetime, by: str | None, result: str) -> str:
        if by:
            return f"Last checked by {by}, {ago((datetime.now(UTC) - when).total_seconds())}: {result}"
        return f"Last check {local_time(when)}: {result}"  # the time today; the day too for older

    def tick(self) -> None:
        """Bring "12 s ago" up to date (the window calls this every few seconds)."""
        if self._poll_shown is not None:
            self.last_poll.setText(self._poll_text(*self._poll_shown))
        if self._inbox_shown is not None:
            self.inbox.setText(self._inbox_text(*self._inbox_shown))

    def set_inbox_result(
        self, when: datetime, ok: bool, online: bool, summary: str, by: str | None = None
    ) -> None:
        """The last read of the tab room's mailbox: when (and by which machine, in a shared tab
        room), and whether it worked (the whole summary on hover)."""
        state = "" if ok else (": offline" if not online else ": a problem (hover for it)")
        self._inbox_shown = (when, by, state) if by else None
        self.inbox.setText(self._inbox_text(when, by, state))
        self.inbox.setToolTip(summary)
        self.inbox.setStyleSheet(
            "" if ok else self._theme.text_style(Tone.WARNING if not online else Tone.BAD)
        )
        self._show_inbox()

    def set_inbox_waiting(self, short: str, words: str) -> None:
        """The mailbox is read again after trouble: "Inbox: connection lost; retrying in 4 s"
        until the next check's result replaces it (``words``, the whole sentence, on hover)."""
        self._inbox_shown = None  # no "… ago" to keep current: the next check replaces this
        self.inbox.setText(f"Inbox: {short}")
        self.inbox.setToolTip(words)
        self.inbox.setStyleSheet(self._theme.text_style(Tone.WARNING))
        self._show_inbox()

    def _show_inbox(self) -> None:
        if self._stepped_aside:  # shown again with the others when the server is back
            self._stepped_aside += [w for w in (self.inbox, self._separators[self.inbox]) if w.isHidden()]
            return
        self.inbox.show()
        self._separators[self.inbox].show()

    @staticmethod
    def _inbox_text(when: datetime, by: str | None, state: str) -> str:
        if by:
            return f"Inbox read by {by}, {ago((datetime.now(UTC) - when).total_seconds())}{state}"
        return f"Inbox read {local_time(when)}{state}"

    def set_online(self, online: bool | None) -> None:
        """The last delivery check reached the provider (True) or not (False); None: no check yet."""
        self._poll_online = online
        self._render_connection()

    def set_sending(self, online: bool | None, detail: str = "") -> None:
        """The outbox's last attempt reached the mail server (True) or could not connect (False)."""
        self._send_online, self._send_detail = online, detail
        self._render_connection()

    def reset_connection(self) -> None:
        """The backend or its server changed: what was known about the old one no longer holds."""
        self._poll_online = self._send_online = None
        self._send_detail = ""
        self._render_connection()

    def _render_connection(self) -> None:
        send, poll = self._send_online, self._poll_online
        if self.practice:
            self.online_state = True
            colour, text = self._theme.accent(Tone.NEUTRAL), "No network needed"
            tip = "Practice mode: nothing is sent, so no server has to be reached"
        elif send is False:
            self.online_state = False
            colour, text = self._theme.accent(Tone.BAD), "Offline · sending fails"
            tip = (
                f"The last send could not reach the mail server: {self._send_detail or 'no answer'}. "
                "Messages wait in the outbox and are retried; nothing is lost."
            )
        elif poll is False:
            self.online_state = False
            colour, text = self._theme.accent(Tone.BAD), "Offline"
            tip = "The provider could not be reached at the last check; sending will resume when it can"
        elif send or poll:
            self.online_state = True
            reached = [what for what, ok in (("the last send", send), ("the last check", poll)) if ok]
            colour, text = self._theme.accent(Tone.GOOD), "Online"
            tip = "The provider answered " + " and ".join(reached)
        else:
            self.online_state = None
            colour, text = self._theme.accent(Tone.NEUTRAL), "Connection unknown"
            tip = "Whether the provider can be reached is known after the first send or check"
        self.online.set(text, dot_icon(colour), tip)
