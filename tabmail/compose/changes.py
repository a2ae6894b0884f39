"""Changes-only re-release of a corrected draw (Tabbycat issue #790, never built there).

Each person's assignment now is compared with the one in the last draw message sent to them for
the round (the template context stored on every message). What is compared is what a
participant acts on: the room, the side, the panel, the opponents (for adjudicators: the teams)
and the position. Recipients are then "changed", "unchanged" or "new"; people told before who
are no longer in the draw are "removed" and get a notice of their own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from tabmail.compose.recipients import Recipient

# (context key, words); speakers and adjudicators carry different keys.
SPEAKER_FIELDS = (("VENUE", "room"), ("SIDE", "side"), ("OPPONENTS", "opponents"), ("PANEL", "panel"))
ADJUDICATOR_FIELDS = (("VENUE", "room"), ("POSITION", "position"), ("FULL_PANEL", "panel"), ("DRAW", "teams"))


class Change(enum.StrEnum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    NEW = "new"
    REMOVED = "removed"


def _assignments(context: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = context.get("ASSIGNMENTS")
    if isinstance(items, list) and items:
        return [a for a in items if isinstance(a, Mapping)]
    return [context]


def _fields(assignment: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return ADJUDICATOR_FIELDS if assignment.get("ROLE") == "adjudicator" else SPEAKER_FIELDS


def _show(value: Any) -> str:
    text = str(value) if value not in (None, "") else "none"
    return text


def differences(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What changed, one line per field ("room: Hall 1 → Hall 2"); empty when nothing did."""
    if previous.get("REMOVED"):
        return []
    before, after = _assignments(previous), _assignments(current)
    lines: list[str] = []
    if len(before) != len(after):
        lines.append(f"assignments: {len(before)} → {len(after)}")
    for old, new in zip(before, after, strict=False):
        for key, words in _fields(new):
            if old.get(key) != new.get(key):
                lines.append(f"{words}: {_show(old.get(key))} → {_show(new.get(key))}")
    return lines


def classify(
    recipient: Recipient, previous: Mapping[int, tuple[str, dict[str, Any]]]
) -> tuple[Change, list[str]]:
    """The recipient's change since their last message (looked up by each merged person)."""
    for pid in recipient.person_ids or (recipient.person_id,):
        if pid in previous:
            context = previous[pid][1]
            if context.get("REMOVED"):
                return Change.NEW, []
            lines = differences(context, recipient.context)
            return (Change.CHANGED, lines) if lines else (Change.UNCHANGED, [])
    return Change.NEW, []


def with_changes(recipient: Recipient, lines: Sequence[str]) -> Recipient:
    """The recipient with CHANGES for the templates and a reason naming what changed, so even
    a template that ignores CHANGES says it (in the footer)."""
    context = {**recipient.context, "CHANGES": list(lines)}
    reason = "your assignment changed since the previous email (" + "; ".join(lines) + ")"
    return replace(recipient, context=context, reasons=(*recipient.reasons, reason))


def removed_recipient(
    person_id: int,
    name: str,
    address: str | None,
    address_key: str | None,
    role: str,
    previous: Mapping[str, Any],
    base: Mapping[str, Any],
    problem: str | None,
) -> Recipient:
    """A "you are no longer in this round's draw" notice, naming what they were told before."""
    first = _assignments(previous)[0]
    before = ", ".join(
        f"{words} {_show(first.get(key))}"
        for key, words in _fields(first)
        if first.get(key) not in (None, "")
    )
    context = {
        **base,
        "USER": name,
        "ROLE": role,
        "REMOVED": True,
        "PREVIOUS": before,
        "ASSIGNMENTS": [],
    }
    round_name = base.get("ROUND", "this round")
    return Recipient(
        person_id=person_id,
        name=name,
        address=address,
        address_key=address_key,
        role=role,
        reasons=(f"you were in the draw of {round_name} in an earlier email and are no longer in it",),
        context=context,
        problem=problem,
        person_ids=(person_id,),
    )
