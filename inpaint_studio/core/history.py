"""The edit history: a tree of entries with parameters, thumbnails and compact document snapshots.

Pure Python + numpy (no Qt). The UI records one `HistoryEntry` per edit (a generation applied, a classical
fill, a layer or mask operation, one paint stroke) and can show the document as it was at any entry.

Graph
-----
Every entry has a ``parent_id``: the entry whose state it was applied to. ``head_id`` is the entry the
document currently shows. A new entry's parent is the head, so after "branch from here" (the head moves
back to an older entry) the entries that followed become a side branch: nothing is ever deleted. Undo
moves the head to the parent too; the undone entries stay (`status` calls them "undone") and become a
side branch once a new edit is made, while the undo stack itself forgets them. ``derived_from`` lists
the generation entries whose result pixels the edit started from (inpaint on an inpaint result).

Snapshots and their memory cost
-------------------------------
A snapshot holds every layer (attributes + pixels) and the mask, with pixels as a `TiledArray`: a grid of
read-only 256x256 tiles. Consecutive snapshots share every tile that did not change, so

* the first snapshot of a layer costs one copy of that layer (all-zero tiles share one zero tile, so an
  empty paint layer or an empty mask costs almost nothing);
* a paint stroke or mask edit costs only the tiles its dirty rect touches (a 40 px dab: 1-4 tiles, i.e.
  256-1024 KiB for RGBA, 64-256 KiB for the mask), whatever the photo size;
* a result layer costs one copy of its non-empty tiles (the same as the layer itself);
* layer operations that keep pixels (rename, hide, opacity, move, delete) cost nothing.

Copies are needed because the document edits layer pixels in place (brush strokes, `write_region`), so the
live arrays cannot be shared. `SnapshotCapturer` decides what to re-read: a layer whose array is the same
object as the one the previous snapshot came from, and that the edit's hints do not name, reuses that
snapshot's tiles; a hinted rect re-reads only its tiles; anything else is compared tile by tile against
the previous snapshot (safe for edits nobody described).

Memory budget
-------------
Snapshots are kept within a size budget by `core/history_budget.py` (the full rule is there and in
docs/projects.md). Applied results are never pruned: a generation or classical-fill entry keeps its
snapshot (which holds its result layer), its recorded inputs and its thumbnail, and so does the parent
state every replay starts from; the head and the opened original are kept too. When over budget, result
candidates outside the history go first, then the snapshots of other entries that undo cannot reach,
then those it can (undoing to one re-captures it), oldest first, and last the thumbnails of entries that
lost their snapshot. The entry itself (kind, title, time, parameters) is never deleted.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import math
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image

from inpaint_studio.core.document import MASK, Document, Layer, Rect, composite_layers

Kind = Literal["generate", "classic", "layer", "mask", "paint", "open"]
KINDS: tuple[str, ...] = ("generate", "classic", "layer", "mask", "paint", "open")
KIND_LABELS = {
    "generate": "Generation",
    "classic": "Classical fill",
    "layer": "Layer",
    "mask": "Mask",
    "paint": "Paint stroke",
    "open": "Opened",
}
Status = Literal["current", "active", "undone", "branch"]

TILE = 256
THUMBNAIL_SIDE = 96

# ----------------------------------------------------------------------------------------------------
# Tiled, immutable pixel storage
# ----------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------
# Document snapshots
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSnapshot:
    id: str
    name: str
    kind: str
    visible: bool
    opacity: float
    metadata: dict[str, Any]
    pixels: TiledArray

    def to_layer(self) -> Layer:
        """A live Layer with the same id and a writable copy of the pixels."""
        return Layer(
            name=self.name,
            pixels=self.pixels.to_array(),
            kind=self.kind,  # type: ignore[arg-type]
            visible=self.visible,
            opacity=self.opacity,
            metadata=dict(self.metadata),
            id=self.id,
        )


@dataclass(frozen=True)
class DocumentSnapshot:
    """The document at one moment: layers bottom -> top, the active layer and the mask."""

    width: int
    height: int
    layers: tuple[LayerSnapshot, ...]
    active_layer_id: str | None
    mask: TiledArray
    # Which live arrays the pixels were read from (target -> weakref): lets the next capture skip them.
    sources: Mapping[str, weakref.ref] = field(default_factory=dict, compare=False, repr=False)

    def layer(self, layer_id: str) -> LayerSnapshot | None:
        return next((layer for layer in self.layers if layer.id == layer_id), None)

    def to_layers(self) -> list[Layer]:
        return [layer.to_layer() for layer in self.layers]

    def to_document(self) -> Document:
        """A new, independent Document holding this state."""
        return Document(self.width, self.height, self.to_layers(), self.mask.to_array())

    def composite(self) -> np.ndarray:
        """The visible layers blended (HxWx4 straight RGBA), as the document showed them."""
        return composite_layers(self.to_layers(), (0, 0, self.width, self.height))

    def thumbnail(self, side: int = THUMBNAIL_SIDE) -> np.ndarray:
        """A small RGBA composite (nearest-neighbour sampling: cheap at any document size)."""
        step = max(1, -(-max(self.width, self.height) // side))
        layers = [
            Layer(name=la.name, pixels=la.pixels.sampled(step), kind=la.kind, visible=la.visible, opacity=la.opacity)  # type: ignore[arg-type]
            for la in self.layers
        ]
        if not layers:
            return np.zeros((1, 1, 4), np.uint8)
        h, w = layers[0].pixels.shape[:2]
        return composite_layers(layers, (0, 0, w, h))

    @property
    def nbytes(self) -> int:
        """Memory of this snapshot's distinct tiles (tiles shared with other snapshots included)."""
        return unique_nbytes([la.pixels for la in self.layers] + [self.mask])


