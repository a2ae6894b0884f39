"""tabmail: the tab room's notification dashboard."""

__version__ = "0.1.0"
