"""Mask preparation, crop geometry and compositing: the pixel-exactness guarantees live here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inpaint_studio.core.compositing import composite, match_color
from inpaint_studio.core.errors import BadInputError, EmptyMaskError
from inpaint_studio.core.geometry import crop_box, working_size
from inpaint_studio.core.masks import (
    MASK_THRESHOLD,
    as_mask_array,
    bbox,
    binarize,
    check_same_size,
    feather,
    grow,
    is_masked,
    masked_bbox,
    require_nonempty,
)


def square_mask(size=64, box=(20, 20, 40, 40)) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[box[1] : box[3], box[0] : box[2]] = 255
    return mask


def test_grow_and_shrink_change_the_area_by_about_the_perimeter():
    mask = square_mask()
    assert (grow(mask, 3) > 0).sum() > (mask > 0).sum() + 4 * 20 * 2
    assert (grow(mask, -3) > 0).sum() == 14 * 14
    assert np.array_equal(grow(mask, 0), mask)


def test_feather_is_one_inside_and_zero_beyond_its_width():
    mask = square_mask()
    weight = feather(mask, 8)
    assert (weight[mask > 0] == 1.0).all()
    far = grow(mask, 9) == 0
    assert (weight[far] == 0.0).all()
    band = (grow(mask, 4) > 0) & (mask == 0)
    assert ((weight[band] > 0) & (weight[band] < 1)).mean() > 0.9
    assert np.array_equal(feather(mask, 0), (mask > 0).astype(np.float32))


def test_bbox_binarize_and_checks():
    mask = square_mask()
    assert bbox(mask) == (20, 20, 40, 40)
    assert bbox(np.zeros((5, 5), np.uint8)) is None
    soft = np.array([[0, 127, 128, 255]], np.uint8)
    assert binarize(soft).tolist() == [[0, 0, 255, 255]]
    with pytest.raises(EmptyMaskError):
        require_nonempty(np.full((4, 4), 100, np.uint8))  # grey below 50 % selects nothing
    with pytest.raises(BadInputError, match="mask is 3x4 but the image is 4x4"):
        check_same_size((3, 4), (4, 4))
    assert as_mask_array(np.array([[True, False]])).tolist() == [[255, 0]]
    with pytest.raises(BadInputError):
        as_mask_array(np.zeros((2, 2, 3), np.uint8))


def test_one_threshold_decides_what_is_masked():
    soft = np.array([[0, 1, 127, 128, 200, 255]], np.uint8)
    assert MASK_THRESHOLD == 128
    assert is_masked(soft).tolist() == [[False, False, False, True, True, True]]
    assert binarize(soft).tolist() == [[0, 0, 0, 255, 255, 255]]
    assert bbox(soft) == (3, 0, 6, 1) == masked_bbox(soft)  # only what is masked
    assert bbox(soft, threshold=1) == (1, 0, 6, 1)  # any painted value
    assert bbox(soft[:, :3]) is None
    with pytest.raises(EmptyMaskError):
        masked_bbox(soft[:, :3])
    assert (feather(soft, 0) == is_masked(soft)).all()
    require_nonempty(soft)


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(1, 3000),
    height=st.integers(1, 3000),
    data=st.data(),
    padding=st.integers(0, 512),
)
def test_crop_box_contains_the_mask_and_stays_inside(width, height, data, padding):
    left = data.draw(st.integers(0, width - 1))
    top = data.draw(st.integers(0, height - 1))
    right = data.draw(st.integers(left + 1, width))
    bottom = data.draw(st.integers(top + 1, height))
    box = crop_box((left, top, right, bottom), (width, height), padding)
    bl, bt, br, bb = box
    assert 0 <= bl <= left and 0 <= bt <= top and right <= br <= width and bottom <= bb <= height
    # The padding is honoured wherever the image has room for it.
    assert bl <= max(0, left - padding) and bt <= max(0, top - padding)
    assert br >= min(width, right + padding) and bb >= min(height, bottom + padding)


def test_crop_box_is_square_when_there_is_room():
    box = crop_box((500, 500, 600, 540), (2000, 2000), 20)
    assert box[2] - box[0] == box[3] - box[1] == 140
    edge = crop_box((0, 0, 10, 10), (2000, 1000), 0)
    assert edge[:2] == (0, 0) and edge[2] - edge[0] == 64  # minimum side, shifted inside


@given(st.integers(8, 5000), st.integers(8, 5000), st.sampled_from([512, 768, 1024]))
def test_working_size_keeps_aspect_and_multiple_of_8(w, h, long_side):
    ww, hh = working_size((w, h), long_side)
    assert ww % 8 == 0 and hh % 8 == 0
    assert abs(max(ww, hh) - long_side) <= 8
    if min(w, h) * long_side / max(w, h) > 64:
        assert abs(ww / hh - w / h) / (w / h) < 0.1


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_composite_is_exact_where_weight_is_zero_or_one(seed):
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    weight = rng.choice([0.0, 0.3, 1.0], size=(16, 16)).astype(np.float32)
    out = composite(original, generated, weight)
    assert np.array_equal(out[weight == 0], original[weight == 0])
    assert np.array_equal(out[weight == 1], generated[weight == 1])
    mid = weight == 0.3
    expected = np.rint(original[mid] * 0.7 + generated[mid] * 0.3)
    assert np.abs(out[mid].astype(int) - expected).max() <= 1


def test_match_color_removes_a_cast():
    rng = np.random.default_rng(1)
    original = np.clip(rng.normal(120, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
    cast = np.clip(original.astype(int) + np.array([40, -20, 10]), 0, 255).astype(np.uint8)
    mask = square_mask()
    fixed = match_color(cast, original, mask)
    ring = (grow(mask, 16) > 0) & (mask == 0)
    before = np.abs(cast[ring].mean(0) - original[ring].mean(0)).max()
    after = np.abs(fixed[ring].mean(0) - original[ring].mean(0)).max()
    assert before > 15 and after < 4
