"""Mask preparation: binarise, grow/shrink, feather, bounding box (OpenCV under the hood).

Convention everywhere: uint8 HxW, 255 = repaint, 0 = keep. A pixel counts as masked when it is at least
MASK_THRESHOLD (`is_masked`): the one definition that the engine, the compositing and the checks share.
Diffusion pipelines binarise the mask at 0.5 the same way and shrink it to latent size, so a soft edge only
exists in our own final composite: `feather` builds that blend weight. It fades OUTWARD from the painted
mask, so every painted pixel is fully replaced (no trace of the object being removed) and pixels beyond the
feather band are untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from inpaint_studio.core.errors import BadInputError, EmptyMaskError

Box = tuple[int, int, int, int]  # left, top, right (exclusive), bottom (exclusive)

MASK_THRESHOLD = 128
"""Mask values from this one up are masked (repainted): the pipelines' 0.5 rule on 8-bit values."""

_EMPTY_MASK = "The mask is empty, so there is nothing to repaint; paint over the area to change (white = repaint)."


def as_mask_array(mask: object) -> np.ndarray:
    """A uint8 HxW array from a PIL image (mode L) or an array (bool, or uint8 with 255 = repaint)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise BadInputError(f"A mask must be a single-channel image, got an array of shape {arr.shape}.")
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise BadInputError(f"A mask must hold 8-bit values, got {arr.dtype}.")
    return arr


def is_masked(mask: np.ndarray) -> np.ndarray:
    """Bool array: True where the pixel is masked (mask >= MASK_THRESHOLD)."""
    return np.asarray(mask) >= MASK_THRESHOLD


def binarize(mask: np.ndarray, threshold: int = MASK_THRESHOLD) -> np.ndarray:
    """uint8: 255 where mask >= threshold (by default: where it `is_masked`), else 0."""
    if mask.dtype == np.uint8 and 0 < threshold <= 255:
        # OpenCV's threshold (strictly above) is about 10x faster than numpy on a whole photo's mask.
        return cv2.threshold(mask, threshold - 1, 255, cv2.THRESH_BINARY)[1]
    return np.where(mask >= threshold, np.uint8(255), np.uint8(0))


def _ellipse(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """Dilate by px (> 0) or erode by -px (< 0) with a round kernel; 0 returns the mask unchanged."""
    if px == 0:
        return mask
    kernel = _ellipse(abs(px))
    if px > 0:
        return cv2.dilate(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=255)


def feather(mask: np.ndarray, px: int) -> np.ndarray:
    """Blend weight in [0, 1] (float32): 1 on the mask, fading to exactly 0 within px pixels outside it."""
    hard = is_masked(mask).astype(np.float32)
    if px <= 0:
        return hard
    # Dilate by half the width, blur with a kernel that reaches the other half: the ramp stays inside
    # [mask, mask grown by px]. max() keeps every painted pixel at full weight.
    half = max(1, px // 2)
    widened = cv2.dilate(hard, _ellipse(half), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    ksize = 2 * (px - half) + 1
    blurred = cv2.GaussianBlur(widened, (ksize, ksize), sigmaX=max(0.3, (px - half) / 2.0))
    weight = np.maximum(hard, blurred)
    # Numerical dust far from the mask must be exactly zero so untouched pixels stay bit-identical.
    weight[weight < 1.0 / 512] = 0.0
    # The blur's kernel is square: along a diagonal it reaches up to (sqrt 2 - 1) x its radius further than
    # px (a property test found pixels 1-2 px beyond the band changing). Nothing beyond the round px band.
    band = cv2.dilate(hard, _ellipse(px), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    weight[band == 0] = 0.0
    return np.clip(weight, 0.0, 1.0)


def bbox(mask: np.ndarray, threshold: int = MASK_THRESHOLD) -> Box | None:
    """Bounding box of the pixels >= threshold (by default: the masked ones), or None when there are none."""
    x, y, w, h = cv2.boundingRect(binarize(mask, threshold))
    if w == 0 or h == 0:
        return None
    return x, y, x + w, y + h


def masked_bbox(mask: np.ndarray) -> Box:
    """Bounding box of the masked pixels; EmptyMaskError when there are none."""
    box = bbox(mask)
    if box is None:
        raise EmptyMaskError(_EMPTY_MASK)
    return box


def require_nonempty(mask: np.ndarray) -> None:
    if not is_masked(mask).any():
        raise EmptyMaskError(_EMPTY_MASK)


def check_same_size(mask_size: tuple[int, int], image_size: tuple[int, int]) -> None:
    if tuple(mask_size) != tuple(image_size):
        mw, mh = mask_size
        iw, ih = image_size
        raise BadInputError(
            f"The mask is {mw}x{mh} but the image is {iw}x{ih}; use a mask of the same size as the image."
        )
