"""The practice backend's status source: each message's fate played out as provider events.

``PracticeSource.poll`` turns the practice sends of the last minute or so into the events of
their fates (``tabmail.domain.practice``) that have happened by ``now``, in SendGrid's Event
Webhook names, mapped with the same vocabulary as SendGrid's events (``status_for``,
``flag_for``). Event ids are stable (message + step), so a poll that sees an event again is
deduplicated by the ingest; nothing is ever lost by polling late, and nothing twice by polling
often. Never raises; there is nothing to reach, so it is always online.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tabmail.domain.practice import BACKEND, PracticeSend, script
from tabmail.status.events import ProviderEvent, flag_for, iso_z, status_for
from tabmail.status.sources import PollOutcome

PROVIDER = BACKEND


def events_for(send: PracticeSend, now: datetime) -> list[ProviderEvent]:
    """The events of ``send``'s fate that have happened by ``now``, oldest first."""
    out = []
    for step in script(send.address, corrected=send.corrected):
        at = send.sent_at + step.after
        if at > now:
            break
        status = status_for(step.name, step.bounce_type)
        raw: dict[str, Any] = {
            "event": step.name,
            "email": send.address,
            "timestamp": int(at.timestamp()),
            "tabmail_id": send.message_id,
            "practice": True,
        }
        if step.reason:
            raw["reason"] = step.reason
        if step.bounce_type:
            raw["type"] = step.bounce_type
        out.append(
            ProviderEvent(
                provider_event_id=f"{send.message_id}:{step.name}",
                name=step.name,
                status=status,
                event_time=at,
                tabmail_id=send.message_id,
                address=send.address,
                reason=step.reason,
                bounce_type=step.bounce_type,
                flag=flag_for(status, reason=step.reason, bounce_type=step.bounce_type, name=step.name),
                source=PROVIDER,
                raw=raw,
                provider=PROVIDER,
            )
        )
    return out


class PracticeSource:
    """Reads nothing from anywhere: the fates of the practice sends it is given."""

    name = "practice"

    def poll(self, sends: Sequence[PracticeSend], now: datetime, cursor: dict[str, Any]) -> PollOutcome:
        """Events of ``sends`` up to ``now``; the cursor remembers ``now`` (the caller looks
        back from it by the longest fate, ``domain.practice.SPAN``)."""
        out = PollOutcome(self.name, cursor=dict(cursor))
        for send in sends:
            out.events.extend(events_for(send, now))
        out.cursor["until"] = iso_z(now)
        out.note = f"{len(out.events)} practice event(s) for {len(sends)} message(s)"
        return out
