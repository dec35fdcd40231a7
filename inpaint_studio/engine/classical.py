"""Classical (OpenCV) inpainting: the fill that works on a fresh install, with no model downloaded.

Meant for spots, scratches, wires and small objects on photos up to ~50 MP. The work is done region by
region, never on the whole frame:

1. The mask is pooled onto a coarse grid (one cell per ``_CELL`` = 4 px) and split into 8-connected
   components: blobs a few pixels apart become one *group*.
2. Each group becomes one work item: its bounding box plus a margin of context. Small groups that share a
   grid tile are binned into one item; long sparse groups (a wire across the frame) are cut into tiles,
   each with a halo of context, so no item ever covers the frame.
3. Items run in a small thread pool (OpenCV releases the GIL); each reads the *original* image and
   writes back only the hole pixels it owns, so the result does not depend on order or thread count.
   Cancel and progress are checked/reported between items.

Methods (``ClassicalMethod``):

- TELEA: ``cv2.INPAINT_TELEA`` (fast marching), default radius 3.
- NAVIER_STOKES: ``cv2.INPAINT_NS``, default radius 1.
- FSR: ``cv2.xphoto.inpaint`` with ``INPAINT_FSR_FAST`` (frequency selective reconstruction). Note that
  xphoto uses the *inverted* mask convention (non-zero = valid pixel, 0 = missing) and a BGR image: it
  converts to YCrCb internally, so channel order matters, and it slightly alters pixels outside the hole
  (the YCrCb round trip), which is one reason results are written back through the mask only.
  ``INPAINT_FSR_BEST`` is not used: measured 13-16x slower than FAST and 0.3-1.0 dB *worse* (discs of
  8 and 16 px, 3 px lines; 10 samples each).
- AUTO: per item, FSR where it measurably wins and stays affordable, NAVIER_STOKES elsewhere (see
  ``_choose_auto``).

Measurements behind the defaults (PSNR inside the hole, dB; one hole per crop with 16 px of context, 10
skimage photos and textures x 4-5 random placements; lines are 120 px long; 2 busy CPU cores). Rows
disc 32/48/64 pool two runs (90 samples); NS and Telea at radius 3-5 and 9 were measured too::

    hole            NS r1   Telea r3   FSR fast   FSR - NS   FSR ms
    line 1 px       30.8    27.4       31.7       +0.9        63
    line 3 px       26.9    25.8       29.1       +2.2       105
    line 6 px       24.6    23.9       26.3       +1.7       132
    disc 3 px       37.1    33.0       36.9       -0.2         2
    disc 8 px       31.5    29.7       33.3       +1.8         9
    disc 16 px      24.2    23.4       26.4       +2.2        31
    disc 24 px      24.3    23.5       26.1       +1.8        52
    disc 32 px      24.0    23.3       25.7       +1.7       115
    disc 40 px      20.9    20.8       22.1       +1.2       160
    disc 48 px      20.5    20.4       21.8       +1.3       205
    disc 56 px      21.7    21.2       21.9       +0.3       310
    disc 64 px      20.1    19.9       19.6       -0.5       305

NS and Telea cost < 3 ms on any of these. NS at radius 1 beat Telea on every case; Telea was best at
radius 3 on thin lines and small spots (on holes 64-192 px across, radius 5-9 gains 0.2-0.7 dB for either
method at 3-20x the time). FSR gains 1-2 dB on holes 3-48 px across, nothing from ~56 px, and costs
~10-20 ms per 16x16 block of hole. Context: NS/Telea use only their radius; FSR does as well with 8 px
around the hole as with 32 px once its partial edge blocks are padded (see ``_fsr``). Every crop gets
>= 16 px.

RGBA: the alpha channel is filled too, with the same method, as its own single-channel image, so a hole
that crosses an alpha edge keeps a plausible edge. Where the alpha around a hole is constant (the usual,
fully opaque case) the hole gets exactly that constant: Telea would otherwise add +-3 of noise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import ClassicalMethod
from inpaint_studio.core.masks import is_masked

if TYPE_CHECKING:
    from inpaint_studio.engine.events import CancelToken

__all__ = ["DEFAULT_RADIUS", "LARGE_HOLE_PX", "classical_fill", "hole_thickness_px"]

DEFAULT_RADIUS: dict[ClassicalMethod, int] = {
    ClassicalMethod.TELEA: 3,
    ClassicalMethod.NAVIER_STOKES: 1,
}
"""Inpainting radius used when the caller gives none (best PSNR in the study in the module docstring)."""

MAX_RADIUS = 64

_CELL = 4  # coarse-grid cell (px) used to group blobs: pooling 24 MP costs ~20 ms, a full-res CC ~65 ms
_TILE = 256  # core size of the tiles a long, sparse group is cut into; also the bin size for small groups
_SMALL = 64  # groups whose bounding box fits in this many px are binned by tile
_MIN_MARGIN = 16  # context around every item (FSR, measured, is as good with 8 px; 16 is cheap insurance)
_FSR_BLOCK = 16  # FSR's largest block: its cost grows with the blocks that hold hole pixels

# AUTO: FSR for holes at least 3 px and at most ~48 px thick (max distance to a known pixel in
# [_FSR_MIN_DEPTH, _FSR_MAX_DEPTH]), NS elsewhere. FSR costs ~12-20 ms per 16x16 block holding hole pixels
# (measured on the eval masks: spots 15, scratches 21, large blobs 29 ms/block on a busy 2-core machine),
# so it gets a budget of blocks per call: a large mask stays interactive (about 1 s of FSR on one core) and
# a count, not a clock, keeps the result reproducible.
_FSR_MIN_DEPTH = 2.0
_FSR_MAX_DEPTH = 24.0
_FSR_BUDGET_BLOCKS = 64

LARGE_HOLE_PX = 2 * _FSR_MAX_DEPTH
"""A hole thicker than this (px, at the photo's own resolution) is too large for the classical fill to look
right: in the study above every method is down to ~20-22 dB inside discs of 40 px and more (against 31-37 dB
for spots of 3-8 px), and FSR, the one method that still adds texture, stops helping there (it is only used up
to this thickness). Such a hole is smeared into streaks of its border's colours; a removal network (LaMa,
MI-GAN) is what fills it. Thickness, not area: a wire across the frame is long but thin and fills well."""


@dataclass(frozen=True)
class _Item:
    """One unit of work: run the method on ``crop``, write back the owned hole pixels inside ``core``."""

    crop: tuple[int, int, int, int]  # y0, y1, x0, x1 of the window the method sees
    core: tuple[int, int, int, int]  # window whose owned hole pixels are written back (inside crop)
    key: int  # owner key: a hole pixel is owned when key_of_label[its coarse label] == key
    depth: float = 0.0  # max distance (px) from an owned hole pixel to a known pixel in the crop
    blocks: int = 0  # 16x16 blocks of the crop that hold hole pixels (FSR cost)


# ---- public API -------------------------------------------------------------------------------------------
def hole_thickness_px(mask: np.ndarray) -> float:
    """The hole's width at its thickest: twice the largest distance from a hole pixel to a known pixel (px).

    Measured inside the mask's bounding box plus one known pixel around it, so the cost follows the mask,
    not the photo. 0 for an empty mask.
    """
    hole = is_masked(np.asarray(mask))
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if rows.size == 0:
        return 0.0
    crop = hole[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8)
    crop = cv2.copyMakeBorder(crop, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    distance = cv2.distanceTransform(crop, cv2.DIST_L2, cv2.DIST_MASK_5)
    return 2.0 * float(distance.max())


def classical_fill(
    image: np.ndarray,
    mask: np.ndarray,
    method: ClassicalMethod | str = ClassicalMethod.AUTO,
    *,
    radius: int | None = None,
    cancel: CancelToken | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Fill the masked pixels of ``image`` from their surroundings with a classical OpenCV method.

    Args:
        image: HxWx3 RGB or HxWx4 RGBA, uint8. Not modified.
        mask: HxW, bool or integer; non-zero = fill.
        method: TELEA, NAVIER_STOKES, FSR or AUTO (per region, see the module docstring); also its value.
        radius: neighbourhood radius for TELEA/NAVIER_STOKES (1..64); None = ``DEFAULT_RADIUS``. FSR
            ignores it; AUTO passes it to the NAVIER_STOKES regions.
        cancel: checked before the work starts and between regions (a region already running finishes).
        progress: called as ``progress(done, total)`` with done = 0, 1, ..., total regions, from the
            calling thread. Not called for an empty mask.

    Regions run on up to 8 threads; the result does not depend on their number or order. Cost: TELEA and
    NAVIER_STOKES ~0.2-0.6 s for a 2 % mask on 24 MP; FSR ~10-20 ms per 16x16 block of hole, i.e. seconds
    for a few spots and minutes for a 2 % mask on 24 MP; AUTO adds at most ~1 s of FSR to NAVIER_STOKES.

    Returns:
        A new array of the same shape and dtype. Pixels where the mask is 0 are bit-identical to the input;
        an empty mask returns a plain copy.

    Raises:
        BadInputError (a ValueError): wrong type, dtype or shape, unknown method, bad radius, or a mask
            that covers the whole image (nothing to fill from).
        CancelledError: ``cancel`` was set.
    """
    hole = _check_inputs(image, mask)
    method = _check_method(method)
    if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, np.integer))):
        raise BadInputError(f"The inpainting radius must be a whole number of pixels, not {radius!r}.")
    if radius is not None and not 1 <= radius <= MAX_RADIUS:
        raise BadInputError(f"The inpainting radius is {radius} px; use a value between 1 and {MAX_RADIUS}.")
    if cancel is not None:
        cancel.raise_if_cancelled()

    out = image.copy()
    if hole.size == 0:
        return out
    hole_u8 = hole.view(np.uint8)
    filled_count = cv2.countNonZero(hole_u8)
    if filled_count == 0:
        return out
    if filled_count == hole.size:
        raise BadInputError(
            "The mask covers the whole image, so there is nothing to fill it from; leave part of it unmasked."
        )

    margin_radius = radius if radius is not None else max(DEFAULT_RADIUS.values())
    labels, key_of_label, items = _plan(hole, margin_radius, need_depth=method is ClassicalMethod.AUTO)
    methods = _choose_auto(items) if method is ClassicalMethod.AUTO else [method] * len(items)

    def run(index: int) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]:
        return _fill_item(image, hole, labels, key_of_label, items[index], methods[index], radius)

    total = len(items)
    if progress is not None:
        progress(0, total)
    for done, (core, own, filled) in enumerate(_run_all(run, total, cancel), start=1):
        y0, y1, x0, x1 = core
        # The only write into `out`: hole pixels this item owns. Everything else stays the input's copy.
        np.copyto(out[y0:y1, x0:x1], filled, where=own[..., None])
        if progress is not None:
            progress(done, total)
    return out


