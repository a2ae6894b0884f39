"""The participants of a tournament: who they are, their addresses and what happened to them."""

from tabmail.gui.participants.model import Column, ParticipantsModel, address_status
from tabmail.gui.participants.page import ParticipantsFilterProxy, ParticipantsPage
from tabmail.gui.participants.person_panel import PersonPanel

__all__ = [
    "Column",
    "ParticipantsFilterProxy",
    "ParticipantsModel",
    "ParticipantsPage",
    "PersonPanel",
    "address_status",
]
