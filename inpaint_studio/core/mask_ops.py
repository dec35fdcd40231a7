"""Editing operations on the painted mask: invert, grow, shrink, feather, rectangle and lasso fills.

Pure numpy + OpenCV (no Qt). Every function returns a new uint8 HxW array (255 = repaint) and leaves its
input alone, so the caller can diff old and new for a compact undo record. Grow and shrink reuse the round
kernels of `inpaint_studio.core.masks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from inpaint_studio.core import masks
from inpaint_studio.core.document import Rect

Mode = Literal["add", "subtract", "replace"]


def invert(mask: np.ndarray) -> np.ndarray:
    return 255 - mask


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """Dilate by px pixels with a round kernel (soft edges grow with it)."""
    return masks.grow(mask, abs(int(px))).copy()


def shrink(mask: np.ndarray, px: int) -> np.ndarray:
    """Erode by px pixels with a round kernel."""
    return masks.grow(mask, -abs(int(px))).copy()


def feather(mask: np.ndarray, px: int) -> np.ndarray:
    """Soften the edge: a Gaussian blur whose visible reach is about px pixels on each side of the edge."""
    px = abs(int(px))
    if px == 0:
        return mask.copy()
    ksize = 2 * px + 1
    return cv2.GaussianBlur(mask, (ksize, ksize), sigmaX=px / 2.0, borderType=cv2.BORDER_REPLICATE)


def combine(mask: np.ndarray, shape: np.ndarray, mode: Mode) -> np.ndarray:
    """Merge a shape (uint8 coverage, same size) into a mask: add = max, subtract = min with the inverse."""
    if mode == "add":
        return np.maximum(mask, shape)
    if mode == "subtract":
        return np.minimum(mask, 255 - shape)
    return shape.copy()


def fill_rect(mask: np.ndarray, rect: Rect, mode: Mode = "add") -> np.ndarray:
    """The mask with a rectangle added to or subtracted from it (rect is clipped)."""
    height, width = mask.shape
    left, top = max(0, int(rect[0])), max(0, int(rect[1]))
    right, bottom = min(width, int(rect[2])), min(height, int(rect[3]))
    shape = np.zeros_like(mask)
    if right > left and bottom > top:
        shape[top:bottom, left:right] = 255
    return combine(mask, shape, mode)


def polygon_coverage(size: tuple[int, int], points: Sequence[tuple[float, float]]) -> np.ndarray:
    """An antialiased filled polygon (uint8 coverage) of the given (width, height)."""
    width, height = size
    shape = np.zeros((height, width), np.uint8)
    if len(points) >= 3:
        shift = 4  # sub-pixel precision for the antialiased edge
        pts = np.round((np.asarray(points, np.float64) - 0.5) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(shape, [pts], 255, lineType=cv2.LINE_AA, shift=shift)
    return shape


def fill_polygon(mask: np.ndarray, points: Sequence[tuple[float, float]], mode: Mode = "add") -> np.ndarray:
    """The mask with a closed polygon (a lasso) added to or subtracted from it."""
    height, width = mask.shape
    return combine(mask, polygon_coverage((width, height), points), mode)
