"""The memory budget rule for history snapshots, thumbnails and candidates; frozen project states."""

from __future__ import annotations

import numpy as np

from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.history import TILE, History, TiledArray, capture
from inpaint_studio.core.history_budget import (
    Held,
    TileCensus,
    apply_pruning,
    history_bytes,
    plan_pruning,
    protected_entries,
    prune_history,
)
from inpaint_studio.core.project import load_project, save_project
from inpaint_studio.core.project_state import ProjectState

SIDE = 4 * TILE  # 16 tiles per layer: each stroke below touches its own tile
TILE_RGBA = TILE * TILE * 4


def build() -> tuple[Document, History, dict[str, int]]:
    """open -> mask -> generate (adds a result layer, records inputs) -> 6 strokes, then a side branch."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (SIDE, SIDE, 4), dtype=np.uint8)
    base[..., 3] = 255
    doc = Document(SIDE, SIDE, [Layer("Background", base, kind="base")])
    history = History()
    ids: dict[str, int] = {}

    def record(kind: str, title: str, **kwargs: object) -> int:
        entry = history.add(
            kind, title, snapshot=capture(doc, history.head.snapshot if history.head else None), **kwargs
        )
        entry.render_thumbnail()
        return entry.id

    ids["open"] = record("open", "photo")
    doc.mask[:TILE, :TILE] = 255
    ids["mask"] = record("mask", "Rectangle")
    result = Layer("a red door", np.zeros((SIDE, SIDE, 4), np.uint8), kind="result")
    result.pixels[:TILE, :TILE] = (200, 0, 0, 255)
    doc.add_layer(result)
    ids["generate"] = record("generate", "a red door", params={"job": {"prompt": "a red door"}})
    history[ids["generate"]].inputs = {"image": TiledArray.capture(base), "mask": TiledArray.capture(doc.mask)}
    paint = doc.new_layer("Paint")
    doc.add_layer(paint)
    ids["layer"] = record("layer", "New paint layer")
    for i in range(6):
        y, x = divmod(i + 4, 4)
        paint.pixels[y * TILE : (y + 1) * TILE, x * TILE : (x + 1) * TILE] = (0, 0, 255 - i, 255)
        ids[f"stroke{i}"] = record("paint", f"stroke {i}")
    history.set_head(ids["stroke2"])  # undo three strokes, then a new edit: stroke3..5 become a side branch
    paint.pixels[3 * TILE :, 3 * TILE :] = 9
    ids["branch"] = record("paint", "other stroke")
    return doc, history, ids


def test_within_budget_nothing_is_dropped() -> None:
    _doc, history, _ids = build()
    plan = plan_pruning(history, 10 * 2**30)
    assert not plan and plan.total_before == plan.total_after == history.memory_bytes()


def test_protected_entries_are_applied_results_their_parent_state_the_head_and_the_root() -> None:
    _doc, history, ids = build()
    assert protected_entries(history) == {ids["open"], ids["mask"], ids["generate"], ids["branch"]}


def test_side_branches_go_first_oldest_first_and_applied_results_never() -> None:
    _doc, history, ids = build()
    total = history.memory_bytes()
    reachable = {ids[k] for k in ("open", "mask", "generate", "layer", "stroke0", "stroke1", "stroke2", "branch")}
    plan = plan_pruning(history, total - 2 * TILE_RGBA, reachable=reachable)
    # The undone strokes are a side branch now; each later stroke keeps the earlier strokes' tiles, so the
    # branch is pruned from its tip back, and two states are enough.
    assert plan.snapshots == [ids["stroke5"], ids["stroke4"]]
    assert plan.total_after <= total - 2 * TILE_RGBA and not plan.candidates and not plan.thumbnails
    plan = plan_pruning(history, 0, reachable=reachable)
    protected = protected_entries(history)
    assert not protected & set(plan.snapshots)
    # Strokes 0-2 share every tile with the head's line: dropping them would free nothing.
    assert plan.snapshots == [ids["stroke5"], ids["stroke4"], ids["stroke3"]]
    apply_pruning(history, plan)
    generation = history[ids["generate"]]
    assert generation.snapshot is not None and set(generation.inputs) == {"image", "mask"}
    assert generation.thumbnail is not None and history[ids["mask"]].snapshot is not None
    assert [layer.kind for layer in generation.snapshot.layers] == ["base", "result"]
    assert all(history[i].snapshot is None for i in plan.snapshots)
    # Thumbnails of states that are gone are the last thing dropped; entries themselves never are.
    assert plan.thumbnails == [ids["stroke3"], ids["stroke4"], ids["stroke5"]]
    assert all(history[i].thumbnail is None for i in plan.thumbnails)
    assert len(history) == len(ids)


def test_a_snapshot_whose_tiles_are_all_shared_is_kept() -> None:
    _doc, history, ids = build()
    plan = plan_pruning(history, 0)
    assert ids["layer"] not in plan.snapshots  # an empty new layer: every tile shared with its neighbours


def test_candidates_go_first_applied_ones_before_unapplied_and_kept_ones_never() -> None:
    _doc, history, _ids = build()
    total_history = history.memory_bytes()
    images = [np.zeros((100, 100, 3), np.uint8) + i for i in range(4)]
    shared_input = np.zeros((100, 100, 4), np.uint8)
    held = [
        Held("old", ((id(images[0]), images[0].nbytes), (id(shared_input), shared_input.nbytes))),
        Held("applied", ((id(images[1]), images[1].nbytes), (id(shared_input), shared_input.nbytes)), applied=True),
        Held("unapplied", ((id(images[2]), images[2].nbytes),)),
        Held("on screen", ((id(images[3]), images[3].nbytes),), keep=True),
    ]
    plan = plan_pruning(history, total_history + 2 * 30_000 + 40_000 - 1, held=held)
    assert plan.candidates == ["applied", "old"]  # applied first; "old" then frees the shared input too
    assert not plan.snapshots
    plan = plan_pruning(history, 0, held=held)
    assert plan.candidates == ["applied", "old", "unapplied"]


def test_project_state_freezes_the_head_and_saves_a_pruned_copy(tmp_path) -> None:
    doc, history, ids = build()
    base_before = doc.layers[0].pixels.copy()
    state = ProjectState.take(doc, history, generate={"prompt": "next"}, extra={"generate_panel": {"seed_text": "7"}})
    # Later edits of the live document and history do not reach the saved state.
    doc.layers[0].pixels[:10, :10] = 0
    doc.mask[:] = 0
    history.add("mask", "Clear mask", snapshot=capture(doc, history.head.snapshot))
    project, plan = state.to_project(history_budget=0)
    assert plan is not None and plan.snapshots
    path = save_project(project, tmp_path / "p.inpaint")
    loaded = load_project(path)
    assert np.array_equal(loaded.document.mask[:TILE, :TILE], np.full((TILE, TILE), 255, np.uint8))
    assert not np.array_equal(loaded.document.layers[0].pixels[:10, :10], doc.layers[0].pixels[:10, :10])
    assert len(loaded.history) == len(ids) and loaded.history.head_id == ids["branch"]
    assert loaded.generate == {"prompt": "next"} and loaded.extra["generate_panel"] == {"seed_text": "7"}
    gen = loaded.history[ids["generate"]]
    assert gen.snapshot is not None and np.array_equal(gen.inputs["image"].to_array(), base_before)
    assert np.array_equal(loaded.document.layers[0].pixels, base_before)
    assert all(loaded.history[i].snapshot is None for i in plan.snapshots)
    assert history[ids["stroke3"]].snapshot is not None  # only the copy was pruned


def test_prune_history_is_plan_plus_apply() -> None:
    _doc, history, _ids = build()
    plan = prune_history(history, 0)
    assert plan and all(history[i].snapshot is None for i in plan.snapshots)


def test_a_census_kept_between_checks_counts_like_a_full_walk() -> None:
    doc, history, _ids = build()
    census = TileCensus()
    assert history_bytes(history, census) == history.memory_bytes()
    doc.mask[:] = 7
    history.add("mask", "Fill", snapshot=capture(doc, history.head.snapshot))
    plan = plan_pruning(history, history.memory_bytes() // 2, census=census)
    assert history_bytes(history, census) == history.memory_bytes() == plan.total_before  # planning changed nothing
    apply_pruning(history, plan)
    assert history_bytes(history, census) == history.memory_bytes() == plan.total_after
    history.clear()
    assert history_bytes(history, census) == 0
