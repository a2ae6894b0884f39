"""Custom item-data roles shared by every tabmail model.

Views and tests read semantics from these roles, never from colours: the theme turns a
semantic value into colour, icon and text in one place (``gui/theme.py``).
"""

from __future__ import annotations

import enum

from PySide6.QtCore import Qt


class Roles(enum.IntEnum):
    # The semantic status of a cell or row as a plain string (a MessageState, a DeliveryStatus,
    # or an address status such as "invalid"); None when the cell has none.
    STATUS = Qt.ItemDataRole.UserRole + 1
    # A sortable key (numbers and lower-cased text) used by the proxies' sortRole.
    SORT = Qt.ItemDataRole.UserRole + 2
    # The database id (or tabmail message id) of the row's object.
    ID = Qt.ItemDataRole.UserRole + 3
    # The domain object behind the row (a Person, a Round...), read-only.
    OBJECT = Qt.ItemDataRole.UserRole + 4
    # True when the row needs the director's attention (invalid address, bounce, failure).
    PROBLEM = Qt.ItemDataRole.UserRole + 5
    # What a navigation node is ("tournament", "participants", "round").
    KIND = Qt.ItemDataRole.UserRole + 6
