"""Turning an engine result into a non-destructive result layer."""

from __future__ import annotations

import numpy as np


def result_layer_pixels(result_image: np.ndarray, input_image: np.ndarray) -> np.ndarray:
    """RGBA pixels of a result layer: the result where it differs from the job's input, transparent elsewhere.

    Composited over the document the job saw, this reproduces the engine's output exactly, while the
    layer stays non-destructive (editing the layers below keeps showing outside the changed area).
    """
    result = np.asarray(result_image)
    source = np.asarray(input_image)
    channels = min(result.shape[2], source.shape[2])
    changed = (result[..., :channels] != source[..., :channels]).any(axis=2)
    rgba = np.zeros((*result.shape[:2], 4), np.uint8)
    rgba[..., :3] = result[..., :3]
    alpha = result[..., 3] if result.shape[2] == 4 else np.full(result.shape[:2], 255, np.uint8)
    rgba[..., 3] = np.where(changed, alpha, 0)
    return rgba
