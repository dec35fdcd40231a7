"""The history model: snapshots that share unchanged tiles, the entry graph, branching and plain-data form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inpaint_studio.core.document import MASK, Document, Layer
from inpaint_studio.core.history import (
    TILE,
    History,
    TiledArray,
    capture,
    result_sources,
    unique_nbytes,
)


def photo_doc(width: int = 700, height: int = 530) -> Document:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    doc = Document(width, height, [Layer("Background", pixels, kind="base")])
    doc.add_layer(doc.new_layer("Paint"))
    return doc


def stroke(doc: Document, layer_id: str, rect: tuple[int, int, int, int], value: int) -> None:
    left, top, right, bottom = rect
    doc.target_array(layer_id)[top:bottom, left:right] = value  # in place, as the brush does
    doc.notify_changed(layer_id, rect)


@pytest.mark.parametrize("shape", [(530, 700, 4), (257, 513), (1, 1, 4), (256, 256)])
def test_tiled_array_round_trips_any_shape(shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    tiled = TiledArray.capture(array)
    assert np.array_equal(tiled.to_array(), array)
    assert all(not tile.flags.writeable for tile in tiled.iter_tiles())
    step = 7
    assert np.array_equal(tiled.sampled(step), array[::step, ::step])


def test_zero_tiles_are_shared_so_an_empty_layer_costs_one_tile():
    tiled = TiledArray.capture(np.zeros((1024, 1024, 4), np.uint8))
    assert len({id(t) for t in tiled.iter_tiles()}) == 1
    assert unique_nbytes([tiled]) == TILE * TILE * 4


def test_snapshot_keeps_old_pixels_when_the_document_paints_in_place():
    doc = photo_doc()
    paint_id = doc.layers[1].id
    first = capture(doc)
    stroke(doc, paint_id, (10, 20, 60, 70), 200)
    second = capture(doc, first, {paint_id: (10, 20, 60, 70)})
    # The first snapshot still shows the empty paint layer; the second shows the stroke.
    assert not first.layer(paint_id).pixels.to_array().any()
    assert (second.layer(paint_id).pixels.to_array()[20:70, 10:60] == 200).all()
    assert np.array_equal(second.to_document().composite(), doc.composite())


def test_a_stroke_costs_only_the_tiles_it_touches():
    doc = photo_doc(2000, 1500)
    base_id, paint_id = doc.layers[0].id, doc.layers[1].id
    first = capture(doc)
    before = unique_nbytes([la.pixels for la in first.layers] + [first.mask])
    stroke(doc, paint_id, (300, 300, 340, 340), 90)  # inside one tile
    second = capture(doc, first, {paint_id: (300, 300, 340, 340)})
    after = unique_nbytes([la.pixels for s in (first, second) for la in s.layers] + [first.mask, second.mask])
    assert after - before == TILE * TILE * 4  # one new RGBA tile
    assert second.layer(base_id).pixels is first.layer(base_id).pixels  # untouched layer shared whole


def test_unknown_edit_is_found_by_comparing_tiles():
    doc = photo_doc()
    base_id = doc.layers[0].id
    first = capture(doc)
    stroke(doc, base_id, (600, 500, 610, 510), 0)
    # hints=None: nobody said what changed, the capture still sees it.
    second = capture(doc, first, None)
    assert np.array_equal(second.layer(base_id).pixels.to_array(), doc.layers[0].pixels)
    changed = [
        a is not b for a, b in zip(first.layer(base_id).pixels.iter_tiles(), second.layer(base_id).pixels.iter_tiles())
    ]
    assert sum(changed) == 1


def test_replaced_array_is_recaptured_even_when_not_hinted():
    doc = photo_doc()
    base = doc.layers[0]
    first = capture(doc)
    base.pixels = base.pixels.copy()
    base.pixels[0:5, 0:5] = 1
    second = capture(doc, first, {})  # an edit that claims to touch nothing, but the array is new
    assert np.array_equal(second.layer(base.id).pixels.to_array(), base.pixels)


def test_mask_and_layer_attributes_are_captured():
    doc = photo_doc()
    first = capture(doc)
    new_mask = doc.mask.copy()
    new_mask[100:200, 100:300] = 255
    doc.set_mask(new_mask)
    doc.set_layer_visible(doc.layers[1].id, False)
    second = capture(doc, first, {MASK: (100, 100, 300, 200)})
    assert np.array_equal(second.mask.to_array(), new_mask)
    assert not first.mask.to_array().any()
    assert second.layer(doc.layers[1].id).visible is False


def test_branching_keeps_later_entries_as_a_side_branch():
    history = History()
    a = history.add("open", "photo.jpg")
    b = history.add("paint", "Stroke")
    c = history.add("generate", "a red apple")
    history.set_head(a.id)  # branch from here
    d = history.add("mask", "Invert mask")
    assert len(history) == 4
    assert d.parent_id == a.id and c.parent_id == b.id
    assert history.status(d.id) == "current"
    assert history.status(a.id) == "active"
    assert history.status(b.id) == history.status(c.id) == "branch"
    lanes = history.lanes()
    assert lanes[a.id] == lanes[d.id] == 0
    assert lanes[b.id] == lanes[c.id] == 1
    assert history.ancestors(d.id) == [a.id, d.id]


def test_undone_entries_are_redo_able_until_a_new_edit():
    history = History()
    a = history.add("open", "photo.jpg")
    b = history.add("paint", "Stroke")
    history.set_head(a.id)  # undo
    assert history.status(b.id) == "undone"
    assert history.lanes()[b.id] == 0
    history.add("paint", "Another stroke")
    assert history.status(b.id) == "branch"


def test_derived_from_keeps_only_known_ids():
    history = History()
    a = history.add("generate", "first")
    b = history.add("generate", "second", derived_from=[a.id, 999])
    assert b.derived_from == (a.id,)


def test_round_trip_through_json_and_tiles():
    doc = photo_doc(300, 260)
    history = History()
    snap = capture(doc)
    history.add("open", "photo", snapshot=snap, thumbnail=snap.thumbnail())
    stroke(doc, doc.layers[1].id, (5, 5, 30, 30), 77)
    snap2 = capture(doc, snap, {doc.layers[1].id: (5, 5, 30, 30)})
    entry = history.add(
        "generate",
        "a cat",
        params={"job": {"prompt": "a cat", "seed": 5}, "device": "cpu"},
        duration_s=1.5,
        snapshot=snap2,
        thumbnail=snap2.thumbnail(),
    )
    data = json.loads(json.dumps(history.to_dict()))
    tiles = history.tile_blobs()
    restored = History.from_dict(data, tiles)
    assert restored.head_id == entry.id
    again = restored[entry.id]
    assert again.params == entry.params and again.duration_s == 1.5 and again.parent_id == 1
    assert np.array_equal(again.thumbnail, entry.thumbnail)
    assert np.array_equal(again.snapshot.to_document().composite(), doc.composite())
    assert restored.add("paint", "next").id == entry.id + 1
    # Without tiles the entries survive, without a viewable state.
    assert History.from_dict(data)[entry.id].snapshot is None


def test_thumbnail_is_small_and_matches_the_composite_colour():
    doc = Document(1000, 400, [Layer("Background", np.full((400, 1000, 4), (10, 200, 30, 255), np.uint8), "base")])
    thumb = capture(doc).thumbnail(96)
    assert max(thumb.shape[:2]) <= 96
    assert tuple(thumb[5, 5]) == (10, 200, 30, 255)


def test_result_sources_names_visible_result_layers_under_the_rect():
    doc = photo_doc()
    result = doc.new_layer("apple", kind="result")
    result.pixels[50:100, 50:100] = 255
    result.metadata["history_id"] = 7
    doc.add_layer(result)
    assert result_sources(doc, (60, 60, 70, 70)) == [7]
    assert result_sources(doc, (400, 400, 420, 420)) == []
    doc.set_layer_visible(result.id, False)
    assert result_sources(doc, (60, 60, 70, 70)) == []


def test_statuses_agree_with_status_and_scale_linearly():
    history = History()
    history.add("open", "photo")
    for i in range(400):
        history.add("paint", f"stroke {i}")
    history.set_head(200)
    history.add("mask", "branch edit")
    statuses = history.statuses()
    assert statuses == {entry.id: history.status(entry.id) for entry in history}
    assert statuses[201] == "branch" and statuses[402] == "current" and statuses[200] == "active"
    lanes = history.lanes()
    assert lanes[402] == 0 and lanes[201] == lanes[401] == 1
