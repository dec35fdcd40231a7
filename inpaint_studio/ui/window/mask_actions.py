"""The Mask menu: clear, mask everything, invert, grow, shrink, feather (core/mask_ops.py), each one undo step."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QInputDialog

from inpaint_studio.core import mask_ops
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.document.commands import mask_change


class MaskActions:
    """See the module docstring. Without an image open, each action does nothing."""

    def __init__(self, ctx: StudioContext) -> None:
        self.ctx = ctx

    def _push(self, new_mask: np.ndarray, text: str) -> None:
        if not self.ctx.require_image(quiet=True):
            return
        self.ctx.canvas.finish_gesture()
        command = mask_change(self.ctx.document, new_mask, text)
        if command is not None:
            self.ctx.undo_stack.push(command)

    @property
    def _mask(self) -> np.ndarray:
        return self.ctx.document.mask

    def clear(self) -> None:
        self._push(np.zeros_like(self._mask), "Clear mask")

    def fill(self) -> None:
        self._push(np.full_like(self._mask, 255), "Mask everything")

    def invert(self) -> None:
        self._push(mask_ops.invert(self._mask), "Invert mask")

    def grow(self, px: int) -> None:
        self._push(mask_ops.grow(self._mask, px), f"Grow mask by {px} px")

    def shrink(self, px: int) -> None:
        self._push(mask_ops.shrink(self._mask, px), f"Shrink mask by {px} px")

    def feather(self, px: int) -> None:
        self._push(mask_ops.feather(self._mask, px), f"Feather mask by {px} px")

    def _ask_pixels(self, setting: str, title: str, label: str) -> int | None:
        """Ask for a pixel amount, starting from the last one given (remembered in the settings)."""
        if not self.ctx.require_image():
            return None
        value, ok = QInputDialog.getInt(self.ctx.window, title, label, getattr(self.ctx.settings, setting), 1, 1000)
        if not ok:
            return None
        setattr(self.ctx.settings, setting, value)
        return value

    def grow_dialog(self) -> None:
        px = self._ask_pixels("mask_grow_px", "Grow mask", "Grow by (pixels):")
        if px:
            self.grow(px)

    def shrink_dialog(self) -> None:
        px = self._ask_pixels("mask_shrink_px", "Shrink mask", "Shrink by (pixels):")
        if px:
            self.shrink(px)

    def feather_dialog(self) -> None:
        px = self._ask_pixels("mask_feather_px", "Feather mask", "Feather radius (pixels):")
        if px:
            self.feather(px)
