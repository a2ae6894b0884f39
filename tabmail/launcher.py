"""The ``tabmail`` entry point: a command runs in the terminal; no command opens the window."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tabmail.cli.main import main as cli_main


def _gui(args: argparse.Namespace) -> int:
    from tabmail.app import run_gui  # Qt is imported only when the window is wanted

    return run_gui(args)


def main(argv: Sequence[str] | None = None) -> int:
    """The process's entry point: nothing runs after it returns (see ``exiting``)."""
    return cli_main(argv, gui=_gui, exiting=True)
