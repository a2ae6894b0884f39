"""The compose dialog: recipients, template editor with live preview, send with progress."""

from tabmail.gui.composer.dialog import ComposeDialog
from tabmail.gui.composer.sending import backend_phrase

__all__ = ["ComposeDialog", "backend_phrase"]
