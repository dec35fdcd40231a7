"""The entry graph: every edit as an entry with a parent, the head, branches, statuses and lanes.

Every entry has a ``parent_id``: the entry whose state it was applied to. ``head_id`` is the entry the
document currently shows. A new entry's parent is the head, so after "branch from here" (the head moves
back to an older entry) the entries that followed become a side branch: nothing is ever deleted. Undo
moves the head to the parent too; the undone entries stay (`status` calls them "undone") and become a
side branch once a new edit is made, while the undo stack itself forgets them. ``derived_from`` lists
the generation entries whose result pixels the edit started from (inpaint on an inpaint result);
`result_sources` finds them in the document.

Saving and loading (`to_dict`, `tile_blobs`, `from_dict`) delegate to `fileformat`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import numpy as np

from inpaint_studio.core.document import Document, Rect
from inpaint_studio.core.history.entries import KINDS, HistoryEntry
from inpaint_studio.core.history.fileformat import distinct_tiles, history_from_dict, history_to_dict
from inpaint_studio.core.history.snapshots import DocumentSnapshot
from inpaint_studio.core.history.tiles import TiledArray, unique_nbytes

Status = Literal["current", "active", "undone", "branch"]


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

    def _tiled_arrays(self) -> Iterator[TiledArray]:
        for entry in self.entries.values():
            if entry.snapshot is not None:
                yield from (la.pixels for la in entry.snapshot.layers)
                yield entry.snapshot.mask
            yield from entry.inputs.values()

    # ---- plain-data form (project files) --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Entries, graph and snapshot structure as JSON-able data; pixel tiles are named by content key.

        The tiles themselves come from `tile_blobs()` (key -> array), so a project file can store them as
        binary blobs next to this JSON-able dict.
        """
        return history_to_dict(self.entries.values(), self.head_id, self._next_id)

    def tile_blobs(self) -> dict[str, np.ndarray]:
        """Every distinct tile the snapshots and inputs use, by content key."""
        return distinct_tiles(self._tiled_arrays())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], tiles: Mapping[str, np.ndarray] | None = None) -> History:
        """Rebuild a history; snapshots are restored when `tiles` holds every tile they name.

        Raises ValueError when the data cannot be a history a session built (the checks are in
        `fileformat.history_from_dict`).
        """
        stored = history_from_dict(data, tiles)
        history = cls()
        for entry in stored.entries:
            history.entries[entry.id] = entry
            history._children.setdefault(entry.parent_id, []).append(entry.id)
        history.head_id, history._next_id = stored.head_id, stored.next_id
        return history


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
