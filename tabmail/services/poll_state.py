"""The delivery poll's small persistent state, readable without loading the SendGrid client
(the window reads the last check's summary while it starts; ``services.tracking`` loads later)."""

from __future__ import annotations

from typing import Any

from tabmail.services.context import AppContext

STATE = "poll.sendgrid."

# Settings and secrets that decide which SendGrid account, key and server the poller talks to.
CONNECTION_KEYS = frozenset(
    {"backend", "sendgrid.base_url", "smtp.host", "smtp.username", "sendgrid-api-key", "smtp-password"}
)


def forget_capabilities(ctx: AppContext) -> None:
    """What the old account allowed says nothing about a new key or server: detect again."""
    ctx.settings.set_state(STATE + "capabilities", None)


def last_poll(ctx: AppContext) -> dict[str, Any] | None:
    """The last poll's time, outcome and summary (for the GUI's status line)."""
    value = ctx.settings.get_state(STATE + "last_poll")
    return value if isinstance(value, dict) else None
