"""Model families: what kind of pipeline a model is, as far as this app cares, and the class names behind them.

Its own module because both the model detection (models.py) and the catalog (catalog.py) speak of families,
and the catalog's download hint is in turn part of the detection's error messages: with the families here,
models.py -> catalog.py -> families.py is a line, not a circle. Plain data: importing it loads nothing.
"""

from __future__ import annotations

from enum import Enum


class Family(str, Enum):
    CLASSIC = "classic"
    SD_INPAINT = "sd_inpaint"  # SD 1.x/2.x with a 9-channel inpainting UNet
    SD = "sd"  # any 4-channel SD checkpoint: inpaints by latent blending
    SDXL_INPAINT = "sdxl_inpaint"
    SDXL = "sdxl"  # 4-channel SDXL base: latent blending
    SDXL_REFINER = "sdxl_refiner"
    KANDINSKY22_INPAINT = "kandinsky22_inpaint"
    REMOVAL = "removal"  # an object-removal network (LaMa, MAT, MI-GAN): no prompt, one pass (engine/removal.py)
    UNKNOWN = "unknown"

    @property
    def native_resolution(self) -> int:
        return {
            Family.SDXL_INPAINT: 1024,
            Family.SDXL: 1024,
            Family.SDXL_REFINER: 1024,
            Family.KANDINSKY22_INPAINT: 768,
        }.get(self, 512)

    @property
    def is_sdxl(self) -> bool:
        return self in (Family.SDXL_INPAINT, Family.SDXL, Family.SDXL_REFINER)


# model_index.json `_class_name` -> family (models.detect_folder refines it with the UNet's in_channels).
PIPELINE_FAMILIES = {
    "StableDiffusionInpaintPipeline": Family.SD_INPAINT,
    "StableDiffusionPipeline": Family.SD,
    "StableDiffusionImg2ImgPipeline": Family.SD,
    "StableDiffusionXLInpaintPipeline": Family.SDXL_INPAINT,
    "StableDiffusionXLPipeline": Family.SDXL,
    "StableDiffusionXLImg2ImgPipeline": Family.SDXL,
    "KandinskyV22InpaintCombinedPipeline": Family.KANDINSKY22_INPAINT,
    "KandinskyV22InpaintPipeline": Family.KANDINSKY22_INPAINT,
}
