"""Keeping history snapshots, thumbnails and result candidates within a memory budget.

Pure Python + numpy. `plan_pruning` decides, `apply_pruning` drops from the history; the caller drops the
candidates it is told to (they live in the UI). The same rule gives a project file its size budget.

Never dropped
-------------
* Applied results: a generation or classical-fill entry keeps its snapshot (it holds the result layer),
  its recorded inputs and its thumbnail, so re-run and replay keep working.
* The parent state of every generation entry: replay rebuilds a changed chain's input from it and finds
  the entry's result layer by comparing with it.
* The head (what the document shows: every save and the next edit's snapshot start from it) and the
  roots (the opened original).
* Candidates marked `keep` (the one on screen, the newest batch the user has not looked at yet).

Dropped, in this order, oldest first within each step, until the total is within the budget
---------------------------------------------------------------------------------------------
1. Result candidates outside the history: applied ones first (their pixels already live in a layer and
   in the history), then unapplied ones.
2. Snapshots of the other entries that undo cannot reach (side branches, entries older than the undo
   limit): only the history panel's "show this state" and "branch from here" used them.
3. Snapshots of the other entries undo can reach: undoing to one re-captures it from the document.
4. Thumbnails of entries whose snapshot is gone (the row keeps its kind, title, time and parameters).

A snapshot frees only the tiles no other snapshot or input shares; one whose tiles are all shared frees
nothing, so it is kept (until a later state of its line is dropped and leaves it some tiles of its own: a
line of strokes is pruned from its tip back). Entries themselves are never deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from inpaint_studio.core.history.entries import GENERATION_KINDS, HistoryEntry
from inpaint_studio.core.history.graph import History
from inpaint_studio.core.history.tiles import TiledArray


@dataclass(frozen=True)
class Held:
    """Something outside the history the app may drop to stay within budget (a result candidate)."""

    key: Hashable
    buffers: tuple[tuple[int, int], ...]  # (identity, bytes) of what it holds; shared identities count once
    applied: bool = False
    keep: bool = False


@dataclass
class PrunePlan:
    budget: int
    total_before: int
    total_after: int
    candidates: list[Hashable] = field(default_factory=list)
    snapshots: list[int] = field(default_factory=list)
    thumbnails: list[int] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return self.total_before - self.total_after

    def __bool__(self) -> bool:
        return bool(self.candidates or self.snapshots or self.thumbnails)


def protected_entries(history: History) -> set[int]:
    """Entries whose snapshot is never dropped (see the module docstring)."""
    keep = {entry.id for entry in history if entry.parent_id is None}
    if history.head_id is not None:
        keep.add(history.head_id)
    for entry in history:
        if entry.kind in GENERATION_KINDS:
            keep.add(entry.id)
            if entry.parent_id is not None:
                keep.add(entry.parent_id)
    return keep


Buffers = frozenset[tuple[int, int]]  # (identity, bytes)


class _Counts:
    """Reference counts of buffers by identity: dropping a holder frees what no other holder shares."""

    def __init__(self) -> None:
        self.refs: dict[int, int] = {}
        self.size: dict[int, int] = {}
        self.total = 0

    def copy(self) -> _Counts:
        other = _Counts()
        other.refs, other.size, other.total = dict(self.refs), dict(self.size), self.total
        return other

    def add(self, buffers: Iterable[tuple[int, int]]) -> None:
        for identity, nbytes in buffers:
            count = self.refs.get(identity, 0)
            self.refs[identity] = count + 1
            if count == 0:
                self.size[identity] = nbytes
                self.total += nbytes

    def exclusive(self, buffers: Iterable[tuple[int, int]]) -> int:
        return sum(nbytes for identity, nbytes in buffers if self.refs[identity] == 1)

    def remove(self, buffers: Iterable[tuple[int, int]]) -> int:
        freed = 0
        for identity, _ in buffers:
            self.refs[identity] -= 1
            if self.refs[identity] == 0:
                freed += self.size.pop(identity)
                del self.refs[identity]
        self.total -= freed
        return freed


def _tile_set(arrays: Iterable[TiledArray]) -> Buffers:
    return frozenset((id(tile), tile.nbytes) for tiled in arrays for tile in tiled.iter_tiles())


class TileCensus:
    """Which tiles a history's snapshots and inputs hold, kept up to date between checks.

    Walking every tile of every snapshot takes about 0.1 s for 300 entries on a 24-megapixel photo; an
    edit adds one snapshot, so `update` only reads the snapshots and inputs it has not seen (by identity:
    both are immutable) and forgets the ones that are gone. Keep one census per live history.
    """

    def __init__(self) -> None:
        self.counts = _Counts()
        # (entry id, "snapshot" | "inputs") -> (the objects, which keeps their ids unique; their tiles)
        self._holders: dict[tuple[int, str], tuple[tuple[object, ...], Buffers]] = {}

    def update(self, history: History) -> None:
        seen: set[tuple[int, str]] = set()
        for entry in history:
            snapshot = entry.snapshot
            parts: tuple[tuple[str, tuple[object, ...]], ...] = (
                ("snapshot", (snapshot,) if snapshot is not None else ()),
                ("inputs", tuple(entry.inputs.values())),
            )
            for part, objects in parts:
                key = (entry.id, part)
                seen.add(key)
                old = self._holders.get(key)
                if old is not None and len(old[0]) == len(objects) and all(a is b for a, b in zip(old[0], objects)):
                    continue
                if old is not None:
                    self.counts.remove(old[1])
                tiles = _entry_tiles(entry) if part == "snapshot" else _tile_set(entry.inputs.values())
                self.counts.add(tiles)
                self._holders[key] = (objects, tiles)
        for key in [k for k in self._holders if k not in seen]:
            self.counts.remove(self._holders.pop(key)[1])

    def snapshot_tiles(self, entry_id: int) -> Buffers:
        held = self._holders.get((entry_id, "snapshot"))
        return held[1] if held is not None else frozenset()


def _entry_tiles(entry: HistoryEntry) -> Buffers:
    if entry.snapshot is None:
        return frozenset()
    return _tile_set([*(layer.pixels for layer in entry.snapshot.layers), entry.snapshot.mask])


def history_bytes(history: History, census: TileCensus | None = None) -> int:
    """Memory of the history's distinct tiles plus its thumbnails (cheap with a census kept between calls)."""
    census = census if census is not None else TileCensus()
    census.update(history)
    return census.counts.total + sum(e.thumbnail.nbytes for e in history if e.thumbnail is not None)


