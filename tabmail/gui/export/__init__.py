"""File → Export… and Print…: what the current page shows as CSV, PDF or a printout."""

from tabmail.gui.export.actions import ExportActions
from tabmail.gui.export.table import ExportTable

__all__ = ["ExportActions", "ExportTable"]
