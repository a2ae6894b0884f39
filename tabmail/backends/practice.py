"""Practice: every message is accepted at once and nothing leaves this computer.

What then happens to each message is played out by the practice status source
(``tabmail.status.practice``) from the recipient's address, over about a minute, through the
same status pipeline as SendGrid's events. The message bytes stay in the database as for any
backend; no file is written and no connection is made.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabmail.backends.base import BackendInfo, Outcome, OutgoingMessage, SendHooks, SendResult
from tabmail.domain.practice import BACKEND, EXPLANATION, LABEL


class PracticeBackend:
    """The Backend protocol accepting every message (SENT, provider id ``practice.<id>``)."""

    def __init__(self) -> None:
        self.info = BackendInfo(name=BACKEND, description=LABEL)

    async def send(self, messages: Sequence[OutgoingMessage], hooks: SendHooks) -> None:
        """Accept every message handed over; never raises."""
        for msg in messages:
            if not (await hooks.handing_over([msg.id]))[0]:
                continue
            await hooks.finished(
                SendResult(
                    msg.id,
                    Outcome.SENT,
                    detail="accepted by the practice backend (nothing was sent)",
                    provider_message_id=f"{BACKEND}.{msg.id}",
                )
            )

    async def check(self) -> str:
        """Nothing to reach: always works."""
        return EXPLANATION

    async def close(self) -> None:
        """Nothing to release."""