# ---- validation -------------------------------------------------------------------------------------------
def _check_inputs(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Check image and mask; return the mask as a C-contiguous bool array (the caller's, when it is one)."""
    if not isinstance(image, np.ndarray):
        raise BadInputError(f"The image must be a numpy array, not {type(image).__name__}.")
    if image.dtype != np.uint8:
        raise BadInputError(f"The image must be 8-bit (uint8), not {image.dtype}; convert it first.")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise BadInputError(
            f"The image must be height x width x 3 (RGB) or x 4 (RGBA); this one has shape {image.shape}."
        )
    if not isinstance(mask, np.ndarray):
        raise BadInputError(f"The mask must be a numpy array, not {type(mask).__name__}.")
    if mask.shape != image.shape[:2]:
        raise BadInputError(
            f"The mask must be height x width = {image.shape[:2]}, the image's size; it has shape {mask.shape}."
        )
    if mask.dtype == bool:
        return np.ascontiguousarray(mask)
    if not np.issubdtype(mask.dtype, np.integer):
        raise BadInputError(f"The mask must be bool or integer (non-zero = fill), not {mask.dtype}.")
    return mask != 0


def _check_method(method: ClassicalMethod | str) -> ClassicalMethod:
    try:
        return ClassicalMethod(method)
    except ValueError:
        names = ", ".join(m.value for m in ClassicalMethod)
        raise BadInputError(f"Unknown classical fill method {method!r}; use one of {names}.") from None


# ---- planning ---------------------------------------------------------------------------------------------
def _plan(hole: np.ndarray, radius: int, *, need_depth: bool) -> tuple[np.ndarray, np.ndarray, list[_Item]]:
    """Group the hole into work items.

    Returns the coarse label grid, the label -> owner-key table and the items (in raster order of their
    groups, so the plan, and with it the AUTO choices, depend on the mask only).
    """
    h, w = hole.shape
    # Pool onto the coarse grid exactly: with the anchor at (0, 0), dilated[4i, 4j] is the max of the cell.
    pooled = cv2.dilate(hole.view(np.uint8), np.ones((_CELL, _CELL), np.uint8), anchor=(0, 0))
    # 8-connected cells form one group: blobs less than ~1 cell (4-8 px) apart are processed together.
    pooled = np.ascontiguousarray(pooled[::_CELL, ::_CELL])
    try:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(pooled, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:  # more than 65535 groups
        n, labels, stats, _ = cv2.connectedComponentsWithStats(pooled, connectivity=8, ltype=cv2.CV_32S)

    key_of_label = np.zeros(n, np.int32)  # 0 = background / not owned
    items: list[_Item] = []
    bins: dict[tuple[int, int], list[int]] = {}  # tile -> small groups binned there
    next_key = 1
    for label in range(1, n):
        cx, cy, cw, ch, cells = (int(v) for v in stats[label])
        box = (cy * _CELL, min(h, (cy + ch) * _CELL), cx * _CELL, min(w, (cx + cw) * _CELL))
        bh, bw = box[1] - box[0], box[3] - box[2]
        if max(bh, bw) <= _SMALL:
            bins.setdefault((box[0] // _TILE, box[2] // _TILE), []).append(label)
            continue
        key_of_label[label] = next_key
        tiles = _tile_group(hole, labels, key_of_label, next_key, box, cells * _CELL * _CELL, radius)
        items.extend(tiles if tiles is not None else [_whole_item(box, next_key, radius, (h, w))])
        next_key += 1

    for members in bins.values():
        key_of_label[members] = next_key
        ys0, ys1, xs0, xs1, sizes = [], [], [], [], []
        for label in members:
            cx, cy, cw, ch, _ = (int(v) for v in stats[label])
            ys0.append(cy * _CELL)
            ys1.append(min(h, (cy + ch) * _CELL))
            xs0.append(cx * _CELL)
            xs1.append(min(w, (cx + cw) * _CELL))
            sizes.append(max(ys1[-1] - ys0[-1], xs1[-1] - xs0[-1]))
        box = (min(ys0), max(ys1), min(xs0), max(xs1))
        items.append(_whole_item(box, next_key, radius, (h, w), size=max(sizes)))
        next_key += 1

    if need_depth:
        # Tiles are measured already (blocks > 0); measure the rest.
        items = [item if item.blocks else _measure(hole, labels, key_of_label, item) for item in items]
    return labels, key_of_label, items


def _margin(radius: int, size: float) -> int:
    """Context around a hole: 3x the radius, >= 16 px, >= 25 % of the hole's size."""
    return max(3 * radius, _MIN_MARGIN, math.ceil(0.25 * size))


def _expand(box: tuple[int, int, int, int], by: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    y0, y1, x0, x1 = box
    return max(0, y0 - by), min(shape[0], y1 + by), max(0, x0 - by), min(shape[1], x1 + by)


def _whole_item(
    box: tuple[int, int, int, int], key: int, radius: int, shape: tuple[int, int], size: int | None = None
) -> _Item:
    if size is None:
        size = max(box[1] - box[0], box[3] - box[2])
    return _Item(crop=_expand(box, _margin(radius, size), shape), core=box, key=key)


def _tile_group(
    hole: np.ndarray,
    labels: np.ndarray,
    key_of_label: np.ndarray,
    key: int,
    box: tuple[int, int, int, int],
    area: int,
    radius: int,
) -> list[_Item] | None:
    """Cut a long, sparse group (a wire, a scratch) into tiles with a halo; None = keep it whole.

    Every owned pixel of a tile's core must have a known pixel within the halo inside the tile's crop. Where
    it does not (a big spot sits on the wire), that tile's halo grows until it does; a tile that would need
    more than ``2 * _TILE`` sends the whole group back to one crop.
    """
    h, w = hole.shape
    bh, bw = box[1] - box[0], box[3] - box[2]
    if bh * bw <= max(4 * area, _TILE**2):
        return None  # compact or small enough: one crop costs little more than the tiles would
    thickness = area / max(bh, bw)  # over-estimates a stroke's width (whole cells are counted)
    base_halo = _margin(radius, thickness)
    if base_halo > _TILE // 2:
        return None
    tiles: list[_Item] = []
    for ty in range(box[0], box[1], _TILE):
        for tx in range(box[2], box[3], _TILE):
            core = (ty, min(ty + _TILE, box[1]), tx, min(tx + _TILE, box[3]))
            halo = base_halo
            while True:
                item = _measure(hole, labels, key_of_label, _Item(_expand(core, halo, (h, w)), core, key))
                if item.blocks == 0 or item.depth <= halo:
                    break
                halo = max(2 * halo, math.ceil(item.depth) + _MIN_MARGIN)
                if halo > 2 * _TILE:
                    return None
            if item.blocks:  # else: no owned hole pixel in this tile
                tiles.append(item)
    return tiles


def _owned(
    hole: np.ndarray, labels: np.ndarray, key_of_label: np.ndarray, key: int, core: tuple[int, int, int, int]
) -> np.ndarray:
    """Bool mask (core-sized) of the hole pixels this key owns, from the coarse label grid."""
    y0, y1, x0, x1 = core
    ly0, lx0 = y0 // _CELL, x0 // _CELL
    cells = key_of_label[labels[ly0 : (y1 - 1) // _CELL + 1, lx0 : (x1 - 1) // _CELL + 1]] == key
    up = np.repeat(np.repeat(cells, _CELL, axis=0), _CELL, axis=1)
    oy, ox = y0 - ly0 * _CELL, x0 - lx0 * _CELL
    return up[oy : oy + y1 - y0, ox : ox + x1 - x0] & hole[y0:y1, x0:x1]


def _measure(hole: np.ndarray, labels: np.ndarray, key_of_label: np.ndarray, item: _Item) -> _Item:
    """Fill in ``depth`` (thickness / 2 of the owned hole) and ``blocks`` (FSR cost) of an item."""
    y0, y1, x0, x1 = item.crop
    own = _owned(hole, labels, key_of_label, item.key, item.core)
    if not own.any():
        return _Item(item.crop, item.core, item.key, 0.0, 0)
    crop_hole = np.ascontiguousarray(hole[y0:y1, x0:x1])
    # Distance from each hole pixel to the nearest known pixel of the crop (hole pixels are non-zero).
    dist = cv2.distanceTransform(crop_hole.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)  # 1 px steps exact
    cy0, cx0 = item.core[0] - y0, item.core[2] - x0
    depth = float(dist[cy0 : cy0 + own.shape[0], cx0 : cx0 + own.shape[1]][own].max())
    # FSR's block grid starts at the crop origin; count blocks holding any hole pixel.
    bh, bw = -(-(y1 - y0) // _FSR_BLOCK), -(-(x1 - x0) // _FSR_BLOCK)
    padded = np.zeros((bh * _FSR_BLOCK, bw * _FSR_BLOCK), bool)
    padded[: y1 - y0, : x1 - x0] = crop_hole
    blocks = int(padded.reshape(bh, _FSR_BLOCK, bw, _FSR_BLOCK).any(axis=(1, 3)).sum())
    return _Item(item.crop, item.core, item.key, depth, blocks)


def _choose_auto(items: list[_Item]) -> list[ClassicalMethod]:
    """AUTO: FSR for groups 3-48 px thick while the block budget lasts (cheapest first), NS elsewhere.

    The choice is made per group (all tiles of a wire get the same method, so its texture does not change
    half-way) and depends on the mask only, never on timing.
    """
    chosen = [ClassicalMethod.NAVIER_STOKES] * len(items)
    groups: dict[int, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(item.key, []).append(index)
    candidates = []
    for key, members in groups.items():
        depth = max(items[i].depth for i in members)
        blocks = sum(items[i].blocks for i in members)
        if _FSR_MIN_DEPTH <= depth <= _FSR_MAX_DEPTH and 0 < blocks <= _FSR_BUDGET_BLOCKS:
            candidates.append((blocks, key, members))
    spent = 0
    for blocks, _key, members in sorted(candidates):
        if spent + blocks > _FSR_BUDGET_BLOCKS:
            break
        spent += blocks
        for i in members:
            chosen[i] = ClassicalMethod.FSR
    return chosen


# ---- execution --------------------------------------------------------------------------------------------
def _workers(total: int) -> int:
    """Threads for ``total`` items: the CPUs this process may use (not the machine's), at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(total, cpus, 8))


def _run_all(
    run: Callable[[int], tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]],
    total: int,
    cancel: CancelToken | None,
) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]]:
    """Run items 0..total-1 (in a thread pool when it helps), yielding results in completion order."""
    workers = _workers(total)
    if workers == 1:
        for index in range(total):
            if cancel is not None:
                cancel.raise_if_cancelled()
            yield run(index)
        return
    # Keep only a few items in flight: memory stays bounded and a cancel stops within one item per thread.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="classical-fill") as pool:
        pending: set[Future] = set()
        next_index = 0
        try:
            while next_index < total or pending:
                while next_index < total and len(pending) < 2 * workers:
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    pending.add(pool.submit(run, next_index))
                    next_index += 1
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                if cancel is not None:
                    cancel.raise_if_cancelled()
        finally:
            for future in pending:
                future.cancel()


def _fill_item(
    image: np.ndarray,
    hole: np.ndarray,
    labels: np.ndarray,
    key_of_label: np.ndarray,
    item: _Item,
    method: ClassicalMethod,
    radius: int | None,
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]:
    """Fill one item from the original image; return (core, owned pixels, filled core)."""
    y0, y1, x0, x1 = item.crop
    # Every hole pixel of the crop is a hole here, owned or not: another group's unfilled object must not
    # bleed into this fill. Reading the original image keeps the result independent of the order.
    hole_u8 = np.ascontiguousarray(hole[y0:y1, x0:x1]).view(np.uint8)
    src = image[y0:y1, x0:x1]
    filled = _inpaint(np.ascontiguousarray(src[..., :3]), hole_u8, method, radius)
    if image.shape[2] == 4:
        alpha = np.ascontiguousarray(src[..., 3])
        known = alpha[hole_u8 == 0]
        if known.size and known.min() == known.max():
            filled_alpha = np.full_like(alpha, known[0])
        else:
            filled_alpha = _inpaint(alpha, hole_u8, method, radius)
        filled = np.dstack([filled, filled_alpha])
    own = _owned(hole, labels, key_of_label, item.key, item.core)
    cy0, cx0 = item.core[0] - y0, item.core[2] - x0
    return item.core, own, filled[cy0 : cy0 + own.shape[0], cx0 : cx0 + own.shape[1]]


def _inpaint(src: np.ndarray, hole_u8: np.ndarray, method: ClassicalMethod, radius: int | None) -> np.ndarray:
    """One OpenCV call on a crop: src is HxW or HxWx3 uint8, hole_u8 non-zero where to fill."""
    if method is ClassicalMethod.FSR:
        return _fsr(src, hole_u8)
    flag = cv2.INPAINT_TELEA if method is ClassicalMethod.TELEA else cv2.INPAINT_NS
    return cv2.inpaint(src, hole_u8, radius if radius is not None else DEFAULT_RADIUS[method], flag)


def _fsr(src: np.ndarray, hole_u8: np.ndarray) -> np.ndarray:
    """``cv2.xphoto.inpaint`` FSR_FAST on a crop (HxW or HxWx3 RGB), returning a crop of the same size."""
    h, w = hole_u8.shape
    # OpenCV's FSR counts its blocks with floor division, so it never visits the partial blocks at the
    # right and bottom edges and leaves their hole pixels black: pad to whole blocks by mirroring both.
    pad_h, pad_w = -h % _FSR_BLOCK, -w % _FSR_BLOCK
    if pad_h or pad_w:
        src = cv2.copyMakeBorder(src, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
        hole_u8 = cv2.copyMakeBorder(hole_u8, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
    known = (hole_u8 == 0).view(np.uint8)  # xphoto: non-zero = valid, 0 = missing (inverted)
    if src.ndim == 3:
        src = np.ascontiguousarray(src[..., ::-1])  # FSR works in YCrCb, converted from BGR
    dst = np.empty_like(src)
    cv2.xphoto.inpaint(src, known, dst, cv2.xphoto.INPAINT_FSR_FAST)
    if dst.ndim == 3:
        dst = dst[..., ::-1]
    return dst[:h, :w]
