"""Canvas expansion (outpainting): margins, their checks and presets, and the pixel work of adding canvas.

Pure numpy (no Qt). `Document.expand_canvas` (core/document.py) applies `expand_array` to every layer and to
the mask; the studio's Expand Canvas dialog and Expand tool, and `inpaint-studio outpaint`, all describe the
new canvas as `Margins` (pixels added on each side) and check them with `check_expansion` first.

The original pixels are copied, never resampled: after an expansion by (left, top, ...) the pixel that was at
(x, y) is at (x + left, y + top), bit for bit. New layer pixels are transparent, new mask pixels are
`mask_value` (255 = repaint: the new area is what outpainting fills).

`outpaint_mask` is the mask a generation gets for the new area: the new area minus a strip next to the
image as wide as the generation's feather (plus its grow), so the soft edge of the composite ends exactly at
the image's border: the strip blends the generated pixels into the pre-fill, and not one original pixel
changes. A history entry of an expansion records its margins (`expansion_params`), so a replay that swaps
an earlier result layer can extend it the same way (engine/replay.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inpaint_studio.core import masks
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import MAX_IMAGE_PIXELS

MAX_MARGIN = 65_535  # no file format this app writes holds a side longer than this


@dataclass(frozen=True)
class Margins:
    """Pixels added on each side of the canvas (all >= 0)."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def __post_init__(self) -> None:
        for name in ("left", "top", "right", "bottom"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MARGIN:
                raise BadInputError(
                    f"The {name} margin is {value!r:.20}; use a whole number of pixels from 0 to {MAX_MARGIN}."
                )

    @property
    def is_zero(self) -> bool:
        return not (self.left or self.top or self.right or self.bottom)

    @property
    def offset(self) -> tuple[int, int]:
        """Where the old canvas's top-left corner lands on the new one."""
        return (self.left, self.top)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)

    def new_size(self, width: int, height: int) -> tuple[int, int]:
        return (width + self.left + self.right, height + self.top + self.bottom)

    def original_rect(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Where the old canvas (width x height) lies on the new one, as (left, top, right, bottom)."""
        return (self.left, self.top, self.left + width, self.top + height)

    def describe(self) -> str:
        sides = [f"{name} {value}" for name, value in zip(("left", "top", "right", "bottom"), self.as_tuple()) if value]
        return ", ".join(sides) + " px" if sides else "nothing"

    @classmethod
    def parse(cls, text: str, option: str = "--expand") -> Margins:
        """ "LEFT,TOP,RIGHT,BOTTOM" (pixels) -> Margins; one sentence when it is not that."""
        parts = [part.strip() for part in str(text).split(",")]
        try:
            values = [int(part) for part in parts]
        except ValueError:
            values = []
        if len(parts) != 4 or len(values) != 4:
            raise BadInputError(
                f"{option} '{text}' is not LEFT,TOP,RIGHT,BOTTOM in whole pixels; write it like {option} 0,0,256,0."
            )
        if any(v < 0 for v in values):
            raise BadInputError(f"{option} '{text}' has a negative side; outpainting only adds canvas (0 or more).")
        return cls(*values)

    @classmethod
    def scaled(cls, width: int, height: int, factor_x: float, factor_y: float, anchor: tuple[int, int]) -> Margins:
        """Margins that make the canvas `factor` times as large, the image kept at `anchor`.

        `anchor` is (column, row) in 0..2 of a 3x3 grid, as in Krita's and Photoshop's Canvas Size dialogs:
        (1, 1) keeps the image in the middle (canvas added evenly around it), (0, 1) keeps it on the left
        (all new canvas on the right), (2, 2) in the bottom-right corner, and so on.
        """
        add_x = max(0, round(width * factor_x) - width)
        add_y = max(0, round(height * factor_y) - height)
        column, row = anchor

        def split(total: int, place: int) -> tuple[int, int]:
            if place == 0:
                return 0, total
            if place == 2:
                return total, 0
            before = total // 2
            return before, total - before

        left, right = split(add_x, column)
        top, bottom = split(add_y, row)
        return cls(left, top, right, bottom)


def check_expansion(width: int, height: int, margins: Margins, layers: int = 1) -> tuple[int, int]:
    """The new size, or one sentence when it is more than this app works with (the same limit as opening)."""
    new_width, new_height = margins.new_size(width, height)
    pixels = new_width * new_height
    if pixels > MAX_IMAGE_PIXELS:
        raise BadInputError(
            f"Expanding the {width}×{height} image by {margins.describe()} makes {new_width}×{new_height} = "
            f"{pixels:,} pixels, more than the {MAX_IMAGE_PIXELS:,} this app works with; add less canvas."
        )
    if max(new_width, new_height) > MAX_MARGIN:
        raise BadInputError(
            f"Expanding the {width}×{height} image by {margins.describe()} makes a side of "
            f"{max(new_width, new_height)} px, longer than image files can hold ({MAX_MARGIN}); add less canvas."
        )
    return new_width, new_height


def expand_array(array: np.ndarray, margins: Margins, fill: int = 0) -> np.ndarray:
    """A new, C-contiguous array with `array` copied at (margins.left, margins.top) and `fill` around it."""
    height, width = array.shape[:2]
    new_width, new_height = margins.new_size(width, height)
    out = np.full((new_height, new_width, *array.shape[2:]), fill, dtype=array.dtype)
    out[margins.top : margins.top + height, margins.left : margins.left + width] = array
    return out


def new_area_mask(width: int, height: int, margins: Margins) -> np.ndarray:
    """The mask of an expanded canvas's new area (uint8, 255 there, 0 over the original image).

    `width` x `height` is the size *before* the expansion.
    """
    new_width, new_height = margins.new_size(width, height)
    mask = np.full((new_height, new_width), 255, np.uint8)
    mask[margins.top : margins.top + height, margins.left : margins.left + width] = 0
    return mask


def outpaint_mask(width: int, height: int, margins: Margins, keep_px: int) -> np.ndarray:
    """The new area's mask, minus a `keep_px` strip along the image (see the module docstring).

    `width` x `height` is the size before the expansion. The outer canvas border stays masked.
    """
    mask = new_area_mask(width, height, margins)
    if keep_px <= 0:
        return mask
    return masks.grow(mask, -int(keep_px)).copy()


def blend_reach(feather_px: int, grow_px: int) -> int:
    """How far outside a mask a generation's composite can change pixels: its feather plus any growth, +1."""
    return int(feather_px) + max(0, int(grow_px)) + 1


EXPAND_PARAMS = "canvas_expand"


def expansion_params(margins: Margins, width: int, height: int) -> dict[str, object]:
    """What a history entry of an expansion records (plain data)."""
    new_width, new_height = margins.new_size(width, height)
    return {EXPAND_PARAMS: list(margins.as_tuple()), "size_before": [width, height], "size": [new_width, new_height]}


def margins_from_params(params: object) -> Margins | None:
    """The margins an entry's parameters record, or None (not an expansion, or unreadable data)."""
    if not isinstance(params, dict):
        return None
    values = params.get(EXPAND_PARAMS)
    if not isinstance(values, list) or len(values) != 4:
        return None
    try:
        return Margins(*values)
    except BadInputError:
        return None
