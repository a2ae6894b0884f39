"""The theme: every status has words and a shape as well as a colour, readable in both palettes."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette

from tabmail.domain.notification import DeliveryStatus, MessageState
from tabmail.gui.icons import BADGE_GLYPHS
from tabmail.gui.theme import (
    ADDRESS_LOOKS,
    Theme,
    Tone,
    address_look,
    delivery_status_look,
    is_dark,
    message_state_look,
)

pytestmark = pytest.mark.gui


def _luminance(c: QColor) -> float:
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())


def _contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _palette(window: str, text: str, base: str) -> QPalette:
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Window, QColor(window))
    palette.setColor(QPalette.ColorRole.WindowText, QColor(text))
    palette.setColor(QPalette.ColorRole.Base, QColor(base))
    return palette


LIGHT = _palette("#efefef", "#000000", "#ffffff")
DARK = _palette("#2b2b2b", "#e6e6e6", "#1e1e1e")


def test_every_state_and_status_has_a_look_with_words_and_a_shape(qapp) -> None:  # type: ignore[no-untyped-def]
    looks = [message_state_look(s) for s in MessageState]
    looks += [delivery_status_look(s) for s in DeliveryStatus]
    looks += [address_look(k) for k in ADDRESS_LOOKS]
    for look in looks:
        assert look.label and look.description
        assert look.glyph in BADGE_GLYPHS
    # Problems are never drawn with the same shape as success.
    assert (
        delivery_status_look(DeliveryStatus.BOUNCED).glyph
        != delivery_status_look(DeliveryStatus.DELIVERED).glyph
    )
    assert message_state_look("failed").tone == Tone.BAD
    assert not Theme().icon(delivery_status_look("bounced")).isNull()


def test_dark_palette_is_detected_and_changes_the_colours(qapp) -> None:  # type: ignore[no-untyped-def]
    assert not is_dark(LIGHT)
    assert is_dark(DARK)
    assert Theme(LIGHT).background(Tone.BAD) != Theme(DARK).background(Tone.BAD)


@pytest.mark.parametrize("palette", [LIGHT, DARK], ids=["light", "dark"])
def test_status_text_is_readable(qapp, palette: QPalette) -> None:  # type: ignore[no-untyped-def]
    theme = Theme(palette)
    base = palette.color(QPalette.ColorRole.Base)
    for tone in Tone:
        fg = theme.foreground(tone)
        assert _contrast(fg, base) >= 4.5, (tone, "on base")
        assert _contrast(fg, theme.background(tone)) >= 4.5, (tone, "on its highlight")