def plan_pruning(
    history: History,
    budget: int,
    *,
    held: Sequence[Held] = (),
    reachable: Collection[int] = (),
    census: TileCensus | None = None,
) -> PrunePlan:
    """What to drop to bring history + `held` within `budget` bytes (nothing when already within it).

    `held` is ordered oldest first; `reachable` names the entries undo/redo can reach; `census`, kept by
    the caller between calls, makes the common "within budget" answer cost little (see TileCensus).
    """
    census = census if census is not None else TileCensus()
    census.update(history)  # inputs are counted too: never dropped, they only pin tiles
    thumbs = {entry.id: entry.thumbnail.nbytes for entry in history if entry.thumbnail is not None}
    outside = _Counts()
    for item in held:
        outside.add(set(item.buffers))

    total = census.counts.total + sum(thumbs.values()) + outside.total
    plan = PrunePlan(budget=budget, total_before=total, total_after=total)
    if total <= budget:
        return plan
    tiles = census.counts.copy()  # planning must not change the census: the plan may not be applied

    # 1. candidates: applied ones first, then the rest; oldest first within each group.
    for item in [h for h in held if h.applied and not h.keep] + [h for h in held if not h.applied and not h.keep]:
        if total <= budget:
            break
        total -= outside.remove(set(item.buffers))
        plan.candidates.append(item.key)

    # 2./3. snapshots of unprotected entries: unreachable by undo first, then reachable; oldest first.
    # A snapshot sharing all its tiles frees nothing and is skipped, until dropping a later state of the
    # same line leaves some tiles to it alone: hence repeated passes (a line is pruned from its tip back).
    protected = protected_entries(history)
    reach = set(reachable)
    remaining = sorted(
        (e.id for e in history if e.snapshot is not None and e.id not in protected), key=lambda i: (i in reach, i)
    )
    progress = True
    while total > budget and progress:
        progress = False
        for entry_id in list(remaining):
            if total <= budget:
                break
            buffers = census.snapshot_tiles(entry_id)
            if tiles.exclusive(buffers) == 0:
                continue  # every tile is shared: dropping it would lose the state and free nothing
            total -= tiles.remove(buffers)
            plan.snapshots.append(entry_id)
            remaining.remove(entry_id)
            progress = True

    # 4. thumbnails of entries that have (or are about to have) no snapshot.
    dropped = set(plan.snapshots)
    for entry in history:
        if total <= budget:
            break
        lost = entry.snapshot is None or entry.id in dropped
        if lost and entry.id in thumbs and entry.id not in protected and entry.kind not in GENERATION_KINDS:
            total -= thumbs[entry.id]
            plan.thumbnails.append(entry.id)

    plan.total_after = total
    return plan


def apply_pruning(history: History, plan: PrunePlan) -> None:
    """Drop the planned snapshots and thumbnails from `history` (candidates are the caller's)."""
    thumbnails = set(plan.thumbnails)
    for entry_id in plan.snapshots:
        if entry_id in history.entries:
            if entry_id in thumbnails:
                history.entries[entry_id].snapshot = None  # its thumbnail goes too: no need to render it
            else:
                history.drop_snapshot(entry_id)
    for entry_id in plan.thumbnails:
        if entry_id in history.entries:
            history.entries[entry_id].thumbnail = None


def prune_history(history: History, budget: int, *, reachable: Collection[int] = ()) -> PrunePlan:
    """Plan and apply in one step (a project about to be saved, or a history with no candidates)."""
    plan = plan_pruning(history, budget, reachable=reachable)
    apply_pruning(history, plan)
    return plan
