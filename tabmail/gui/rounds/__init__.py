"""The round view: a round's notifications grouped by batch, with the message detail panel."""

from tabmail.gui.rounds.install import Dashboard, install_dashboard
from tabmail.gui.rounds.model import Column, RoundMessagesModel, RoundRoles
from tabmail.gui.rounds.page import RoundMessagesPage
from tabmail.gui.rounds.proxy import RoundMessagesProxy

__all__ = [
    "Column",
    "Dashboard",
    "RoundMessagesModel",
    "RoundMessagesPage",
    "RoundMessagesProxy",
    "RoundRoles",
    "install_dashboard",
]
