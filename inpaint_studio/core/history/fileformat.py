"""The history's plain-data form, as a project file stores it (core/project.py writes the zip around it).

`history_to_dict` gives the entries, the graph and the snapshot structure as JSON-able data (version 1);
pixel tiles are named by content key (`tiles.tile_key`) and come separately from `distinct_tiles` (key ->
array), so a project file stores each distinct tile once, as a binary blob next to the JSON. Keys and
layout are a file format: changing them breaks projects already saved.

`history_from_dict` reads that data back. It comes from a file, so it is checked, not trusted: a graph that
cannot be the one a session built is refused with a ValueError; parts that only serve display are dropped
(see its docstring). `graph.History.to_dict`, `tile_blobs` and `from_dict` delegate here.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core.history.entries import KINDS, HistoryEntry
from inpaint_studio.core.history.snapshots import DocumentSnapshot, LayerSnapshot
from inpaint_studio.core.history.tiles import TILE, TiledArray, tile_key

FORMAT_VERSION = 1
MAX_THUMBNAIL_SIDE = 1024
MAX_SNAPSHOT_PIXELS = 250_000_000  # as core.project.MAX_PIXELS: a state is never larger than a document
LAST_TIMESTAMP = 253_402_300_799.0  # 9999-12-31: what datetime (the History panel's clock) can show
_LAYER_KINDS = ("base", "result", "paint")


# ---- writing ------------------------------------------------------------------------------------------


def history_to_dict(entries: Iterable[HistoryEntry], head_id: int | None, next_id: int) -> dict[str, Any]:
    """Entries (ascending ids), graph and snapshot structure as JSON-able data; tiles named by content key."""
    keys = _TileKeys()
    return {
        "version": FORMAT_VERSION,
        "head_id": head_id,
        "next_id": next_id,
        "entries": [_entry_to_dict(entry, keys) for entry in entries],
    }


def distinct_tiles(arrays: Iterable[TiledArray]) -> dict[str, np.ndarray]:
    """Every distinct tile the arrays use, by content key (the keys `history_to_dict` names)."""
    keys = _TileKeys()
    out: dict[str, np.ndarray] = {}
    for tiled in arrays:
        for tile in tiled.iter_tiles():
            out.setdefault(keys(tile), tile)
    return out


class _TileKeys:
    """tile_key with a per-call cache: shared tiles are hashed once, however many snapshots use them."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[np.ndarray, str]] = {}  # id -> (tile kept alive, key)

    def __call__(self, tile: np.ndarray) -> str:
        hit = self._cache.get(id(tile))
        if hit is None:
            hit = (tile, tile_key(tile))
            self._cache[id(tile)] = hit
        return hit[1]


def _tiled_to_dict(tiled: TiledArray, keys: _TileKeys) -> dict[str, Any]:
    return {
        "shape": list(tiled.shape),
        "dtype": str(tiled.dtype),
        "tiles": [[keys(tile) for tile in row] for row in tiled.tiles],
    }


def _entry_to_dict(entry: HistoryEntry, keys: _TileKeys) -> dict[str, Any]:
    snapshot = None
    if entry.snapshot is not None:
        snap = entry.snapshot
        snapshot = {
            "width": snap.width,
            "height": snap.height,
            "active_layer_id": snap.active_layer_id,
            "mask": _tiled_to_dict(snap.mask, keys),
            "layers": [
                {
                    "id": la.id,
                    "name": la.name,
                    "kind": la.kind,
                    "visible": la.visible,
                    "opacity": la.opacity,
                    "metadata": dict(la.metadata),
                    "pixels": _tiled_to_dict(la.pixels, keys),
                }
                for la in snap.layers
            ],
        }
    return {
        "id": entry.id,
        "parent_id": entry.parent_id,
        "kind": entry.kind,
        "title": entry.title,
        "time": entry.time,
        "duration_s": entry.duration_s,
        "params": entry.params,
        "derived_from": list(entry.derived_from),
        "inputs": {name: _tiled_to_dict(tiled, keys) for name, tiled in entry.inputs.items()},
        "thumbnail_png": base64.b64encode(png).decode("ascii") if (png := entry.thumbnail_png()) else None,
        "snapshot": snapshot,
    }


# ---- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredHistory:
    """A checked history read from a file; `graph.History.from_dict` builds the graph from it."""

    entries: tuple[HistoryEntry, ...]  # ascending ids, so every parent comes before its children
    head_id: int | None
    next_id: int


