"""Brush strokes on numpy arrays: soft round dabs, dab spacing along a stroke, and stroke undo records.

Pure numpy (no Qt). The UI's tools feed pointer positions to a `StrokeSpacer`, stamp every dab it returns
with `stamp_mask` / `stamp_color` / `stamp_erase_alpha`, and let a `StrokeRecorder` remember the pixels a
stroke is about to change, so the whole stroke becomes one undo step holding only its bounding box.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from inpaint_studio.core.document import Rect, rect_union

SPACING = 0.25
"""Distance between dabs as a fraction of the brush diameter (what painting programs default to)."""


@lru_cache(maxsize=128)
def _dab_alpha(diameter_q: int, hardness_q: int, fx_q: int, fy_q: int) -> tuple[int, int, np.ndarray]:
    # Quantised arguments (diameter and the centre's sub-pixel offset in 1/4 px, hardness in 1/100) keep
    # the cache effective while a stroke of constant size moves over the canvas.
    radius, hardness = diameter_q / 8.0, hardness_q / 100.0
    fx, fy = fx_q / 4.0, fy_q / 4.0
    reach = radius + 0.5  # the antialiased edge straddles the radius
    left, right = math.floor(fx - reach), math.ceil(fx + reach)
    top, bottom = math.floor(fy - reach), math.ceil(fy + reach)
    dx = np.arange(left, right, dtype=np.float32) + np.float32(0.5 - fx)  # from the centre to pixel centres
    dy = np.arange(top, bottom, dtype=np.float32) + np.float32(0.5 - fy)
    dist = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    # Opaque inside about hardness x radius, smooth falloff to 0 half a pixel beyond the radius; at least
    # 1 px of edge so even a hard brush is antialiased (and a 1 px brush covers its pixel fully).
    edge = max(1.0, radius * (1.0 - hardness))
    t = np.clip((np.float32(reach) - dist) / np.float32(edge), 0.0, 1.0)
    alpha = t * t * (3.0 - 2.0 * t)  # smoothstep
    alpha.setflags(write=False)
    return left, top, alpha


def dab_alpha(x: float, y: float, diameter: float, hardness: float) -> tuple[Rect, np.ndarray]:
    """Coverage (float32 0..1, read-only) of a round dab centred on (x, y) and the rect it covers (not clipped).

    hardness 1 gives a crisp, antialiased disc; 0 a smooth falloff from the centre.
    """
    diameter = max(1.0, float(diameter))
    hardness = min(1.0, max(0.0, float(hardness)))
    ix, iy = math.floor(x), math.floor(y)
    fx_q, fy_q = round((x - ix) * 4), round((y - iy) * 4)
    left, top, alpha = _dab_alpha(round(diameter * 4), round(hardness * 100), fx_q, fy_q)
    return (ix + left, iy + top, ix + left + alpha.shape[1], iy + top + alpha.shape[0]), alpha


def _clip(rect: Rect, shape: tuple[int, ...]) -> tuple[Rect, tuple[slice, slice]] | None:
    """The part of rect inside an array of shape, and the matching slices into a rect-sized patch."""
    height, width = shape[0], shape[1]
    left, top, right, bottom = rect
    cl, ct, cr, cb = max(0, left), max(0, top), min(width, right), min(height, bottom)
    if cr <= cl or cb <= ct:
        return None
    return (cl, ct, cr, cb), (slice(ct - top, cb - top), slice(cl - left, cr - left))


def stamp_mask(mask: np.ndarray, rect: Rect, alpha: np.ndarray, erase: bool = False, flow: float = 1.0) -> Rect | None:
    """Paint (max) or erase (min) a dab into a uint8 mask in place; returns the clipped rect it touched.

    max/min rather than accumulation: overlapping dabs of one stroke never build up beyond the dab's own
    coverage, which is what a mask brush should do.
    """
    clipped = _clip(rect, mask.shape)
    if clipped is None:
        return None
    (left, top, right, bottom), (rows, cols) = clipped
    value = (alpha[rows, cols] * (255.0 * flow) + 0.5).astype(np.uint8)
    region = mask[top:bottom, left:right]
    if erase:
        np.minimum(region, 255 - value, out=region)
    else:
        np.maximum(region, value, out=region)
    return (left, top, right, bottom)


def stamp_color(
    pixels: np.ndarray, rect: Rect, alpha: np.ndarray, color: tuple[int, int, int], flow: float = 1.0
) -> Rect | None:
    """Blend a dab of colour "over" straight RGBA pixels in place; returns the clipped rect it touched."""
    clipped = _clip(rect, pixels.shape)
    if clipped is None:
        return None
    (left, top, right, bottom), (rows, cols) = clipped
    region = pixels[top:bottom, left:right]
    src_a = alpha[rows, cols] * np.float32(flow)
    touched = src_a > 0
    if not touched.any():
        return None
    dst_a = region[..., 3].astype(np.float32) / 255.0
    out_a = src_a + dst_a * (1.0 - src_a)
    color_f = np.asarray(color, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        rgb = (color_f * src_a[..., None] + region[..., :3] * (dst_a * (1.0 - src_a))[..., None]) / out_a[..., None]
    rgb = np.nan_to_num(rgb)
    new = np.empty_like(region)
    new[..., :3] = np.clip(rgb + 0.5, 0, 255)
    new[..., 3] = np.clip(out_a * 255.0 + 0.5, 0, 255)
    region[touched] = new[touched]  # untouched pixels stay bit-identical
    return (left, top, right, bottom)


def stamp_erase_alpha(pixels: np.ndarray, rect: Rect, alpha: np.ndarray, flow: float = 1.0) -> Rect | None:
    """Reduce the alpha of straight RGBA pixels under a dab in place (a layer eraser)."""
    clipped = _clip(rect, pixels.shape)
    if clipped is None:
        return None
    (left, top, right, bottom), (rows, cols) = clipped
    keep = 1.0 - alpha[rows, cols] * np.float32(flow)
    region = pixels[top:bottom, left:right, 3]
    region[...] = np.clip(region * keep + 0.5, 0, 255).astype(np.uint8)
    return (left, top, right, bottom)


@dataclass
class StrokePoint:
    x: float
    y: float
    pressure: float = 1.0


class StrokeSpacer:
    """Turns pointer samples into evenly spaced dab positions (spacing = SPACING x the dab diameter).

    The distance left over at the end of one segment carries into the next, so dab spacing along a stroke
    does not depend on how often the pointer reported its position. Pressure is interpolated linearly.
    """

    def __init__(self, diameter_at: Callable[[float], float], spacing: float = SPACING) -> None:
        self._diameter_at = diameter_at  # pressure -> diameter in document pixels
        self._spacing = spacing
        self._last: StrokePoint | None = None
        self._to_next = 0.0

    def start(self, point: StrokePoint) -> list[StrokePoint]:
        """Begin a stroke: the first dab sits under the pointer."""
        self._last = point
        self._to_next = self._step(point.pressure)
        return [point]

    def move_to(self, point: StrokePoint) -> list[StrokePoint]:
        """The dabs between the previous sample and this one."""
        last = self._last
        if last is None:
            return self.start(point)
        dx, dy = point.x - last.x, point.y - last.y
        length = math.hypot(dx, dy)
        dabs: list[StrokePoint] = []
        travelled = 0.0
        while length - travelled >= self._to_next:
            travelled += self._to_next
            t = travelled / length
            pressure = last.pressure + (point.pressure - last.pressure) * t
            dabs.append(StrokePoint(last.x + dx * t, last.y + dy * t, pressure))
            self._to_next = self._step(pressure)
        self._to_next -= length - travelled
        self._last = point
        return dabs

    def _step(self, pressure: float) -> float:
        return max(1.0, self._diameter_at(pressure) * self._spacing)


class StrokeRecorder:
    """Remembers the original pixels a stroke overwrites, tile by tile, for an exact and compact undo.

    Call `before_write(rect)` before every in-place change; `finish()` returns the bounding box of the
    pixels that actually changed with their old and new values (or None when nothing changed). Only
    touched tiles are copied, so a stroke on a 6000x4000 layer never copies the layer.
    """

    TILE = 128

    def __init__(self, array: np.ndarray) -> None:
        self._array = array
        self._tiles: dict[tuple[int, int], np.ndarray] = {}
        self._bounds: Rect | None = None

    @property
    def bounds(self) -> Rect | None:
        """Union of the rects announced so far."""
        return self._bounds

    def before_write(self, rect: Rect) -> None:
        height, width = self._array.shape[:2]
        left, top = max(0, rect[0]), max(0, rect[1])
        right, bottom = min(width, rect[2]), min(height, rect[3])
        if right <= left or bottom <= top:
            return
        self._bounds = rect_union(self._bounds, (left, top, right, bottom))
        tile = self.TILE
        for ty in range(top // tile, (bottom - 1) // tile + 1):
            for tx in range(left // tile, (right - 1) // tile + 1):
                if (tx, ty) not in self._tiles:
                    y0, x0 = ty * tile, tx * tile
                    self._tiles[(tx, ty)] = self._array[y0 : y0 + tile, x0 : x0 + tile].copy()

    def finish(self) -> tuple[Rect, np.ndarray, np.ndarray] | None:
        """(rect, old, new) of the changed pixels, tightened to what really changed; None if nothing did."""
        if self._bounds is None:
            return None
        left, top, right, bottom = self._bounds
        new = self._array[top:bottom, left:right].copy()
        old = new.copy()
        tile = self.TILE
        for (tx, ty), saved in self._tiles.items():
            x0, y0 = tx * tile, ty * tile
            ix0, iy0 = max(x0, left), max(y0, top)
            ix1, iy1 = min(x0 + saved.shape[1], right), min(y0 + saved.shape[0], bottom)
            if ix1 > ix0 and iy1 > iy0:
                old[iy0 - top : iy1 - top, ix0 - left : ix1 - left] = saved[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        diff = old != new
        if diff.ndim == 3:
            diff = diff.any(axis=2)
        rows = np.flatnonzero(diff.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(diff.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        rect = (left + c0, top + r0, left + c1, top + r1)
        return rect, old[r0:r1, c0:c1].copy(), new[r0:r1, c0:c1].copy()
