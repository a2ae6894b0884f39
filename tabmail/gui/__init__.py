"""The desktop GUI (PySide6 + qasync). Only this package and ``tabmail.app`` import Qt.

- ``main_window``: the window, its actions, navigator (``navigator``), status bar
  (``status_bar``); it owns the round view (``rounds/``), the composer and the background worker.
- ``run_op``: the one helper for async work; ``bridge``: bus events as Qt signals;
  ``theme``/``icons``/``roles``: how statuses look and which item roles carry them.
- Screens: ``participants/``, ``importer/``, ``settings/``.

Everything reaches the rest of tabmail through ``AppContext`` and ``services/``.
"""
