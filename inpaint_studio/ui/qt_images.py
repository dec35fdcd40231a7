"""numpy / Pillow <-> Qt image conversions: the one place that knows QImage formats and strides.

`wrap()` makes a QImage that *views* an array (no copy: the caller keeps the array alive, e.g. the canvas's
display cache and mask overlay, which repaint from the live buffers); `to_qimage()` returns an independent
copy; `thumbnail_pixmap()` scales an array to fit a square for icons and previews.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

# Channels -> format of a straight (not premultiplied) 8-bit image.
_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}


def wrap(array: np.ndarray, image_format: QImage.Format | None = None) -> QImage:
    """A QImage over `array`'s memory (uint8, HxW or HxWxC, C-contiguous rows); the array must outlive it.

    The format defaults to grey / RGB / RGBA by channel count; pass one for other layouts (the display
    cache's premultiplied BGRA, the mask's Alpha8).
    """
    if array.dtype != np.uint8 or not array.flags.c_contiguous:
        raise ValueError(f"need a C-contiguous uint8 array, got {array.dtype} (contiguous={array.flags.c_contiguous})")
    channels = 1 if array.ndim == 2 else array.shape[2]
    fmt = image_format if image_format is not None else _FORMATS[channels]
    return QImage(array.data, array.shape[1], array.shape[0], array.strides[0], fmt)


def to_qimage(array: np.ndarray) -> QImage:
    """An independent QImage copy of a uint8 HxW, HxWx3 or HxWx4 (RGBA) array."""
    return wrap(np.ascontiguousarray(array)).copy()


def thumbnail_pixmap(array: np.ndarray, side: int) -> QPixmap:
    """The array scaled (smoothly, keeping its aspect) to fit a side x side square."""
    return QPixmap.fromImage(to_qimage(array)).scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def qimage_to_pil(image: QImage) -> Image.Image | None:
    """A detached PIL copy of a QImage: RGBA when any pixel is transparent, else RGB (None for a null image)."""
    if image.isNull():
        return None
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height, stride = rgba.width(), rgba.height(), rgba.bytesPerLine()
    buffer = np.frombuffer(rgba.constBits(), np.uint8, count=stride * height).reshape(height, stride)
    pixels = buffer[:, : width * 4].reshape(height, width, 4).copy()
    pil = Image.fromarray(pixels, "RGBA")
    return pil if (pixels[..., 3] < 255).any() else pil.convert("RGB")


def pil_to_qimage(image: Image.Image) -> QImage:
    """A QImage copy of a PIL image (as RGBA)."""
    return to_qimage(np.asarray(image.convert("RGBA")))
