"""A QTextBrowser that never fetches anything: HTML from imported data is shown, not trusted.

Qt's text browser would load ``file:`` and ``qrc:`` resources and, through a subclass, remote
ones; an email's HTML must do neither (a remote image is a read receipt, a ``file:`` image a
peek at the disk). ``loadResource`` answers every URL with nothing, except inline ``data:``
images, and records what it refused so the view can say so. Links are not followed inside the
browser; http(s) links open in the system browser only when the director clicks one.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QPalette, QTextDocument
from PySide6.QtWidgets import QTextBrowser, QWidget

ALLOWED_SCHEMES = frozenset({"data"})


class SafeTextBrowser(QTextBrowser):
    remote_content_blocked = Signal(str)  # the refused URL

    def __init__(self, parent: QWidget | None = None, *, open_links: bool = True) -> None:
        super().__init__(parent)
        self.blocked: list[str] = []
        # Email HTML is written for a light page (dark text, often a hard-coded colour): show it
        # on paper, as mail clients do, whatever the palette; a dark theme would hide the text.
        paper = QPalette(self.palette())
        paper.setColor(QPalette.ColorRole.Base, QColor("#ffffff"))
        paper.setColor(QPalette.ColorRole.Text, QColor("#1f1f1f"))
        paper.setColor(QPalette.ColorRole.Link, QColor("#1a5fb4"))
        self.setPalette(paper)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        if open_links:
            self.anchorClicked.connect(self._on_anchor_clicked)

    def set_safe_html(self, html: str) -> None:
        self.blocked = []
        self.document().setBaseUrl(QUrl())
        self.setHtml(html)
        self._note_images()

    def _note_images(self) -> None:
        """Record every image the document refers to that will not be loaded, now: Qt only asks
        for an image with a given size when it paints it, and the view says "blocked" at once."""
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fmt = it.fragment().charFormat()
                if fmt.isImageFormat():
                    url = QUrl(fmt.toImageFormat().name())
                    if url.scheme().lower() not in ALLOWED_SCHEMES:
                        self._refuse(url)
                it += 1
            block = block.next()

    def set_plain(self, text: str) -> None:
        self.blocked = []
        self.setPlainText(text)

    def loadResource(self, type: int, name: QUrl) -> Any:
        if name.scheme().lower() in ALLOWED_SCHEMES and type == QTextDocument.ResourceType.ImageResource:
            return super().loadResource(type, name)
        self._refuse(name)
        return None

    def _refuse(self, name: QUrl) -> None:
        url = name.toString()
        if url not in self.blocked:
            self.blocked.append(url)
            self.remote_content_blocked.emit(url)

    def _on_anchor_clicked(self, url: QUrl) -> None:
        if url.scheme().lower() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
