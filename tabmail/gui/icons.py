"""Small flat icons painted at run time, so they follow the palette and need no icon theme.

Status badges are a coloured disc (or triangle) with a white symbol whose *shape* carries the
meaning (tick, cross, clock, exclamation...), so colour is never the only cue. Action icons are
outlines in the palette's text colour. ``gui/theme.py`` decides which glyph and colour a status
gets; this module only draws.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

# Glyph names understood by ``badge_icon``.
BADGE_GLYPHS = (
    "check",
    "double_check",
    "cross",
    "clock",
    "arrow",
    "retry",
    "warning",
    "minus",
    "question",
    "dot",
    "at",
    "slash",
)
# Glyph names understood by ``action_icon``.
ACTION_GLYPHS = ("import", "compose", "refresh", "settings", "search", "people", "round", "tournament")

_SIZES = (16, 20, 24, 32)


def _pixmap(size: int) -> tuple[QPixmap, QPainter]:
    ratio = 2.0  # crisp on HiDPI screens; Qt scales down elsewhere
    pm = QPixmap(int(size * ratio), int(size * ratio))
    pm.setDevicePixelRatio(ratio)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 16.0, size / 16.0)  # every glyph is drawn on a 16×16 grid
    return pm, p


def _pen(color: QColor, width: float) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _draw_badge(p: QPainter, glyph: str, accent: QColor) -> None:
    white = QColor("#ffffff")
    if glyph == "warning":
        tri = QPainterPath()
        tri.moveTo(8, 1.2)
        tri.lineTo(15.2, 14.4)
        tri.lineTo(0.8, 14.4)
        tri.closeSubpath()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(accent)
        p.drawPath(tri)
        p.setPen(_pen(QColor("#1a1a1a"), 1.8))
        p.drawLine(QPointF(8, 5.6), QPointF(8, 9.4))
        p.drawPoint(QPointF(8, 12.1))
        return
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(accent)
    if glyph == "slash":  # hollow ring with a bar: "not applicable / inactive"
        p.setPen(_pen(accent, 1.8))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(QRectF(2, 2, 12, 12))
        p.drawLine(QPointF(4.2, 11.8), QPointF(11.8, 4.2))
        return
    p.drawEllipse(QRectF(0.8, 0.8, 14.4, 14.4))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(_pen(white, 1.8))
    if glyph == "check":
        p.drawPolyline([QPointF(4.6, 8.3), QPointF(7.0, 10.6), QPointF(11.4, 5.6)])
    elif glyph == "double_check":
        p.setPen(_pen(white, 1.5))
        p.drawPolyline([QPointF(3.2, 8.4), QPointF(5.4, 10.6), QPointF(9.2, 5.8)])
        p.drawPolyline([QPointF(7.4, 10.4), QPointF(8.0, 10.6), QPointF(12.4, 5.8)])
    elif glyph == "cross":
        p.drawLine(QPointF(5.4, 5.4), QPointF(10.6, 10.6))
        p.drawLine(QPointF(10.6, 5.4), QPointF(5.4, 10.6))
    elif glyph == "clock":
        p.setPen(_pen(white, 1.5))
        p.drawLine(QPointF(8, 8), QPointF(8, 4.4))
        p.drawLine(QPointF(8, 8), QPointF(10.6, 9.6))
    elif glyph == "arrow":
        p.drawLine(QPointF(4.4, 8), QPointF(11.2, 8))
        p.drawPolyline([QPointF(8.6, 5.2), QPointF(11.4, 8), QPointF(8.6, 10.8)])
    elif glyph == "retry":
        p.setPen(_pen(white, 1.5))
        p.drawArc(QRectF(4.4, 4.4, 7.2, 7.2), 60 * 16, 270 * 16)
        p.drawPolyline([QPointF(9.0, 3.4), QPointF(10.0, 5.0), QPointF(8.2, 5.9)])
    elif glyph == "minus":
        p.drawLine(QPointF(4.8, 8), QPointF(11.2, 8))
    elif glyph == "question":
        p.setPen(_pen(white, 1.6))
        p.drawArc(QRectF(5.6, 3.6, 4.8, 4.4), 160 * 16, -250 * 16)
        p.drawLine(QPointF(8, 8.2), QPointF(8, 9.4))
        p.drawPoint(QPointF(8, 11.8))
    elif glyph == "dot":
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(white)
        p.drawEllipse(QRectF(6.2, 6.2, 3.6, 3.6))
    elif glyph == "at":
        p.setPen(_pen(white, 1.3))
        p.drawEllipse(QRectF(6.2, 6.2, 3.6, 3.6))
        p.drawArc(QRectF(3.6, 3.6, 8.8, 8.8), 0, 300 * 16)
        p.drawLine(QPointF(9.8, 7.2), QPointF(9.8, 9.2))
        p.drawArc(QRectF(9.8, 7.6, 2.6, 3.4), 180 * 16, 180 * 16)


def badge_icon(glyph: str, accent: QColor) -> QIcon:
    """A status badge. ``glyph`` is one of ``BADGE_GLYPHS``; unknown names draw a plain disc."""
    icon = QIcon()
    for size in _SIZES:
        pm, p = _pixmap(size)
        _draw_badge(p, glyph, accent)
        p.end()
        icon.addPixmap(pm)
    return icon


def _draw_action(p: QPainter, glyph: str, ink: QColor, accent: QColor) -> None:
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(_pen(ink, 1.4))
    if glyph == "import":
        p.drawPolyline([QPointF(2, 10), QPointF(2, 14), QPointF(14, 14), QPointF(14, 10)])
        p.setPen(_pen(accent, 1.6))
        p.drawLine(QPointF(8, 1.8), QPointF(8, 10.4))
        p.drawPolyline([QPointF(4.8, 7.4), QPointF(8, 10.6), QPointF(11.2, 7.4)])
    elif glyph == "compose":
        p.drawRoundedRect(QRectF(1.6, 3.6, 12.8, 9.6), 1.2, 1.2)
        p.drawPolyline([QPointF(1.9, 4.2), QPointF(8, 8.8), QPointF(14.1, 4.2)])
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(accent)
        p.drawEllipse(QRectF(9.4, 8.6, 6.4, 6.4))
        p.setPen(_pen(QColor("#ffffff"), 1.2))
        p.drawLine(QPointF(12.6, 10.1), QPointF(12.6, 13.5))
        p.drawLine(QPointF(10.9, 11.8), QPointF(14.3, 11.8))
    elif glyph == "refresh":
        p.setPen(_pen(accent, 1.6))
        p.drawArc(QRectF(2.4, 2.4, 11.2, 11.2), 30 * 16, 280 * 16)
        p.drawPolyline([QPointF(13.6, 2.6), QPointF(13.4, 5.6), QPointF(10.4, 5.4)])
    elif glyph == "settings":
        for y, knob in ((4.0, 10.5), (8.0, 5.0), (12.0, 9.0)):
            p.setPen(_pen(ink, 1.4))
            p.drawLine(QPointF(2, y), QPointF(14, y))
            p.setPen(_pen(accent, 1.4))
            p.setBrush(accent)
            p.drawEllipse(QPointF(knob, y), 1.6, 1.6)
            p.setBrush(Qt.BrushStyle.NoBrush)
    elif glyph == "search":
        p.drawEllipse(QRectF(2.2, 2.2, 8.4, 8.4))
        p.setPen(_pen(ink, 1.8))
        p.drawLine(QPointF(9.6, 9.6), QPointF(13.8, 13.8))
    elif glyph == "people":
        p.drawEllipse(QRectF(3.2, 2.4, 4.6, 4.6))
        p.drawArc(QRectF(1.2, 8.6, 8.6, 8.6), 0, 180 * 16)
        p.setPen(_pen(accent, 1.4))
        p.drawEllipse(QRectF(9.6, 3.6, 3.8, 3.8))
        p.drawArc(QRectF(8.4, 9.0, 6.6, 7.0), 0, 180 * 16)
    elif glyph == "round":
        p.drawRoundedRect(QRectF(2, 3, 12, 11), 1.6, 1.6)
        p.drawLine(QPointF(2.2, 6.4), QPointF(13.8, 6.4))
        p.setPen(_pen(ink, 1.6))
        p.drawLine(QPointF(5, 1.6), QPointF(5, 4))
        p.drawLine(QPointF(11, 1.6), QPointF(11, 4))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(accent)
        p.drawRect(QRectF(8.4, 8.6, 3.2, 3.2))
    elif glyph == "tournament":
        # A trophy cup: the tab room's reason to exist.
        path = QPainterPath()
        path.moveTo(4, 2)
        path.lineTo(12, 2)
        path.lineTo(12, 6)
        path.arcTo(QRectF(4, 2, 8, 8), 0, -180)
        path.closeSubpath()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(accent)
        p.drawPath(path)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(_pen(ink, 1.3))
        p.drawArc(QRectF(1.4, 3, 4, 4), 90 * 16, 180 * 16)
        p.drawArc(QRectF(10.6, 3, 4, 4), 90 * 16, -180 * 16)
        p.drawLine(QPointF(8, 10), QPointF(8, 12.6))
        p.drawLine(QPointF(4.8, 13.8), QPointF(11.2, 13.8))


def action_icon(glyph: str, ink: QColor, accent: QColor) -> QIcon:
    """An outline toolbar/menu icon; ``ink`` is the palette's text colour."""
    icon = QIcon()
    for mode, colour in ((QIcon.Mode.Normal, ink), (QIcon.Mode.Disabled, _faded(ink))):
        for size in _SIZES:
            pm, p = _pixmap(size)
            _draw_action(p, glyph, colour, accent if mode == QIcon.Mode.Normal else _faded(accent))
            p.end()
            icon.addPixmap(pm, mode)
    return icon


def _faded(c: QColor) -> QColor:
    faded = QColor(c)
    faded.setAlphaF(0.35)
    return faded


def dot_icon(colour: QColor, size: int = 12) -> QIcon:
    """A plain disc for small indicators (next to text that says the same thing)."""
    pm, p = _pixmap(size)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    r = 5.0
    p.drawEllipse(QPointF(8, 8), r, r)
    p.end()
    return QIcon(pm)
