"""Canvas expansion: margins and their checks, the geometry of an expanded document, bit-exact originals."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_studio.core import masks
from inpaint_studio.core.canvas import (
    Margins,
    blend_reach,
    check_expansion,
    expand_array,
    expansion_params,
    margins_from_params,
    new_area_mask,
    outpaint_mask,
)
from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import MAX_IMAGE_PIXELS


def rgba(width: int, height: int, seed: int = 0, alpha: int = 255) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = alpha
    return pixels


def three_layer_document() -> Document:
    base = Layer("Background", rgba(40, 30, 1), kind="base")
    result = Layer("Result", rgba(40, 30, 2, alpha=200), kind="result", metadata={"history_id": 3})
    paint = Layer("Paint", np.zeros((30, 40, 4), np.uint8), kind="paint", visible=False, opacity=0.5)
    mask = np.zeros((30, 40), np.uint8)
    mask[5:10, 5:12] = 255
    mask[20:22, 30:33] = 130
    return Document(40, 30, [base, result, paint], mask)


def test_margins_parse_and_refuse_in_one_sentence():
    assert Margins.parse("0, 16,256,8") == Margins(0, 16, 256, 8)
    for text, words in (
        ("10,20,30", "LEFT,TOP,RIGHT,BOTTOM"),
        ("a,b,c,d", "LEFT,TOP,RIGHT,BOTTOM"),
        ("1.5,0,0,0", "LEFT,TOP,RIGHT,BOTTOM"),
        ("0,-8,0,0", "negative"),
    ):
        with pytest.raises(BadInputError, match=words) as info:
            Margins.parse(text)
        assert str(info.value).count(".") <= 2 and "--expand" in str(info.value)
    with pytest.raises(BadInputError, match="whole number"):
        Margins(-1, 0, 0, 0)
    with pytest.raises(BadInputError, match="whole number"):
        Margins(0, True, 0, 0)


def test_presets_scale_the_canvas_around_the_anchor():
    # IOPaint's 1.5x in both directions, image kept in the middle (Krita's default anchor).
    assert Margins.scaled(512, 512, 1.5, 1.5, (1, 1)) == Margins(128, 128, 128, 128)
    # 2x wider, image kept on the left: all new canvas on the right.
    assert Margins.scaled(600, 400, 2.0, 1.0, (0, 1)) == Margins(0, 0, 600, 0)
    # 1.25x, image in the bottom-right corner: canvas added on the top and left only.
    assert Margins.scaled(640, 480, 1.25, 1.25, (2, 2)) == Margins(160, 120, 0, 0)
    odd = Margins.scaled(101, 51, 1.5, 1.5, (1, 1))  # an odd amount splits one pixel unevenly, never lost
    assert odd.new_size(101, 51) == (round(101 * 1.5), round(51 * 1.5))


def test_an_expansion_beyond_the_pixel_limit_is_one_sentence():
    assert check_expansion(6000, 4000, Margins(1000, 0, 1000, 0)) == (8000, 4000)
    with pytest.raises(BadInputError) as info:
        check_expansion(16000, 12000, Margins(0, 0, 8000, 0))
    text = str(info.value)
    assert f"{MAX_IMAGE_PIXELS:,}" in text and "24000×12000" in text and text.endswith("add less canvas.")
    with pytest.raises(BadInputError, match="longer than image files can hold"):
        check_expansion(100, 100, Margins(0, 0, 65_500, 0))


def test_expand_array_copies_the_original_exactly():
    original = rgba(7, 5, 3)
    out = expand_array(original, Margins(2, 1, 3, 4))
    assert out.shape == (10, 12, 4) and out.flags.c_contiguous
    assert np.array_equal(out[1:6, 2:9], original)
    assert not out[:1].any() and not out[6:].any() and not out[:, :2].any() and not out[:, 9:].any()
    mask = expand_array(np.full((5, 7), 9, np.uint8), Margins(1, 1, 1, 1), fill=255)
    assert mask[0, 0] == 255 and mask[1, 1] == 9


def test_document_expand_canvas_extends_every_layer_and_the_mask():
    doc = three_layer_document()
    before = {layer.id: layer.pixels.copy() for layer in doc.layers}
    old_mask = doc.mask.copy()
    seen: list[tuple[int, int]] = []
    doc.resized.connect(seen.append)
    margins = Margins(8, 4, 16, 2)
    state = doc.expand_canvas(margins)
    assert doc.size == (64, 36) and seen == [(8, 4)]
    for layer in doc.layers:
        assert layer.pixels.shape == (36, 64, 4)
        assert np.array_equal(layer.pixels[4:34, 8:48], before[layer.id])  # bit-exact, not resampled
        outside = layer.pixels.copy()
        outside[4:34, 8:48] = 0
        assert not outside.any()  # the new canvas is transparent
    assert np.array_equal(doc.mask[4:34, 8:48], old_mask)
    assert (doc.mask == 255).sum() == 64 * 36 - 40 * 30 + (old_mask == 255).sum()
    # per-layer data survives: names, kinds, visibility, opacity, metadata, ids, the active layer
    assert [(la.name, la.kind, la.visible, la.opacity) for la in doc.layers] == [
        ("Background", "base", True, 1.0),
        ("Result", "result", True, 1.0),
        ("Paint", "paint", False, 0.5),
    ]
    assert doc.layers[1].metadata == {"history_id": 3}
    # the composite of the original area is the same pixels as before
    composite = doc.composite((8, 4, 48, 34))
    assert np.array_equal(
        composite,
        Document(
            40, 30, [Layer(la.name, before[la.id], la.kind, la.visible, la.opacity) for la in doc.layers]
        ).composite(),
    )
    # undo: the previous arrays come back as they were
    doc.set_canvas_state(state, (-8, -4))
    assert doc.size == (40, 30) and seen[-1] == (-8, -4)
    assert all(np.array_equal(layer.pixels, before[layer.id]) for layer in doc.layers)
    assert np.array_equal(doc.mask, old_mask)


def test_set_canvas_state_refuses_a_state_that_misses_a_layer():
    doc = three_layer_document()
    state = doc.canvas_state()
    doc.add_layer(doc.new_layer("Later"))
    with pytest.raises(ValueError, match="Later"):
        doc.set_canvas_state(state)


def test_restore_takes_a_state_of_another_size():
    doc = three_layer_document()
    layers = [Layer("Only", rgba(10, 6), kind="base")]
    doc.restore(10, 6, layers, layers[0].id, np.zeros((6, 10), np.uint8))
    assert doc.size == (10, 6) and doc.layers == layers and doc.mask.shape == (6, 10)
    same = [Layer("Again", rgba(10, 6, 9), kind="base")]
    doc.restore(10, 6, same, None, np.full((6, 10), 255, np.uint8))
    assert doc.layers == same and doc.active_layer_id == same[0].id and (doc.mask == 255).all()


def test_outpaint_mask_keeps_the_blend_off_the_original():
    margins = Margins(0, 0, 40, 0)
    area = new_area_mask(60, 30, margins)
    assert area.shape == (30, 100) and not area[:, :60].any() and (area[:, 60:] == 255).all()
    feather, grow = 8, 0
    keep = blend_reach(feather, grow)
    shrunk = outpaint_mask(60, 30, margins, keep)
    assert not shrunk[:, : 60 + keep].any() and (shrunk[:, 60 + keep + 1 :] == 255).all()
    # The generation's own blend weight (engine/region.py uses masks.feather) is zero on every original pixel.
    weight = masks.feather(shrunk, feather)
    assert not weight[:, :60].any() and weight[:, 60:].any()


def test_expansion_params_round_trip():
    params = expansion_params(Margins(1, 2, 3, 4), 10, 20)
    assert params["size"] == [14, 26] and margins_from_params(params) == Margins(1, 2, 3, 4)
    assert margins_from_params({"canvas_expand": [1, 2, -3, 4]}) is None
    assert margins_from_params({"prompt": "x"}) is None and margins_from_params(None) is None
