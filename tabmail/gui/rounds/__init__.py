"""The round view: a round's notifications grouped by batch, with the message detail panel.

The page and the main-window wiring live in ``rounds.page`` and ``rounds.install`` (imported
from there, so that ``gui.message`` can use ``rounds.words`` without an import cycle).
"""

from tabmail.gui.rounds.model import Column, RoundMessagesModel, RoundRoles
from tabmail.gui.rounds.proxy import RoundMessagesProxy

__all__ = ["Column", "RoundMessagesModel", "RoundMessagesProxy", "RoundRoles"]