Hints = Mapping[str, Rect | None]
"""What an edit changed: target (layer id or `MASK`) -> dirty rect, or None for "the whole target"."""


def capture(
    document: Document, previous: DocumentSnapshot | None = None, hints: Hints | None = None
) -> DocumentSnapshot:
    """Snapshot `document`, sharing what did not change since `previous`.

    `previous` must be the snapshot of the state the edit was applied to. `hints` names what the edit
    changed; None means "unknown", and then every layer is compared with `previous` tile by tile.
    """

    def reuse_ok(target: str) -> bool:
        if previous is None or hints is None:
            return False
        ref = previous.sources.get(target)
        return ref is not None and ref() is live[target]

    live: dict[str, np.ndarray] = {layer.id: layer.pixels for layer in document.layers}
    live[MASK] = document.mask

    def tiled(target: str, old: TiledArray | None) -> TiledArray:
        array = live[target]
        if old is not None and reuse_ok(target):
            assert hints is not None
            if target not in hints:
                return old
            rect = hints[target]
            if rect is not None:
                return TiledArray.capture(array, old, document.clip_rect(rect))
        return TiledArray.capture(array, old)

    layers = []
    for layer in document.layers:
        old_layer = previous.layer(layer.id) if previous is not None else None
        layers.append(
            LayerSnapshot(
                id=layer.id,
                name=layer.name,
                kind=layer.kind,
                visible=layer.visible,
                opacity=layer.opacity,
                metadata=dict(layer.metadata),
                pixels=tiled(layer.id, old_layer.pixels if old_layer else None),
            )
        )
    mask = tiled(MASK, previous.mask if previous is not None else None)
    return DocumentSnapshot(
        width=document.width,
        height=document.height,
        layers=tuple(layers),
        active_layer_id=document.active_layer_id,
        mask=mask,
        sources={target: weakref.ref(array) for target, array in live.items()},
    )


def adopt_sources(snapshot: DocumentSnapshot, document: Document) -> DocumentSnapshot:
    """The same snapshot, marked as the source of `document`'s arrays (after restoring it into them)."""
    live = {layer.id: layer.pixels for layer in document.layers}
    live[MASK] = document.mask
    return DocumentSnapshot(
        width=snapshot.width,
        height=snapshot.height,
        layers=snapshot.layers,
        active_layer_id=snapshot.active_layer_id,
        mask=snapshot.mask,
        sources={target: weakref.ref(array) for target, array in live.items()},
    )