def history_from_dict(data: Any, tiles: Mapping[str, np.ndarray] | None = None) -> StoredHistory:
    """Read a stored history; snapshots are restored when `tiles` holds every tile they name.

    Raises ValueError (saying what is wrong) when the graph cannot be the one a session built: entries
    that are not objects, ids that are not ascending whole numbers, a parent that is not an earlier entry
    (so no cycles), an unknown kind, a time that is not a date, a head that is not an entry. Parts that only
    serve display are dropped instead of refusing the whole history: a thumbnail that does not decode (it
    is rendered again from the snapshot) and a snapshot or recorded input whose tiles are missing or do not
    fit its size (the entry keeps its parameters, without a viewable state).
    """
    if not isinstance(data, Mapping):
        raise ValueError("the history is not an object")
    if tiles is not None:
        tiles = _read_only_tiles(tiles)
    items = data.get("entries", [])
    if not isinstance(items, list):
        raise ValueError("the history's entries are not a list")
    entries: dict[int, HistoryEntry] = {}
    for position, item in enumerate(items, 1):
        entry = _entry_from_dict(item, position, entries, tiles)
        entries[entry.id] = entry
    head = data.get("head_id")
    if head is not None and (not _is_int(head) or head not in entries):
        raise ValueError(f"the current entry {head!r:.20} is not in the history")
    last = max(entries, default=0)
    next_id = data.get("next_id", last + 1)
    if not _is_int(next_id) or next_id <= last:
        next_id = last + 1  # only decides the next new entry's number: repair it
    return StoredHistory(entries=tuple(entries.values()), head_id=head, next_id=next_id)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float (JSON numbers; true/false are not numbers)."""
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _entry_from_dict(
    item: Any, position: int, earlier: Mapping[int, HistoryEntry], tiles: Mapping[str, np.ndarray] | None
) -> HistoryEntry:
    where = f"history entry {position}"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} is not an object")
    entry_id = item.get("id")
    if not _is_int(entry_id) or entry_id < 1 or (earlier and entry_id <= max(earlier)):
        raise ValueError(f"{where} has the id {entry_id!r:.20}, not a new ascending number")
    parent_id = item.get("parent_id")
    if parent_id is not None and (not _is_int(parent_id) or parent_id not in earlier):
        raise ValueError(f"entry #{entry_id}'s parent {parent_id!r:.20} is not an earlier entry")
    kind, title = item.get("kind"), item.get("title")
    if kind not in KINDS or not isinstance(title, str):
        raise ValueError(f"entry #{entry_id} has no valid kind or title")
    when, duration = item.get("time"), item.get("duration_s", 0.0)
    if not _is_number(when) or not 0 <= when <= LAST_TIMESTAMP:
        raise ValueError(f"entry #{entry_id}'s time {when!r:.20} is not a date")
    if not _is_number(duration) or duration < 0:
        raise ValueError(f"entry #{entry_id}'s duration {duration!r:.20} is not a number of seconds")
    params = item.get("params", {})
    if not isinstance(params, Mapping):
        raise ValueError(f"entry #{entry_id}'s parameters are not an object")
    derived = item.get("derived_from", [])
    if not isinstance(derived, list) or not all(_is_int(i) for i in derived):
        raise ValueError(f"entry #{entry_id}'s sources are not entry numbers")
    snapshot = None
    inputs: dict[str, TiledArray] = {}
    if tiles is not None:
        if item.get("snapshot") is not None:
            snapshot = _snapshot_from_dict(item["snapshot"], tiles)
        raw_inputs = item.get("inputs", {})
        if isinstance(raw_inputs, Mapping):
            loaded = {str(k): _tiled_from_dict(v, tiles) for k, v in raw_inputs.items()}
            if all(v is not None for v in loaded.values()):
                inputs = {k: v for k, v in loaded.items() if v is not None}
    return HistoryEntry(
        id=entry_id,
        parent_id=parent_id,
        kind=kind,
        title=title,
        time=float(when),
        duration_s=float(duration),
        params=dict(params),
        thumbnail=_thumbnail_from_png(item.get("thumbnail_png")),
        snapshot=snapshot,
        derived_from=tuple(i for i in derived if i in earlier),
        inputs=inputs,
    )


def _thumbnail_from_png(text: Any) -> np.ndarray | None:
    """A stored thumbnail (base64 PNG), or None when there is none or it does not decode."""
    if not isinstance(text, str) or not text or len(text) > 4 * 2**20:
        return None
    try:
        png = base64.b64decode(text, validate=True)
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            if max(image.size) > MAX_THUMBNAIL_SIDE:
                return None
            return np.asarray(image.convert("RGBA"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # a display-only picture: rendered again from the snapshot when it has one


def _tiled_from_dict(data: Any, tiles: Mapping[str, np.ndarray]) -> TiledArray | None:
    """A TiledArray naming stored tiles, or None when a tile is missing or the grid does not fit its shape.

    The same read-only array object serves every reference to a key: loaded snapshots share tiles exactly
    as the live ones did (copying per reference made a 20-entry history 20x larger and slow).
    """
    if not isinstance(data, Mapping):
        return None
    shape, dtype, rows = data.get("shape"), data.get("dtype"), data.get("tiles")
    if (
        not isinstance(shape, list)
        or len(shape) not in (2, 3)
        or not all(_is_int(v) and v > 0 for v in shape)
        or dtype != "uint8"
        or not isinstance(rows, list)
        or shape[0] * shape[1] > MAX_SNAPSHOT_PIXELS
    ):
        return None
    height, width = shape[0], shape[1]
    expected_rows, expected_cols = -(-height // TILE), -(-width // TILE)
    if len(rows) != expected_rows:
        return None
    out_rows = []
    for ty, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != expected_cols:
            return None
        tiles_row = []
        for tx, key in enumerate(row):
            tile = tiles.get(key) if isinstance(key, str) else None
            want = (min(TILE, height - ty * TILE), min(TILE, width - tx * TILE), *shape[2:])
            if tile is None or tile.shape != want or tile.dtype != np.uint8:
                return None
            tiles_row.append(tile)
        out_rows.append(tuple(tiles_row))
    return TiledArray(tuple(shape), np.dtype(np.uint8), tuple(out_rows))


def _read_only_tiles(tiles: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, tile in tiles.items():
        if not tile.flags.writeable and tile.flags.c_contiguous and tile.base is None:
            out[key] = tile  # already frozen by its owner (a project being read): no second copy
            continue
        frozen = np.ascontiguousarray(tile)
        if frozen is tile or frozen.base is not None:
            frozen = frozen.copy()  # never freeze (or alias) an array the caller may still write to
        frozen.flags.writeable = False
        out[key] = frozen
    return out


def _snapshot_from_dict(data: Any, tiles: Mapping[str, np.ndarray]) -> DocumentSnapshot | None:
    """A stored snapshot, or None when it is incomplete or inconsistent (see history_from_dict)."""
    if not isinstance(data, Mapping):
        return None
    width, height, raw_layers = data.get("width"), data.get("height"), data.get("layers")
    if not (_is_int(width) and _is_int(height) and width > 0 and height > 0 and isinstance(raw_layers, list)):
        return None
    mask = _tiled_from_dict(data.get("mask"), tiles)
    if mask is None or mask.shape != (height, width):
        return None
    layers = []
    for la in raw_layers:
        if not isinstance(la, Mapping):
            return None
        pixels = _tiled_from_dict(la.get("pixels"), tiles)
        opacity, metadata = la.get("opacity", 1.0), la.get("metadata", {})
        if (
            pixels is None
            or pixels.shape != (height, width, 4)
            or not isinstance(la.get("id"), str)
            or not isinstance(la.get("name"), str)
            or la.get("kind") not in _LAYER_KINDS
            or not isinstance(la.get("visible", True), bool)
            or not _is_number(opacity)
            or not 0 <= opacity <= 1
            or not isinstance(metadata, Mapping)
        ):
            return None
        layers.append(
            LayerSnapshot(
                id=la["id"],
                name=la["name"],
                kind=la["kind"],
                visible=la.get("visible", True),
                opacity=float(opacity),
                metadata=dict(metadata),
                pixels=pixels,
            )
        )
    if len({layer.id for layer in layers}) != len(layers):
        return None
    active = data.get("active_layer_id")
    return DocumentSnapshot(
        width=width,
        height=height,
        layers=tuple(layers),
        active_layer_id=active if isinstance(active, str) else None,
        mask=mask,
    )
