"""Practice mode around its backend and status source: turning it on for the demo, and making
sure nothing it invented outlives it.

Practice fates flag addresses as a real bounce would (so the rehearsal shows what a director
sees), with the flag source ``practice``. Those flags say nothing true about the address: when
the backend is no longer practice, ``forget_practice_flags`` clears them, so a real send after a
rehearsal skips nobody because of a pretend bounce.
"""

from __future__ import annotations

import logging

from tabmail.domain.events import AddressFlagsChanged
from tabmail.domain.practice import BACKEND
from tabmail.services.context import AppContext
from tabmail.services.sending import is_practice

log = logging.getLogger(__name__)

CLEARED_REASON = "set in practice mode (pretend bounces); the backend is no longer practice"


def use_practice_by_default(ctx: AppContext) -> bool:
    """Select the practice backend unless a backend was ever chosen; True if it was selected."""
    if ctx.settings.is_set("backend"):
        return False
    ctx.settings.set("backend", BACKEND)
    log.info("the practice backend is selected (nothing leaves this computer)")
    return True


def forget_practice_flags(ctx: AppContext) -> list[str]:
    """Outside practice mode, clear the flags practice fates set; the address keys cleared.
    In practice mode, nothing (the rehearsal goes on)."""
    if is_practice(ctx):
        return []
    keys = ctx.flags.clear_source(BACKEND, CLEARED_REASON)
    if keys:
        log.info("cleared %d address flag(s) set in practice mode", len(keys))
        ctx.bus.publish(AddressFlagsChanged(tuple(keys)))
    return keys
