"""The live preview: one recipient's message as it would be sent (HTML rendered safely)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QPlainTextEdit, QTabWidget, QVBoxLayout, QWidget

from tabmail.compose.recipients import Recipient
from tabmail.compose.templates import CompiledTemplates, RenderedParts, TemplateProblem, TemplateRenderError
from tabmail.domain.notification import Templates
from tabmail.gui.message.browser import SafeTextBrowser
from tabmail.gui.widgets import muted_label


class PreviewPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compose-preview")
        self.heading = muted_label("Preview", self)
        self.subject = QLabel(self)
        self.subject.setObjectName("preview-subject")
        self.subject.setWordWrap(True)
        font = self.subject.font()
        font.setBold(True)
        self.subject.setFont(font)
        self.browser = SafeTextBrowser(self, open_links=False)
        self.browser.setObjectName("preview-html")
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("preview-text")
        self.text.setReadOnly(True)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.browser, "HTML")
        self.tabs.addTab(self.text, "Plain text")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.heading)
        layout.addWidget(self.subject)
        layout.addWidget(self.tabs, 1)
        self.parts: RenderedParts | None = None

    def show_parts(self, who: str, parts: RenderedParts) -> None:
        self.parts = parts
        self.heading.setText(f"Preview for {who}")
        self.subject.setText(parts.subject)
        if parts.html is not None:
            self.browser.set_safe_html(parts.html)
            self.tabs.setTabEnabled(0, True)
        else:
            self.browser.set_plain("(no HTML part: only the plain text is sent)")
            self.tabs.setTabEnabled(0, False)
            self.tabs.setCurrentIndex(1)
        self.text.setPlainText(parts.text)

    def show_unavailable(self, who: str, why: str) -> None:
        self.parts = None
        self.heading.setText(f"Preview for {who}" if who else "Preview")
        self.subject.setText("")
        self.browser.set_plain(why)
        self.text.setPlainText(why)


def render_preview(
    templates: Templates, recipient: Recipient | None, tournament_name: str, time_limit: float
) -> tuple[RenderedParts | None, list[TemplateProblem]]:
    """In a worker thread: the syntax problems, else the render for ``recipient`` (if any)."""
    try:
        compiled = CompiledTemplates(templates, time_limit=time_limit)
        if recipient is None:
            return None, []
        return compiled.render(recipient, tournament_name=tournament_name), []
    except TemplateRenderError as exc:
        return None, exc.problems
