"""A tiny typed event bus. Subscribers are called synchronously in publish order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}
        self._any: list[Handler] = []

    def subscribe(self, event_type: type | None, handler: Handler) -> None:
        """Call ``handler(event)`` for each event of ``event_type`` (every event when None)."""
        if event_type is None:
            self._any.append(handler)
        else:
            self._handlers.setdefault(event_type, []).append(handler)

    def publish(self, event: object) -> None:
        """Never raises: a failing subscriber is logged and the others still run."""
        for handler in (*self._handlers.get(type(event), ()), *self._any):
            try:
                handler(event)
            except Exception:
                log.exception("event handler %r failed on %r", handler, event)
