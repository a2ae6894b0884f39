"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from tabmail.domain.errors import TabmailError

if TYPE_CHECKING:  # the database layer is imported by the commands that open it
    from tabmail.services.context import AppContext


READ_ONLY_SENDING = "read-only database: sending disabled"

# Loading a command's modules (SQLAlchemy, the models, Jinja2, the email package) makes some
# hundred thousand objects and no garbage, yet the cyclic collector walks them again and again:
# ~10% of a fresh process's start. ``main`` pauses it; the database opened, it runs again, with
# what exists by then frozen (gc.freeze): collecting again at once would walk every object the
# imports made (~80 ms), and every later collection too. ``main`` unfreezes when the command
# ends (``end_startup_gc``), so a caller that runs commands in its own process (the tests) keeps
# collecting what they left; the launcher, whose process then exits, does not.
_gc_paused = False
_gc_frozen = False


def pause_gc_for_startup() -> None:
    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def resume_gc() -> None:
    """Collect as usual from now on (the command's modules are loaded; a long run, such as
    ``outbox run --wait``, makes garbage). Only undoes ``pause_gc_for_startup``."""
    global _gc_paused, _gc_frozen
    if _gc_paused:
        _gc_paused = False
        _gc_frozen = True
        gc.freeze()
        gc.enable()


def end_startup_gc(*, keep_frozen: bool = False) -> None:
    """When the command is over: collecting on, and what ``resume_gc`` froze collectable again
    (``keep_frozen``: not, as the process is about to exit)."""
    global _gc_frozen
    resume_gc()
    if _gc_frozen and not keep_frozen:
        _gc_frozen = False
        gc.unfreeze()


def open_context(args: argparse.Namespace, *, sends: bool = False, writes: bool = False) -> AppContext:
    """The app's context for one command. On a read-only database (``--read-only``, or a file
    this user cannot write) a command that ``sends`` or ``writes`` is refused in one line; any
    other command says once on stderr that sending is disabled, then runs."""
    from tabmail.services.context import AppContext

    ctx = AppContext.open(args.db, read_only=bool(getattr(args, "read_only", False)))
    resume_gc()
    if ctx.read_only:
        where = ctx.db.describe()
        if sends or writes:
            ctx.close()
            what = READ_ONLY_SENDING if sends else "read-only database: this command would change it"
            raise TabmailError(f"{what} ({where} is opened read-only)")
        print(f"tabmail: {READ_ONLY_SENDING} ({where} is opened read-only)", file=sys.stderr)
    return ctx


T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, with asyncio (~20 ms) imported only by the commands that need it."""
    import asyncio

    return asyncio.run(coro)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def confirm(prompt: str) -> bool:
    """Ask on the terminal; a closed or absent stdin answers no."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{prompt} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
