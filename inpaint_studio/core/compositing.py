"""Compositing a generated region back into the original, and matching its colours.

The seed guide's "preserve the unmasked area" recipe, done so it cannot drift: where the blend weight is 0
the original pixel is copied, not recomputed, so it is bit-identical whatever the arithmetic does elsewhere.
"""

from __future__ import annotations

import cv2
import numpy as np

from inpaint_studio.core import masks


def composite(original: np.ndarray, generated: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """original * (1 - weight) + generated * weight, exact where weight is 0 or 1 (uint8 HxWxC)."""
    if original.shape != generated.shape:
        raise ValueError(f"composite: shapes differ {original.shape} vs {generated.shape}")
    w = weight[..., None] if weight.ndim == 2 else weight
    blended = original.astype(np.float32) * (1.0 - w) + generated.astype(np.float32) * w
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    out = np.where(w <= 0.0, original, out)
    return np.where(w >= 1.0, generated, out)


def match_color(generated: np.ndarray, original: np.ndarray, mask: np.ndarray, ring_px: int = 16) -> np.ndarray:
    """Shift the generated image's colour statistics (Lab mean/std) to those of the original around the mask.

    Statistics come from a ring just outside the mask, where the generated image should agree with the
    original; the correction is then applied to the whole generated image (the composite limits it to the
    mask). This removes the overall colour cast diffusion models often leave in a filled region.
    """
    hard = masks.is_masked(mask).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring_px + 1, 2 * ring_px + 1))
    ring = (cv2.dilate(hard, kernel) > 0) & (hard == 0)
    if ring.sum() < 16:
        return generated
    gen_lab = cv2.cvtColor(generated[..., :3], cv2.COLOR_RGB2LAB).astype(np.float32)
    org_lab = cv2.cvtColor(original[..., :3], cv2.COLOR_RGB2LAB).astype(np.float32)
    g, o = gen_lab[ring], org_lab[ring]
    g_mean, g_std = g.mean(axis=0), g.std(axis=0) + 1e-3
    o_mean, o_std = o.mean(axis=0), o.std(axis=0) + 1e-3
    # Limit the scale change: a ring of flat colour must not blow up the texture inside the mask.
    scale = np.clip(o_std / g_std, 0.5, 2.0)
    corrected = (gen_lab - g_mean) * scale + o_mean
    rgb = cv2.cvtColor(np.clip(corrected, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    if generated.shape[-1] == 4:
        rgb = np.concatenate([rgb, generated[..., 3:]], axis=-1)
    return rgb