# ----------------------------------------------------------------------------------------------------
# Entries and the history graph
# ----------------------------------------------------------------------------------------------------


@dataclass
class HistoryEntry:
    id: int
    parent_id: int | None
    kind: str
    title: str
    time: float  # seconds since the epoch, when the edit was made
    duration_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    thumbnail: np.ndarray | None = None  # small RGBA uint8
    snapshot: DocumentSnapshot | None = None
    derived_from: tuple[int, ...] = ()  # generation entries whose result pixels this edit started from
    # What a generation was given ("image": the RGBA composite, "mask"), so it can be re-run exactly. Tiles
    # equal to the snapshot's base layer / mask are shared, so this costs only where results lay on top.
    inputs: dict[str, TiledArray] = field(default_factory=dict)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def render_thumbnail(self) -> np.ndarray | None:
        """The thumbnail, rendered from the snapshot on first use (keeps recording an edit cheap)."""
        if self.thumbnail is None and self.snapshot is not None:
            self.thumbnail = self.snapshot.thumbnail()
        return self.thumbnail

    def thumbnail_png(self) -> bytes | None:
        if self.thumbnail is None:
            return None
        buffer = io.BytesIO()
        Image.fromarray(self.thumbnail).save(buffer, "PNG")
        return buffer.getvalue()


