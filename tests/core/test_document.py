"""The document model: compositing, layer operations, region access and events (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.core.document import (
    MASK,
    Document,
    Layer,
    bbox_of_difference,
    bbox_of_nonzero,
    rect_union,
)


def solid(width: int, height: int, rgba: tuple[int, int, int, int]) -> np.ndarray:
    return np.tile(np.asarray(rgba, np.uint8), (height, width, 1))


@pytest.fixture
def doc() -> Document:
    return Document.from_image(Image.new("RGB", (8, 6), (200, 100, 50)))


def test_from_image_makes_one_base_layer_and_empty_mask(doc: Document) -> None:
    assert doc.size == (8, 6)
    assert [layer.kind for layer in doc.layers] == ["base"]
    assert doc.active_layer is doc.layers[0]
    assert doc.mask.shape == (6, 8) and not doc.mask.any()
    assert np.array_equal(doc.composite()[0, 0], [200, 100, 50, 255])


def test_composite_with_opacity_matches_hand_computed_value(doc: Document) -> None:
    top = Layer("top", solid(8, 6, (0, 0, 255, 128)))
    doc.add_layer(top)
    doc.set_layer_opacity(top.id, 0.5)
    a = 128 / 255 * 0.5  # effective alpha of the blue layer
    expected = np.array([200 * (1 - a), 100 * (1 - a), 255 * a + 50 * (1 - a)])
    got = doc.composite()[3, 4]
    assert np.all(np.abs(got[:3].astype(float) - expected) <= 0.5 + 1e-6)
    assert got[3] == 255


def test_composite_of_two_translucent_layers_is_premultiplied_correct() -> None:
    doc = Document(1, 1, [Layer("a", solid(1, 1, (255, 0, 0, 128))), Layer("b", solid(1, 1, (0, 0, 255, 64)))])
    a1, a2 = 128 / 255, 64 / 255
    out_a = a2 + a1 * (1 - a2)
    red = 255 * a1 * (1 - a2) / out_a
    blue = 255 * a2 / out_a
    straight = doc.composite()[0, 0].astype(float)
    assert abs(straight[0] - red) <= 0.5 and abs(straight[2] - blue) <= 0.5
    assert abs(straight[3] - out_a * 255) <= 0.5
    premul = doc.composite(premultiplied=True)[0, 0].astype(float)
    assert abs(premul[0] - red * out_a) <= 0.5 and abs(premul[2] - blue * out_a) <= 0.5


def test_hidden_and_transparent_layers_do_not_change_the_composite(doc: Document) -> None:
    before = doc.composite()
    hidden = Layer("hidden", solid(8, 6, (0, 255, 0, 255)), visible=False)
    doc.add_layer(hidden)
    doc.add_layer(doc.new_layer("empty paint"))
    assert np.array_equal(doc.composite(), before)
    doc.set_layer_visible(hidden.id, True)
    assert np.array_equal(doc.composite()[0, 0], [0, 255, 0, 255])


def test_composite_rect_equals_the_same_window_of_the_full_composite(doc: Document) -> None:
    rng = np.random.default_rng(1)
    doc.add_layer(Layer("noise", rng.integers(0, 256, (6, 8, 4), dtype=np.uint8), opacity=0.7))
    full = doc.composite()
    assert np.array_equal(doc.composite((2, 1, 7, 5)), full[1:5, 2:7])
    assert doc.composite((-5, -5, 100, 100)).shape == (6, 8, 4)  # clipped


def test_large_composite_strips_agree_with_single_pixels() -> None:
    rng = np.random.default_rng(2)
    layers = [Layer("l", rng.integers(0, 256, (600, 5, 4), dtype=np.uint8)) for _ in range(2)]
    doc = Document(5, 600, layers)
    full = doc.composite()
    for y in (0, 255, 256, 599):
        assert np.array_equal(full[y : y + 1, 2:3], doc.composite((2, y, 3, y + 1)))


def test_merge_down_keeps_the_composite_and_the_lower_layer_identity(doc: Document) -> None:
    top = Layer("top", solid(8, 6, (0, 0, 255, 100)), opacity=0.6)
    doc.add_layer(top)
    before = doc.composite()
    base_id = doc.layers[0].id
    merged = doc.merge_down(top.id)
    assert merged.id == base_id and len(doc.layers) == 1
    assert doc.active_layer_id == base_id
    assert np.array_equal(doc.composite(), before)
    with pytest.raises(ValueError):
        doc.merge_down(base_id)


def test_flatten_all_makes_one_base_layer_with_the_composite(doc: Document) -> None:
    doc.add_layer(Layer("p", solid(8, 6, (10, 20, 30, 90))))
    doc.add_layer(Layer("q", solid(8, 6, (90, 20, 30, 255)), visible=False))
    before = doc.composite()
    flat = doc.flatten_all()
    assert doc.layers == [flat] and flat.kind == "base"
    assert np.array_equal(doc.composite(), before)


def test_add_remove_move_duplicate_rename(doc: Document) -> None:
    a = doc.new_layer("A")
    doc.add_layer(a)
    b = doc.duplicate_layer(a.id)
    assert [layer.name for layer in doc.layers] == ["Background", "A", "A copy"]
    assert doc.active_layer_id == b.id and b.id != a.id
    assert b.pixels is not a.pixels
    assert doc.move_layer(b.id, 0) == 2
    assert doc.layers[0] is b
    doc.rename_layer(b.id, "B")
    assert b.name == "B"
    removed, index = doc.remove_layer(b.id)
    assert removed is b and index == 0
    assert doc.active_layer_id is not None and doc.active_layer_id != b.id
    with pytest.raises(ValueError):
        doc.add_layer(Layer.empty(3, 3))  # wrong size


def test_duplicating_the_base_layer_does_not_create_a_second_original(doc: Document) -> None:
    copy = doc.duplicate_layer(doc.layers[0].id)
    assert copy.kind == "paint" and doc.base_layer is doc.layers[0]


def test_read_and_write_region_round_trip_and_fire_events(doc: Document) -> None:
    events: list[tuple[str, object]] = []
    doc.mask_changed.connect(lambda rect: events.append(("mask", rect)))
    doc.pixels_changed.connect(lambda rect: events.append(("pixels", rect)))
    old = doc.read_region(MASK, (1, 2, 4, 5))
    assert old.shape == (3, 3)
    doc.write_region(MASK, (1, 2, 4, 5), np.full((3, 3), 255, np.uint8))
    assert doc.mask[2:5, 1:4].all() and doc.mask.sum() == 9 * 255
    base = doc.layers[0].id
    patch = solid(2, 2, (1, 2, 3, 255))
    doc.write_region(base, (0, 0, 2, 2), patch)
    assert np.array_equal(doc.read_region(base, (0, 0, 2, 2)), patch)
    assert events == [("mask", (1, 2, 4, 5)), ("pixels", (0, 0, 2, 2))]
    doc.write_region(MASK, (1, 2, 4, 5), old)
    assert not doc.mask.any()
    with pytest.raises(ValueError):
        doc.write_region(MASK, (0, 0, 2, 2), np.zeros((3, 3), np.uint8))


def test_read_region_returns_a_copy(doc: Document) -> None:
    region = doc.read_region(MASK, doc.full_rect)
    region[...] = 255
    assert not doc.mask.any()


def test_reset_from_swaps_contents_in_place() -> None:
    doc = Document()
    assert doc.is_empty
    fired: list[bool] = []
    doc.reset.connect(lambda: fired.append(True))
    doc.reset_from(Document.from_image(Image.new("RGBA", (3, 2))))
    assert fired == [True] and doc.size == (3, 2) and not doc.is_empty


def test_flattened_rgb_blends_over_the_background() -> None:
    doc = Document(1, 1, [Layer("half", solid(1, 1, (0, 0, 0, 128)))])
    assert doc.flattened_rgb().getpixel((0, 0)) == (127, 127, 127)
    assert doc.flattened().mode == "RGBA"


def test_bbox_helpers() -> None:
    a = np.zeros((5, 6), np.uint8)
    assert bbox_of_nonzero(a) is None
    a[1, 2] = a[3, 4] = 1
    assert bbox_of_nonzero(a) == (2, 1, 5, 4)
    b = a.copy()
    b[4, 0] = 9
    assert bbox_of_difference(a, b) == (0, 4, 1, 5)
    assert rect_union(None, (1, 1, 2, 2)) == (1, 1, 2, 2)
    assert rect_union((0, 0, 1, 1), (2, 2, 3, 3)) == (0, 0, 3, 3)
