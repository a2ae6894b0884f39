"""The Problems view, and the counts and alerts that point to it."""

from tabmail.gui.problems.hub import ProblemsHub
from tabmail.gui.problems.page import ProblemsPage

__all__ = ["ProblemsHub", "ProblemsPage"]