class History:
    """The entry graph. Ids are never reused; entries are never deleted except by `clear`."""

    def __init__(self) -> None:
        self.entries: dict[int, HistoryEntry] = {}
        self.head_id: int | None = None
        self._next_id = 1
        self._children: dict[int | None, list[int]] = {}

    # ---- building -----------------------------------------------------------------------------------
    def add(
        self,
        kind: str,
        title: str,
        *,
        params: Mapping[str, Any] | None = None,
        duration_s: float = 0.0,
        thumbnail: np.ndarray | None = None,
        snapshot: DocumentSnapshot | None = None,
        derived_from: Iterable[int] = (),
        parent_id: int | Literal["head"] | None = "head",
        when: float | None = None,
    ) -> HistoryEntry:
        """Append an entry (parent: the head unless given) and make it the head."""
        if kind not in KINDS:
            raise ValueError(f"unknown history kind {kind!r}")
        parent = self.head_id if parent_id == "head" else parent_id
        if parent is not None and parent not in self.entries:
            raise KeyError(f"no history entry {parent}")
        entry = HistoryEntry(
            id=self._next_id,
            parent_id=parent,
            kind=kind,
            title=title,
            time=time.time() if when is None else when,
            duration_s=float(duration_s),
            params=dict(params or {}),
            thumbnail=thumbnail,
            snapshot=snapshot,
            derived_from=tuple(int(i) for i in derived_from if i in self.entries),
        )
        self._next_id += 1
        self.entries[entry.id] = entry
        self._children.setdefault(parent, []).append(entry.id)
        self.head_id = entry.id
        return entry

    def set_head(self, entry_id: int | None) -> None:
        if entry_id is not None and entry_id not in self.entries:
            raise KeyError(f"no history entry {entry_id}")
        self.head_id = entry_id

    def clear(self) -> None:
        self.entries.clear()
        self._children.clear()
        self.head_id = None

    def copy(self) -> History:
        """A copy of the graph whose entries can be read (saved, pruned) while this one keeps changing.

        Entries are new objects; their snapshots, inputs and tiles are immutable and shared, so this takes
        time proportional to the number of entries, not to their pixels.
        """
        clone = History()
        clone.entries = {
            entry_id: dataclasses.replace(entry, params=dict(entry.params), inputs=dict(entry.inputs))
            for entry_id, entry in self.entries.items()
        }
        clone._children = {parent: list(ids) for parent, ids in self._children.items()}
        clone.head_id, clone._next_id = self.head_id, self._next_id
        return clone

    def drop_snapshot(self, entry_id: int) -> None:
        """Forget an entry's snapshot (to save memory), keeping a thumbnail rendered from it first."""
        entry = self.entries[entry_id]
        entry.render_thumbnail()
        entry.snapshot = None

    # ---- queries ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(self.entries.values())

    def __getitem__(self, entry_id: int) -> HistoryEntry:
        return self.entries[entry_id]

    @property
    def next_id(self) -> int:
        """The id the next `add` will use."""
        return self._next_id

    @property
    def head(self) -> HistoryEntry | None:
        return self.entries.get(self.head_id) if self.head_id is not None else None

    def children(self, entry_id: int | None) -> list[int]:
        return list(self._children.get(entry_id, ()))

    def ancestors(self, entry_id: int) -> list[int]:
        """Ids from the root down to `entry_id` (inclusive)."""
        out = []
        current: int | None = entry_id
        while current is not None:
            out.append(current)
            current = self.entries[current].parent_id
        return out[::-1]

    def latest_descendant(self, entry_id: int) -> int:
        """Following the newest child repeatedly: where redo would lead."""
        current = entry_id
        while self._children.get(current):
            current = max(self._children[current])
        return current

    def statuses(self) -> dict[int, Status]:
        """`status` of every entry, computed in one pass (what a list view needs)."""
        out: dict[int, Status] = dict.fromkeys(self.entries, "branch")
        if self.head_id is None:
            return out
        for entry_id in self.ancestors(self.head_id):
            out[entry_id] = "active"
        out[self.head_id] = "current"
        stack = list(self._children.get(self.head_id, ()))
        while stack:
            entry_id = stack.pop()
            out[entry_id] = "undone"
            stack.extend(self._children.get(entry_id, ()))
        return out

    def status(self, entry_id: int) -> Status:
        """current: the head; active: part of what the document shows; undone: made after the head
        (redo-able until a new edit); branch: on a side branch."""
        if entry_id == self.head_id:
            return "current"
        if self.head_id is None:
            return "branch"
        if entry_id in self.ancestors(self.head_id):
            return "active"
        if self.head_id in self.ancestors(entry_id):
            return "undone"
        return "branch"

    def lanes(self) -> dict[int, int]:
        """Display column of every entry: 0 for the line through the head, 1, 2 ... for side branches."""
        out: dict[int, int] = {}
        if not self.entries:
            return out
        main = set(self.ancestors(self.head_id)) if self.head_id is not None else set()
        if self.head_id is not None:
            main.update(self.ancestors(self.latest_descendant(self.head_id)))
        lane_at_tip: dict[int, int] = {}  # last entry placed in a side lane -> that lane
        next_lane = 1
        for entry in self.entries.values():  # ids ascend, so parents come first
            if entry.id in main:
                out[entry.id] = 0
                continue
            lane = lane_at_tip.pop(entry.parent_id, None) if entry.parent_id is not None else None
            if lane is None:
                lane, next_lane = next_lane, next_lane + 1
            lane_at_tip[entry.id] = lane
            out[entry.id] = lane
        return out

    def memory_bytes(self) -> int:
        """Memory of all snapshots' and inputs' distinct tiles plus thumbnails."""
        thumbs = sum(e.thumbnail.nbytes for e in self.entries.values() if e.thumbnail is not None)
        return unique_nbytes(self._tiled_arrays()) + thumbs

    # ---- plain-data form (project files) --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Entries, graph and snapshot structure as JSON-able data; pixel tiles are named by content key.

        The tiles themselves come from `tile_blobs()` (key -> array), so a project file can store them as
        binary blobs next to this JSON-able dict.
        """
        keys = _TileKeys()
        return {
            "version": 1,
            "head_id": self.head_id,
            "next_id": self._next_id,
            "entries": [_entry_to_dict(entry, keys) for entry in self.entries.values()],
        }

    def _tiled_arrays(self) -> Iterator[TiledArray]:
        for entry in self.entries.values():
            if entry.snapshot is not None:
                yield from (la.pixels for la in entry.snapshot.layers)
                yield entry.snapshot.mask
            yield from entry.inputs.values()

    def tile_blobs(self) -> dict[str, np.ndarray]:
        """Every distinct tile the snapshots and inputs use, by content key."""
        keys = _TileKeys()
        out: dict[str, np.ndarray] = {}
        for tiled in self._tiled_arrays():
            for tile in tiled.iter_tiles():
                out.setdefault(keys(tile), tile)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], tiles: Mapping[str, np.ndarray] | None = None) -> History:
        """Rebuild a history; snapshots are restored when `tiles` holds every tile they name.

        The data comes from a file, so it is checked, not trusted. Raises ValueError (saying what is wrong)
        when the graph cannot be the one a session built: entries that are not objects, ids that are not
        ascending whole numbers, a parent that is not an earlier entry (so no cycles), an unknown kind, a
        time that is not a date, a head that is not an entry. Parts that only serve display are dropped
        instead of refusing the whole history: a thumbnail that does not decode (it is rendered again from
        the snapshot) and a snapshot or recorded input whose tiles are missing or do not fit its size (the
        entry keeps its parameters, without a viewable state).
        """
        if not isinstance(data, Mapping):
            raise ValueError("the history is not an object")
        history = cls()
        if tiles is not None:
            tiles = _read_only_tiles(tiles)
        items = data.get("entries", [])
        if not isinstance(items, list):
            raise ValueError("the history's entries are not a list")
        for position, item in enumerate(items, 1):
            entry = _entry_from_dict(item, position, history.entries, tiles)
            history.entries[entry.id] = entry
            history._children.setdefault(entry.parent_id, []).append(entry.id)
        head = data.get("head_id")
        if head is not None and (not _is_int(head) or head not in history.entries):
            raise ValueError(f"the current entry {head!r:.20} is not in the history")
        history.head_id = head
        last = max(history.entries, default=0)
        next_id = data.get("next_id", last + 1)
        if not _is_int(next_id) or next_id <= last:
            next_id = last + 1  # only decides the next new entry's number: repair it
        history._next_id = next_id
        return history


MAX_THUMBNAIL_SIDE = 1024
MAX_SNAPSHOT_PIXELS = 250_000_000  # as core.project.MAX_PIXELS: a state is never larger than a document
LAST_TIMESTAMP = 253_402_300_799.0  # 9999-12-31: what datetime (the History panel's clock) can show
_LAYER_KINDS = ("base", "result", "paint")


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


def tile_key(tile: np.ndarray) -> str:
    """A content key: equal tiles (also across sessions) get the same key."""
    digest = hashlib.blake2b(np.ascontiguousarray(tile).tobytes(), digest_size=16)
    digest.update(repr((tile.shape, str(tile.dtype))).encode())
    return digest.hexdigest()


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
        frozen = np.ascontiguousarray(tile)
        if frozen is tile or frozen.base is not None:
            frozen = frozen.copy()  # never freeze (or alias) an array the caller may still write to
        frozen.flags.writeable = False
        out[key] = frozen
    return out


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


def _snapshot_from_dict(data: Any, tiles: Mapping[str, np.ndarray]) -> DocumentSnapshot | None:
    """A stored snapshot, or None when it is incomplete or inconsistent (see History.from_dict)."""
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


def result_sources(document: Document, rect: Rect | None = None) -> list[int]:
    """History ids of the visible result layers that hold pixels inside rect: what an edit there builds on."""
    out = []
    for layer in document.layers:
        history_id = layer.metadata.get("history_id")
        if history_id is None or not layer.visible or layer.opacity <= 0:
            continue
        if rect is not None:
            left, top, right, bottom = document.clip_rect(rect)
            if not layer.pixels[top:bottom, left:right, 3].any():
                continue
        out.append(int(history_id))
    return out
