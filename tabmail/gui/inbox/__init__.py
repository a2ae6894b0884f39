"""The tab room's mailbox in the window: the mail that matched none of our messages."""

from tabmail.gui.inbox.unmatched import UnmatchedMailDialog

__all__ = ["UnmatchedMailDialog"]
