"""Tiled, immutable pixel storage: images as grids of read-only 256x256 tiles that snapshots share.

A `TiledArray` never changes after it is built, so two snapshots can hold the same tile object: capturing
a layer again re-uses every tile that did not change and copies only the rest. All-zero tiles of one shape
and dtype are a single shared array, so an empty paint layer or an empty mask costs almost nothing.
`unique_nbytes` counts memory with shared tiles counted once; `tile_key` names a tile by its content, so
project files store each distinct tile once (see `fileformat`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import numpy as np

from inpaint_studio.core.document import Rect

TILE = 256

_ZERO_TILES: dict[tuple[tuple[int, ...], str], np.ndarray] = {}


def _zero_tile(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    key = (shape, str(dtype))
    tile = _ZERO_TILES.get(key)
    if tile is None:
        tile = np.zeros(shape, dtype)
        tile.flags.writeable = False
        _ZERO_TILES[key] = tile
    return tile


def _freeze(block: np.ndarray) -> np.ndarray:
    if not block.any():
        return _zero_tile(block.shape, block.dtype)
    tile = np.array(block, copy=True, order="C")
    tile.flags.writeable = False
    return tile


class TiledArray:
    """An immutable 2-D image (HxW or HxWxC) stored as read-only tiles; snapshots share unchanged tiles."""

    __slots__ = ("dtype", "shape", "tiles")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, tiles: tuple[tuple[np.ndarray, ...], ...]) -> None:
        self.shape = tuple(int(v) for v in shape)
        self.dtype = np.dtype(dtype)
        self.tiles = tiles  # rows of tiles, top to bottom; edge tiles are smaller

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @classmethod
    def capture(cls, array: np.ndarray, previous: TiledArray | None = None, rect: Rect | None = None) -> TiledArray:
        """Freeze `array`. With `previous` of the same shape, tiles outside `rect` are taken from it unread
        (the caller vouches they did not change); with no rect every tile is compared and equal ones shared.
        """
        height, width = array.shape[:2]
        compatible = previous is not None and previous.shape == array.shape and previous.dtype == array.dtype
        rows: list[tuple[np.ndarray, ...]] = []
        for ty, y0 in enumerate(range(0, height, TILE)):
            y1 = min(height, y0 + TILE)
            row: list[np.ndarray] = []
            for tx, x0 in enumerate(range(0, width, TILE)):
                x1 = min(width, x0 + TILE)
                block = array[y0:y1, x0:x1]
                if compatible:
                    assert previous is not None
                    old = previous.tiles[ty][tx]
                    if rect is not None and not _overlaps(rect, (x0, y0, x1, y1)):
                        row.append(old)
                        continue
                    if np.array_equal(old, block):
                        row.append(old)
                        continue
                row.append(_freeze(block))
            rows.append(tuple(row))
        return cls(array.shape, array.dtype, tuple(rows))

    def to_array(self) -> np.ndarray:
        """A new writable array holding the pixels."""
        out = np.empty(self.shape, self.dtype)
        for ty, row in enumerate(self.tiles):
            for tx, tile in enumerate(row):
                y0, x0 = ty * TILE, tx * TILE
                out[y0 : y0 + tile.shape[0], x0 : x0 + tile.shape[1]] = tile
        return out

    def iter_tiles(self) -> Iterator[np.ndarray]:
        for row in self.tiles:
            yield from row

    def sampled(self, step: int) -> np.ndarray:
        """Every `step`-th pixel in both directions (a cheap thumbnail source), as a new array."""
        ys = np.arange(0, self.height, step)
        xs = np.arange(0, self.width, step)
        out = np.empty((len(ys), len(xs), *self.shape[2:]), self.dtype)
        for ty, row in enumerate(self.tiles):
            sel_y = ys[(ys >= ty * TILE) & (ys < ty * TILE + TILE)]
            if sel_y.size == 0:
                continue
            oy = np.searchsorted(ys, sel_y[0])
            for tx, tile in enumerate(row):
                sel_x = xs[(xs >= tx * TILE) & (xs < tx * TILE + TILE)]
                if sel_x.size == 0:
                    continue
                ox = np.searchsorted(xs, sel_x[0])
                out[oy : oy + sel_y.size, ox : ox + sel_x.size] = tile[np.ix_(sel_y - ty * TILE, sel_x - tx * TILE)]
        return out


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def unique_nbytes(arrays: Iterable[TiledArray]) -> int:
    """Memory held by the distinct tiles of some tiled arrays (shared tiles counted once)."""
    seen: set[int] = set()
    total = 0
    for tiled in arrays:
        for tile in tiled.iter_tiles():
            if id(tile) not in seen:
                seen.add(id(tile))
                total += tile.nbytes
    return total


def tile_key(tile: np.ndarray) -> str:
    """A content key: equal tiles (also across sessions) get the same key."""
    digest = hashlib.blake2b(np.ascontiguousarray(tile).tobytes(), digest_size=16)
    digest.update(repr((tile.shape, str(tile.dtype))).encode())
    return digest.hexdigest()
