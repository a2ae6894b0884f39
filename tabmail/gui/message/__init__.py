"""The message view: one sent message as it was sent, its events and its resend chain."""

from tabmail.gui.message.browser import SafeTextBrowser
from tabmail.gui.message.view import MessageView, parse_raw

__all__ = ["MessageView", "SafeTextBrowser", "parse_raw"]
