"""Placing one picture on another: where a pasted or dropped image lands on the document."""

from __future__ import annotations

import numpy as np


def centred_copy(target: np.ndarray, source: np.ndarray) -> None:
    """Copy `source` into `target` centred on it (in place); what sticks out on either side is cut off.

    Both are HxWxC arrays of the same channel count (e.g. a new RGBA layer and a dropped RGBA image).
    """
    th, tw = target.shape[:2]
    h, w = source.shape[:2]
    x, y = (tw - w) // 2, (th - h) // 2
    sx, sy = max(0, -x), max(0, -y)  # where the visible part starts in the source
    dx, dy = max(0, x), max(0, y)  # and where it lands in the target
    cw, ch = min(w - sx, tw - dx), min(h - sy, th - dy)
    target[dy : dy + ch, dx : dx + cw] = source[sy : sy + ch, sx : sx + cw]
