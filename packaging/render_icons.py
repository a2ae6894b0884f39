"""Render the app icon (resources/icons/tabmail.svg) into the raster files the platforms want.

    .venv/bin/python packaging/render_icons.py

Writes resources/icons/tabmail-{64,128,256}.png (Linux hicolor sizes, also the window icon where
SVG cannot be loaded), packaging/windows/tabmail.ico and packaging/macos/tabmail.icns (both
multi-size, PNG-compressed). Runs offscreen with Qt alone (QtSvg ships with PySide6-Essentials).
Re-run it after changing the SVG and commit the results.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "icons" / "tabmail.svg"
PNG_SIZES = (64, 128, 256)
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 256)  # what Explorer, the taskbar and the installer ask for


def render(renderer: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image


def write(image: QImage, path: Path, fmt: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = QImageWriter(str(path), fmt)
    if not writer.write(image):
        raise SystemExit(f"cannot write {path}: {writer.errorString()}")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def write_ico(renderer: QSvgRenderer, path: Path) -> None:
    """A multi-size .ico with PNG-compressed entries (Windows Vista and later read these).

    Qt's own ico writer stores a single image; Windows picks the nearest size per context.
    """
    images = [png_bytes(render(renderer, size)) for size in ICO_SIZES]
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries, blobs = b"", b""
    for size, blob in zip(ICO_SIZES, images, strict=True):
        side = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(blob), offset + len(blobs))
        blobs += blob
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + entries + blobs)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes, sizes {ICO_SIZES})")


# icns element types holding PNG data, by pixel size (the @2x types reuse the larger renders).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"ic11", 32), (b"icp6", 64), (b"ic12", 64),
    (b"ic07", 128), (b"ic08", 256), (b"ic13", 256), (b"ic09", 512), (b"ic14", 512), (b"ic10", 1024),
)  # fmt: skip


def write_icns(renderer: QSvgRenderer, path: Path) -> None:
    """An .icns of PNG elements (macOS 10.7 and later); Qt's icns writer stores one size only."""
    cache: dict[int, bytes] = {}
    body = b""
    for kind, size in ICNS_TYPES:
        blob = cache.setdefault(size, png_bytes(render(renderer, size)))
        body += kind + struct.pack(">I", 8 + len(blob)) + blob
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"icns" + struct.pack(">I", 8 + len(body)) + body)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def main() -> int:
    _app = QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"not a valid SVG: {SVG}")
    for size in PNG_SIZES:
        write(render(renderer, size), SVG.with_name(f"tabmail-{size}.png"), b"png")
    write_ico(renderer, ROOT / "packaging" / "windows" / "tabmail.ico")
    write_icns(renderer, ROOT / "packaging" / "macos" / "tabmail.icns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
