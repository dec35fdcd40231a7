"""The "prepare" step of a job, and its mirror at the end: what part of the image the model works on.

Before the model: check the image and mask, grow and feather the mask, and choose the box the model
works on (the mask's bounding box plus padding, or the whole frame); everything mask-related is computed
inside that box. After the model: colour-match its pixels and composite them over the original, so with
preserve_unmasked every pixel outside the feathered mask stays bit-identical to the input.

Pure pixel work (numpy, Pillow, OpenCV through core/): no model, no torch. The runner calls
`prepare_for_task` once per job; diffusion.py and the classical fill call `working_size_for` and
`finish_image`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from inpaint_studio.core import compositing, geometry, masks
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import Area, InpaintJob, Task


@dataclass(frozen=True)
class PreparedInput:
    """Image and mask, checked, with the processed box decided and the mask work done inside it only.

    Everything mask-related is computed on the box, never on the whole frame: on a 6000x4000 photo the
    cost of a job then follows the size of the edit, not the size of the photo.
    """

    rgb: np.ndarray  # HxWx3 uint8, the whole image
    alpha: np.ndarray | None  # HxW uint8 when the input had transparency
    box: masks.Box  # (left, top, right, bottom) of the processed area
    mask: np.ndarray  # box-sized uint8: grown, binarised mask (255 = repaint)
    weight: np.ndarray  # box-sized float32 blend weight (feathered mask); 0 at the box's inner edges

    def crop(self, array: np.ndarray) -> np.ndarray:
        left, top, right, bottom = self.box
        return array[top:bottom, left:right]


def _expand(box: masks.Box, margin: int, size: tuple[int, int]) -> masks.Box:
    left, top, right, bottom = box
    width, height = size
    return max(0, left - margin), max(0, top - margin), min(width, right + margin), min(height, bottom + margin)


def prepare_input(job: InpaintJob, image: Image.Image | np.ndarray, mask: Image.Image | np.ndarray) -> PreparedInput:
    """Validate sizes and the mask, grow/feather it, and choose the area the model works on."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if pil.mode not in ("RGB", "RGBA"):
        pil = pil.convert("RGBA" if "A" in pil.getbands() or "transparency" in pil.info else "RGB")
    arr = np.asarray(pil)
    rgb = np.ascontiguousarray(arr[..., :3])
    alpha = np.ascontiguousarray(arr[..., 3]) if arr.shape[-1] == 4 else None
    mask_arr = masks.as_mask_array(mask.convert("L") if isinstance(mask, Image.Image) else mask)
    size = pil.size
    masks.check_same_size((mask_arr.shape[1], mask_arr.shape[0]), size)
    painted = masks.masked_bbox(mask_arr)
    # Binarise and grow inside a window around the masked pixels only (dilation reaches grow_px further).
    window = _expand(painted, max(job.mask.grow_px, 0) + 1, size)
    wl, wt, wr, wb = window
    grown_window = masks.grow(masks.binarize(mask_arr[wt:wb, wl:wr]), job.mask.grow_px)
    gl, gt, gr, gb = masks.masked_bbox(grown_window)  # an erosion can leave nothing
    grown_box = (wl + gl, wt + gt, wl + gr, wt + gb)
    if job.area is Area.WHOLE:
        box: masks.Box = (0, 0, size[0], size[1])
    else:
        # The box must contain the whole feather band, or its edge would show as a seam.
        padding = max(job.padding_px, job.mask.feather_px + 8)
        box = geometry.crop_box(grown_box, size, padding)
    left, top, right, bottom = box
    box_mask = np.zeros((bottom - top, right - left), np.uint8)
    # The grown window and the box both contain the grown mask: copy their overlap.
    ol, ot, orr, ob = max(left, wl), max(top, wt), min(right, wr), min(bottom, wb)
    box_mask[ot - top : ob - top, ol - left : orr - left] = grown_window[ot - wt : ob - wt, ol - wl : orr - wl]
    weight = masks.feather(box_mask, job.mask.feather_px)
    return PreparedInput(rgb=rgb, alpha=alpha, box=box, mask=box_mask, weight=weight)


def working_size_for(
    box_size: tuple[int, int], native: int, resolution: int | None, multiple: int = 8
) -> tuple[int, int]:
    """Size the model works at: the box scaled to the model's native pixel count (or `resolution` long side)."""
    w, h = box_size
    if resolution:
        return geometry.working_size(box_size, resolution, multiple)
    # Same number of pixels as native x native, same aspect as the box.
    long_side = native * math.sqrt(max(w, h) / min(w, h))
    return geometry.working_size(box_size, round(long_side), multiple)


def prepare_for_task(
    job: InpaintJob, image: Image.Image | np.ndarray | None, mask: Image.Image | np.ndarray | None
) -> PreparedInput | None:
    """The job's input prepared for its task: None for text-to-image (it has none), else `prepare_input`.

    Checks that the task got the inputs it needs; image-to-image without a mask redraws the whole image.
    """
    if job.task is Task.TEXT2IMG:
        if image is not None or mask is not None:
            raise BadInputError(
                "Text-to-image starts from the prompt alone; give no image or mask, or set the task to "
                "inpaint or img2img."
            )
        return None
    if image is None:
        raise BadInputError(f"The {job.task.value} task needs an input image; open one or use text2img.")
    if mask is None:
        if job.task is Task.INPAINT:
            raise BadInputError("Inpainting needs a mask (white = repaint); paint one or give a mask file.")
        size = image.size if isinstance(image, Image.Image) else np.asarray(image).shape[1::-1]
        mask = np.full((size[1], size[0]), 255, np.uint8)  # image-to-image of the whole picture
    return prepare_input(job, image, mask)


def finish_image(job: InpaintJob, prepared: PreparedInput, generated: np.ndarray) -> Image.Image:
    """Colour-match the box-sized generated pixels and composite them over the original image."""
    if job.color_match and not job.is_classical:
        generated = compositing.match_color(generated, prepared.crop(prepared.rgb), prepared.mask)
    rgb = prepared.rgb.copy()
    region = prepared.crop(rgb)
    if job.preserve_unmasked:
        region[...] = compositing.composite(region, generated, prepared.weight)
    else:
        region[...] = generated
    if prepared.alpha is None:
        return Image.fromarray(rgb)
    # Filled pixels become opaque; untouched ones keep their transparency.
    alpha = prepared.alpha.copy()
    alpha_region = prepared.crop(alpha)
    opaque = np.full_like(alpha_region, 255)
    alpha_region[...] = compositing.composite(alpha_region[..., None], opaque[..., None], prepared.weight)[..., 0]
    return Image.fromarray(np.dstack([rgb, alpha]))
