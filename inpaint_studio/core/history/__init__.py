"""The edit history: a tree of entries with parameters, thumbnails and compact document snapshots.

Pure Python + numpy (no Qt). The UI records one `HistoryEntry` per edit (a generation applied, a classical
fill, a layer or mask operation, one paint stroke) and can show the document as it was at any entry.

One module per job, each with the details in its docstring:

* `tiles` — tiled, immutable pixel storage (`TiledArray`): snapshots share every tile that did not change.
* `snapshots` — `DocumentSnapshot` and `capture`: the document at one moment, and what each one costs.
* `entries` — `HistoryEntry`: one edit's kind, title, time, parameters, thumbnail and snapshot.
* `graph` — `History`: the entry graph (parents, head, branches, statuses, lanes) and `result_sources`.
* `fileformat` — the plain-data form a project file stores (JSON-able dict plus tiles by content key).

Imports run one way: tiles <- snapshots <- entries <- fileformat <- graph. Code outside this package
imports from here; core modules import from the submodules.

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

from inpaint_studio.core.history.entries import GENERATION_KINDS, KIND_LABELS, KINDS, HistoryEntry, Kind
from inpaint_studio.core.history.fileformat import LAST_TIMESTAMP, MAX_SNAPSHOT_PIXELS, MAX_THUMBNAIL_SIDE
from inpaint_studio.core.history.graph import History, Status, result_sources
from inpaint_studio.core.history.snapshots import (
    THUMBNAIL_SIDE,
    DocumentSnapshot,
    Hints,
    LayerSnapshot,
    adopt_sources,
    capture,
)
from inpaint_studio.core.history.tiles import TILE, TiledArray, tile_key, unique_nbytes

__all__ = [
    "GENERATION_KINDS",
    "KINDS",
    "KIND_LABELS",
    "LAST_TIMESTAMP",
    "MAX_SNAPSHOT_PIXELS",
    "MAX_THUMBNAIL_SIDE",
    "THUMBNAIL_SIDE",
    "TILE",
    "DocumentSnapshot",
    "Hints",
    "History",
    "HistoryEntry",
    "Kind",
    "LayerSnapshot",
    "Status",
    "TiledArray",
    "adopt_sources",
    "capture",
    "result_sources",
    "tile_key",
    "unique_nbytes",
]
