"""Geometry of the processed area: which crop the model sees and at what size it works.

"Masked region" mode crops the mask's bounding box plus padding, widened towards a square (models are
trained on squares) and shifted to stay inside the image, then works at the model's native resolution.
"""

from __future__ import annotations

from inpaint_studio.core.masks import Box


def _expand_axis(lo: int, hi: int, want: int, limit: int) -> tuple[int, int]:
    """Grow [lo, hi) to length `want` around its centre, shifted to fit [0, limit)."""
    want = min(max(want, hi - lo), limit)
    extra = want - (hi - lo)
    lo -= extra // 2
    hi = lo + want
    if lo < 0:
        lo, hi = 0, want
    if hi > limit:
        lo, hi = limit - want, limit
    return lo, hi


def crop_box(mask_box: Box, image_size: tuple[int, int], padding: int, min_side: int = 64) -> Box:
    """The area to process around `mask_box`: padded, square-ish, at least min_side, inside the image.

    The box only ever covers more than the padded mask box, so the whole mask is always inside it.
    """
    width, height = image_size
    left, top, right, bottom = mask_box
    left, top = max(0, left - padding), max(0, top - padding)
    right, bottom = min(width, right + padding), min(height, bottom + padding)
    side = max(right - left, bottom - top, min_side)
    left, right = _expand_axis(left, right, side, width)
    top, bottom = _expand_axis(top, bottom, side, height)
    return left, top, right, bottom


def working_size(size: tuple[int, int], long_side: int, multiple: int = 8) -> tuple[int, int]:
    """Scale `size` so its long side is `long_side`, keep the aspect, snap both sides to `multiple`."""
    width, height = size
    scale = long_side / max(width, height)
    w = max(multiple, round(width * scale / multiple) * multiple)
    h = max(multiple, round(height * scale / multiple) * multiple)
    return int(w), int(h)


def box_size(box: Box) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]
