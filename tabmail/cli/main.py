"""The ``tabmail`` command. Errors exit non-zero with one clear line on stderr."""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tabmail import __version__
from tabmail.cli import (
    config_cmds,
    data_cmds,
    db_cmds,
    import_cmds,
    inbox_cmds,
    problem_cmds,
    secret_cmds,
    send_cmds,
    status_cmds,
    template_cmds,
)
from tabmail.cli.common import end_startup_gc, pause_gc_for_startup, resume_gc
from tabmail.cli.errors import explain
from tabmail.cli.terminal import guard_terminal_streams
from tabmail.domain.errors import TabmailError

# Each command module adds its sub-commands; handlers are ``handler(args) -> int``.
COMMAND_MODULES: list[Any] = [
    import_cmds,
    data_cmds,
    send_cmds,
    status_cmds,
    inbox_cmds,
    problem_cmds,
    template_cmds,
    config_cmds,
    secret_cmds,
    db_cmds,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tabmail",
        description="The tab room's notification dashboard. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"tabmail {__version__}")
    parser.add_argument(
        "--db", metavar="PATH_OR_URL", help="database file or SQLAlchemy URL (env TABMAIL_DB)"
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="open the database without writing (review a copy); a file you cannot write is always opened so",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--smoke-test", action="store_true", help="start the GUI, load, quit (for packaging)")
    parser.add_argument(
        "--no-demo", action="store_true", help="do not load the demo tournament into an empty database"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(
    argv: Sequence[str] | None = None,
    gui: Callable[[argparse.Namespace], int] | None = None,
    *,
    exiting: bool = False,
) -> int:
    """Run a command; with no command, ``gui(args)`` opens the window (see tabmail.launcher).

    ``exiting``: the process ends when this returns (tabmail.launcher). What start-up froze for
    the collector then stays frozen: unfrozen, the interpreter's last collection at exit would
    walk it all (~0.2 s of a send). A caller that goes on (the tests) gets it back collectable."""
    pause_gc_for_startup()  # until the command has opened its database (cli.common)
    try:
        return _run(argv, gui)
    finally:
        end_startup_gc(keep_frozen=exiting)


def _run(argv: Sequence[str] | None, gui: Callable[[argparse.Namespace], int] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Warnings (everything with --debug) on stderr as before, plus the rotating, redacted log
    # file in the platform's log folder (tabmail.logs).
    guard_terminal_streams()  # names and provider texts cannot drive the director's terminal
    from tabmail.logs import setup_logging  # after parsing: --version and --help need none of it

    setup_logging(args.debug)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    try:
        if handler is None:
            if args.command is not None:
                parser.parse_args([args.command, "--help"])
            if gui is None:
                raise TabmailError("no command given (see tabmail --help)")
            resume_gc()  # the window collects in its own way (gui/collector.py)
            return gui(args)
        code = handler(args)
        sys.stdout.flush()  # a closed pipe or a full disk shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print("tabmail: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if _stdout_closed():
            return _reader_went_away()
        if args.debug:
            raise
        print(f"tabmail: error: a connection was closed by the other side ({exc})", file=sys.stderr)
        return 1
    except TabmailError as exc:
        if args.debug:
            raise
        print(f"tabmail: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            raise
        words = explain(exc)
        if words is not None:
            print(f"tabmail: error: {words}", file=sys.stderr)
            return 1
        print(
            f"tabmail: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return 2


def _stdout_closed() -> bool:
    """Whether the process reading our output has gone (a broken socket is another matter)."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _reader_went_away() -> int:
    """``tabmail status | head``: the reader has all it wanted. Like any Unix tool killed by
    SIGPIPE: no message, status 128 + SIGPIPE; what is still buffered goes nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE
