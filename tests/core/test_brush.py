"""Brush dabs, dab spacing, stroke undo records and mask editing operations (no Qt)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inpaint_studio.core import mask_ops
from inpaint_studio.core.brush import (
    StrokePoint,
    StrokeRecorder,
    StrokeSpacer,
    dab_alpha,
    stamp_color,
    stamp_erase_alpha,
    stamp_mask,
)


def test_hard_dab_covers_a_disc_of_the_diameter() -> None:
    rect, alpha = dab_alpha(50.0, 50.0, 20, 1.0)
    mask = np.zeros((100, 100), np.uint8)
    stamp_mask(mask, rect, alpha)
    assert np.count_nonzero(mask >= 128) == pytest.approx(math.pi * 10**2, rel=0.03)
    assert mask[50, 50] == 255 and mask[50, 39] == 0 and mask[50, 41] == 255


def test_soft_dab_falls_off_and_one_pixel_brush_fills_its_pixel() -> None:
    _, soft = dab_alpha(50.5, 50.5, 21, 0.0)
    centre = soft.shape[0] // 2
    row = soft[centre]
    assert row[centre] == pytest.approx(1.0, abs=0.01)
    assert np.all(np.diff(row[centre:]) <= 1e-6)  # monotonic falloff
    rect, tiny = dab_alpha(3.5, 3.5, 1, 1.0)
    mask = np.zeros((8, 8), np.uint8)
    stamp_mask(mask, rect, tiny)
    assert mask[3, 3] == 255 and mask.sum() == 255


def test_mask_erase_and_clipping_at_the_border() -> None:
    mask = np.full((10, 10), 255, np.uint8)
    rect, alpha = dab_alpha(0.0, 0.0, 8, 1.0)  # mostly outside
    touched = stamp_mask(mask, rect, alpha, erase=True)
    assert touched is not None and touched[:2] == (0, 0)
    assert mask[0, 0] == 0 and mask[9, 9] == 255
    assert stamp_mask(mask, (20, 20, 30, 30), np.ones((10, 10), np.float32)) is None


def test_color_dab_is_over_compositing_and_leaves_untouched_pixels_alone() -> None:
    pixels = np.zeros((20, 20, 4), np.uint8)
    pixels[..., :] = (10, 20, 30, 0)  # transparent but with colour: must stay bit-identical outside the dab
    rect, alpha = dab_alpha(10.0, 10.0, 6, 1.0)
    stamp_color(pixels, rect, alpha, (255, 0, 0), flow=0.5)
    assert tuple(pixels[10, 10]) == (255, 0, 0, 128)
    assert tuple(pixels[0, 0]) == (10, 20, 30, 0)
    stamp_erase_alpha(pixels, rect, alpha)
    assert pixels[10, 10, 3] == 0


def test_spacer_spaces_dabs_a_quarter_diameter_apart_whatever_the_sampling() -> None:
    def dabs_for(samples: int) -> list[StrokePoint]:
        spacer = StrokeSpacer(lambda p: 40.0)
        out = spacer.start(StrokePoint(0, 0))
        for i in range(1, samples + 1):
            out += spacer.move_to(StrokePoint(100 * i / samples, 0))
        return out

    coarse, fine = dabs_for(1), dabs_for(37)
    assert [round(d.x, 6) for d in coarse] == [round(d.x, 6) for d in fine] == [10.0 * i for i in range(11)]


def test_spacer_interpolates_pressure() -> None:
    spacer = StrokeSpacer(lambda p: 8.0)
    spacer.start(StrokePoint(0, 0, 0.0))
    dabs = spacer.move_to(StrokePoint(8, 0, 1.0))
    assert [d.pressure for d in dabs] == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_recorder_returns_the_exact_changed_box_with_old_and_new() -> None:
    rng = np.random.default_rng(3)
    array = rng.integers(0, 256, (300, 400), dtype=np.uint8)
    before = array.copy()
    recorder = StrokeRecorder(array)
    for x, y in [(10, 10), (150, 140), (260, 250)]:  # crosses tile borders
        rect, alpha = dab_alpha(x, y, 30, 0.5)
        recorder.before_write(rect)
        stamp_mask(array, rect, alpha)
    change = recorder.finish()
    assert change is not None
    (left, top, right, bottom), old, new = change
    assert np.array_equal(old, before[top:bottom, left:right])
    assert np.array_equal(new, array[top:bottom, left:right])
    outside = np.ones(array.shape, bool)
    outside[top:bottom, left:right] = False
    assert np.array_equal(array[outside], before[outside])
    assert StrokeRecorder(array).finish() is None


def test_recorder_reports_nothing_when_nothing_changed() -> None:
    mask = np.zeros((50, 50), np.uint8)
    recorder = StrokeRecorder(mask)
    rect, alpha = dab_alpha(25, 25, 10, 1.0)
    recorder.before_write(rect)
    stamp_mask(mask, rect, alpha, erase=True)
    assert recorder.finish() is None


def test_mask_ops() -> None:
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 255
    assert np.array_equal(mask_ops.invert(mask), 255 - mask)
    grown = mask_ops.grow(mask, 3)
    assert grown[10:30, 7].min() == 255 and grown[5, 5] == 0
    shrunk = mask_ops.shrink(mask, 3)
    assert shrunk[13:27, 13:27].min() == 255 and shrunk[11, 20] == 0
    soft = mask_ops.feather(mask, 4)
    assert 0 < soft[20, 10] < 255 and soft[20, 20] == 255 and soft[0, 0] == 0
    assert mask.max() == 255 and mask[0, 0] == 0  # inputs untouched
    added = mask_ops.fill_rect(np.zeros_like(mask), (-5, -5, 5, 5))
    assert added[:5, :5].min() == 255 and added.sum() == 25 * 255
    cut = mask_ops.fill_rect(mask, (0, 0, 20, 40), "subtract")
    assert not cut[:, :20].any() and cut[10:30, 20:30].min() == 255
    tri = mask_ops.fill_polygon(np.zeros_like(mask), [(0, 0), (40, 0), (0, 40)])
    assert tri[2, 2] == 255 and tri[37, 37] == 0
