"""The settings dialog."""

from tabmail.gui.settings.dialog import SettingsDialog

__all__ = ["SettingsDialog"]
