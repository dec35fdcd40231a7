"""The canvas's display cache: the composite as premultiplied BGRA QImages plus a mip pyramid.

The composite of a 6000x4000 photo is 96 MB; recomputing or converting it per brush dab would make painting
crawl. The cache holds it once, in the pixel format QPainter draws fastest (ARGB32_Premultiplied, which is
BGRA bytes in memory on little-endian machines), and updates only the rect that changed. QImages wrap the
numpy arrays without copying. Half-size levels (box-filtered) let a zoomed-out view look like a photo
instead of an aliased sampling of every n-th pixel, at the cost of a third more memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
from PySide6.QtGui import QImage

from inpaint_studio.core.document import Rect
from inpaint_studio.ui import qt_images

MIN_LEVEL_SIDE = 128  # no pyramid level smaller than this
MAX_LEVELS = 8


class DisplayCache:
    """Premultiplied BGRA copies of some RGBA source, level 0 at full size, level k at 1/2^k."""

    def __init__(self, source: Callable[[Rect], np.ndarray]) -> None:
        # source(rect) -> (h, w, 4) uint8 premultiplied RGBA of that rect, e.g. Document.composite.
        self._source = source
        self._levels: list[np.ndarray] = []
        self._images: list[QImage] = []
        self._pending: Rect | None = None  # rects marked stale while nobody looked (see mark_stale)

    @property
    def width(self) -> int:
        return self._levels[0].shape[1] if self._levels else 0

    @property
    def height(self) -> int:
        return self._levels[0].shape[0] if self._levels else 0

    @property
    def nbytes(self) -> int:
        return sum(level.nbytes for level in self._levels)

    def clear(self) -> None:
        self._levels, self._images, self._pending = [], [], None

    def rebuild(self, width: int, height: int) -> None:
        """Allocate for a new size and fill everything from the source."""
        self.clear()
        if width <= 0 or height <= 0:
            return
        w, h = width, height
        self._levels.append(np.zeros((h, w, 4), np.uint8))
        while len(self._levels) < MAX_LEVELS and min(w, h) // 2 >= MIN_LEVEL_SIDE:
            w, h = w // 2, h // 2
            self._levels.append(np.zeros((h, w, 4), np.uint8))
        self._images = [qt_images.wrap(level, QImage.Format.Format_ARGB32_Premultiplied) for level in self._levels]
        self.update((0, 0, width, height))

    def mark_stale(self, rect: Rect) -> None:
        """Remember that rect changed without refreshing now (for a cache that is not on screen)."""
        if not self._levels:
            return
        left, top, right, bottom = self._pending or rect
        self._pending = (min(left, rect[0]), min(top, rect[1]), max(right, rect[2]), max(bottom, rect[3]))

    def refresh_stale(self) -> None:
        if self._pending is not None:
            rect, self._pending = self._pending, None
            self.update(rect)

    def update(self, rect: Rect) -> None:
        """Refresh a rect of level 0 from the source, then the matching parts of every smaller level."""
        if not self._levels:
            return
        left, top = max(0, rect[0]), max(0, rect[1])
        right, bottom = min(self.width, rect[2]), min(self.height, rect[3])
        if right <= left or bottom <= top:
            return
        rgba = self._source((left, top, right, bottom))
        self._levels[0][top:bottom, left:right] = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)
        for k in range(1, len(self._levels)):
            above, level = self._levels[k - 1], self._levels[k]
            left, top = left // 2, top // 2
            right = min(level.shape[1], math.ceil(right / 2))
            bottom = min(level.shape[0], math.ceil(bottom / 2))
            if right <= left or bottom <= top:
                break
            block = above[2 * top : 2 * bottom, 2 * left : 2 * right]
            # INTER_AREA at exactly half size is a 2x2 box average (on premultiplied pixels, as it must be).
            level[top:bottom, left:right] = cv2.resize(
                block, (right - left, bottom - top), interpolation=cv2.INTER_AREA
            )

    def image_for(self, scale: float) -> tuple[QImage, float] | None:
        """The smallest level still at least as detailed as the screen; returns it and its scale (1/2^k)."""
        if not self._images:
            return None
        k = 0
        while k + 1 < len(self._images) and 0.5 ** (k + 1) >= scale:
            k += 1
        return self._images[k], 0.5**k

    def level_array(self, k: int) -> np.ndarray:
        """Level k's BGRA premultiplied array (read it; do not write)."""
        return self._levels[k]
