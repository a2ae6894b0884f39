"""Importing a tournament from Tabbycat or CSV files."""

from tabmail.gui.importer.dialog import ImportDialog, ImportFunctions, split_tabbycat_url, summarise

__all__ = ["ImportDialog", "ImportFunctions", "split_tabbycat_url", "summarise"]
