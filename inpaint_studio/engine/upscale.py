"""Upscaling x2 / x4: an upscaling network through spandrel (ESRGAN, Real-ESRGAN, SwinIR, ...), or diffusers'
Stable Diffusion x4 upscaler, tiled so a large photo fits in memory, with progress and cancel.

- The model is an add-on reference (engine/addons.py): a weights file spandrel reads with its restricted
  loader (engine/spandrel_models.py: safetensors, weights-only pickles), or a diffusers folder / hub id of a
  StableDiffusionUpscalePipeline (safetensors only).
- A model's own factor need not be the one asked for: x4 asked of a x2 network runs it twice; x2 asked of a
  x4 network runs it once and scales the result down (Lanczos). The output is always exactly the input's size
  times the factor.
- Tiles: the image is cut into `tile`-pixel tiles that overlap by `overlap` pixels; each tile's result is
  blended into the output across the overlap (a linear ramp), so no seam shows, and only one tile at a time
  is in model memory. The output is built in place as 8-bit RGB (a 24000x16000 result is 1.1 GB, not 4).
- Transparency is scaled with Lanczos beside the model's RGB.
Imports torch (and spandrel / diffusers) inside the functions: run it in the engine's thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError, OutOfMemoryError
from inpaint_studio.core.project import MAX_PIXELS
from inpaint_studio.engine.addons import AddonFile, resolve_addon
from inpaint_studio.engine.devices import describe_device, pick_device, pick_dtype
from inpaint_studio.engine.events import CancelToken
from inpaint_studio.engine.spandrel_models import load_image_model

log = logging.getLogger(__name__)

SCALES = (2, 4)
Progress = Callable[[int, int], None]  # (tiles done, tiles in all)


@dataclass(frozen=True)
class UpscaleJob:
    """One upscale: the model, the factor and the tiling; recorded in the history entry."""

    model: str
    scale: int = 2
    tile: int = 512  # tile side in input pixels (SD x4 upscaler: 128); 0 = the whole image at once
    overlap: int = 32
    device: str = "auto"
    prompt: str = ""  # the SD x4 upscaler only: what the image shows
    steps: int = 20  # the SD x4 upscaler only
    seed: int = 0  # the SD x4 upscaler only

    def problems(self, size: tuple[int, int] | None = None) -> list[str]:
        out = []
        if not self.model.strip():
            out.append("No upscaler is chosen; pick one (e.g. a Real-ESRGAN file) or download one.")
        if self.scale not in SCALES:
            out.append(f"Upscale factor {self.scale} is not offered; use 2 or 4.")
        if self.tile and not 64 <= self.tile <= 4096:
            out.append(f"Tile size {self.tile} px is outside 64-4096; use 512 (or 0 for no tiles).")
        if self.tile >= 64 and not 0 <= self.overlap <= self.tile // 2:
            out.append(f"Tile overlap {self.overlap} px must be between 0 and half the tile size.")
        if not 1 <= self.steps <= 200:
            out.append(f"Steps is {self.steps}; use between 1 and 200.")
        if size is not None:
            width, height = size
            if width * height * self.scale**2 > MAX_PIXELS:
                out.append(
                    f"Upscaling {width}x{height} by {self.scale} gives {width * self.scale}x{height * self.scale} "
                    f"({width * height * self.scale**2 / 1e6:.0f} megapixels), more than this app's limit of "
                    f"{MAX_PIXELS / 1e6:.0f}; upscale by 2 or crop the image first."
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UpscaleResult:
    image: Image.Image
    job: UpscaleJob
    model: dict[str, Any]
    device: str
    duration_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What the history entry keeps (plain data)."""
        return {
            "upscale": self.job.to_dict(),
            "model": dict(self.model),
            "device": self.device,
            "size": [self.image.width, self.image.height],
            "duration_s": round(self.duration_s, 3),
            "extra": dict(self.extra),
        }


class Upscaler:
    """Keeps one upscaling model loaded between runs (the engine owns one, like its PipelineManager)."""

    def __init__(self, *, allow_download: bool = False) -> None:
        self.allow_download = allow_download
        self._key: tuple[str, str] | None = None
        self._model: Any = None

    def release(self) -> None:
        self._key, self._model = None, None

    def run(
        self,
        job: UpscaleJob,
        image: Image.Image | np.ndarray,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> UpscaleResult:
        import torch

        pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        problems = job.problems(pil.size)
        if problems:
            raise BadInputError(" ".join(problems))
        cancel = cancel or CancelToken()
        report = progress or (lambda done, total: None)
        start = time.perf_counter()
        device = pick_device(job.device)
        file = resolve_addon(job.model, "upscaler", allow_download=self.allow_download)
        rgb = np.asarray(pil.convert("RGB"))
        alpha = np.asarray(pil.getchannel("A")) if "A" in pil.getbands() else None
        try:
            if file.path.is_dir():
                out, extra = self._diffusion(file, job, rgb, device, report, cancel)
            else:
                out, extra = self._network(file, job, rgb, device, report, cancel)
        except torch.OutOfMemoryError as exc:
            raise OutOfMemoryError(
                f"The upscaler ran out of memory on {describe_device(device)}; choose a smaller tile size "
                "(e.g. 256) and try again."
            ) from exc
        result = Image.fromarray(out)
        if alpha is not None:
            result.putalpha(Image.fromarray(alpha).resize(result.size, Image.Resampling.LANCZOS))
        extra["device_name"] = describe_device(device)
        return UpscaleResult(result, job, file.to_dict(), device, time.perf_counter() - start, extra)

    # ---- spandrel networks ------------------------------------------------------------------------------
    def _network(
        self, file: AddonFile, job: UpscaleJob, rgb: np.ndarray, device: str, report: Progress, cancel: CancelToken
    ) -> tuple[np.ndarray, dict[str, Any]]:
        key = (str(file.path), device)
        if self._key != key:
            self.release()
            self._model = load_image_model(file.path, "upscaler", device)
            self._key = key
        model = self._model
        native = int(model.scale)
        if native < 2:
            raise ModelUnavailableError(
                f"{file.path.name} does not enlarge images (its factor is {native}); choose an upscaling model."
            )
        passes = max(1, math.ceil(math.log(job.scale) / math.log(native) - 1e-9))
        height, width = rgb.shape[:2]
        tiles_per_pass = [
            len(tile_boxes(width * native**i, height * native**i, job.tile, job.overlap)) for i in range(passes)
        ]
        total, done = sum(tiles_per_pass), 0
        report(0, total)
        current = rgb
        for count in tiles_per_pass:

            def step(tiles_done: int, _tiles: int, base: int = done) -> None:
                report(base + tiles_done, total)

            current = run_tiled(lambda tile: _spandrel_tile(model, tile, device), current, native, job, step, cancel)
            done += count
        target = (width * job.scale, height * job.scale)
        if (current.shape[1], current.shape[0]) != target:
            current = np.asarray(Image.fromarray(current).resize(target, Image.Resampling.LANCZOS))
        extra = {"architecture": str(model.architecture.name), "model_scale": native, "passes": passes}
        return current, extra

    # ---- diffusers' SD x4 upscaler -------------------------------------------------------------------------
    def _diffusion(
        self, file: AddonFile, job: UpscaleJob, rgb: np.ndarray, device: str, report: Progress, cancel: CancelToken
    ) -> tuple[np.ndarray, dict[str, Any]]:
        import torch

        key = (str(file.path), device)
        if self._key != key:
            self.release()
            self._model = _load_sd_upscaler(file, device)
            self._key = key
        pipe = self._model
        tile = job.tile if job.tile else 0
        tile = min(tile, 256) if tile else 0  # the SD x4 upscaler works on small inputs: 128-256 px
        height, width = rgb.shape[:2]
        boxes = tile_boxes(width, height, tile, job.overlap)
        total = len(boxes) * job.steps
        report(0, total)
        state = {"tile": 0}

        def denoise(tile_rgb: np.ndarray) -> np.ndarray:
            def on_step(step: int, _timestep: Any, _latents: Any) -> None:
                # This pipeline has only the older per-step callback: stopping it means raising.
                cancel.raise_if_cancelled()
                report(min(total, state["tile"] * job.steps + step + 1), total)

            generator = torch.Generator("cpu").manual_seed(job.seed)
            output = pipe(
                prompt=job.prompt,
                image=Image.fromarray(tile_rgb),
                num_inference_steps=job.steps,
                generator=generator,
                callback=on_step,
                callback_steps=1,
                output_type="np",
            ).images[0]
            cancel.raise_if_cancelled()
            state["tile"] += 1
            return np.clip(np.rint(output * 255.0), 0, 255).astype(np.uint8)

        out = run_tiled(denoise, rgb, 4, job, lambda _d, _t: None, cancel)
        target = (width * job.scale, height * job.scale)
        if (out.shape[1], out.shape[0]) != target:
            out = np.asarray(Image.fromarray(out).resize(target, Image.Resampling.LANCZOS))
        return out, {"architecture": "StableDiffusionUpscalePipeline", "model_scale": 4, "passes": 1}


def _load_sd_upscaler(file: AddonFile, device: str) -> Any:
    from diffusers import StableDiffusionUpscalePipeline

    try:
        pipe = StableDiffusionUpscalePipeline.from_pretrained(
            str(file.path), dtype=pick_dtype(device), use_safetensors=True, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnavailableError(
            f"The upscaler {file.name} could not be loaded ({str(exc).splitlines()[0][:120]}); download it again."
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _spandrel_tile(model: Any, tile: np.ndarray, device: str) -> np.ndarray:
    """One tile through a spandrel network, padded to the network's size requirements and cropped back."""
    import torch

    need = model.size_requirements
    height, width = tile.shape[:2]
    padded_h, padded_w = _padded(height, need), _padded(width, need)
    if need.square:
        padded_h = padded_w = max(padded_h, padded_w)
    array = tile
    if (padded_h, padded_w) != (height, width):
        array = np.pad(tile, ((0, padded_h - height), (0, padded_w - width), (0, 0)), mode="reflect")
    dtype = torch.float16 if device.startswith("cuda") and model.supports_half else torch.float32
    tensor = (
        torch.from_numpy(np.array(array, dtype=np.uint8, copy=True))
        .permute(2, 0, 1)[None]
        .to(device=device, dtype=dtype)
    )
    model.to(dtype=dtype)
    with torch.inference_mode():
        out = model(tensor / 255.0)
    scale = int(model.scale)
    out = out[0, :, : height * scale, : width * scale].clamp(0, 1).float().mul(255.0).round()
    return out.byte().permute(1, 2, 0).cpu().numpy()


def _padded(size: int, need: Any) -> int:
    size = max(size, int(need.minimum))
    multiple = max(1, int(need.multiple_of))
    return -(-size // multiple) * multiple


def tile_boxes(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of each input tile: `tile` pixels square, neighbours overlapping by `overlap`."""
    if not tile or (width <= tile and height <= tile):
        return [(0, 0, width, height)]
    stride = max(1, tile - overlap)
    xs = list(range(0, max(1, width - overlap), stride))
    ys = list(range(0, max(1, height - overlap), stride))
    return [(x, y, min(width, x + tile), min(height, y + tile)) for y in ys for x in xs]


def run_tiled(
    model: Callable[[np.ndarray], np.ndarray],
    rgb: np.ndarray,
    scale: int,
    job: UpscaleJob,
    report: Progress,
    cancel: CancelToken,
) -> np.ndarray:
    """Run `model` (HxWx3 uint8 -> (H*scale)x(W*scale)x3 uint8) tile by tile and blend the tiles' results.

    Tiles are processed row by row; where a tile overlaps the ones already placed (its left and top margins),
    its result is blended in with a linear ramp across the overlap, so the seam disappears.
    """
    height, width = rgb.shape[:2]
    boxes = tile_boxes(width, height, job.tile, job.overlap)
    out = np.zeros((height * scale, width * scale, 3), np.uint8)
    report(0, len(boxes))
    for index, (left, top, right, bottom) in enumerate(boxes):
        cancel.raise_if_cancelled()
        result = model(np.ascontiguousarray(rgb[top:bottom, left:right]))
        expected = ((bottom - top) * scale, (right - left) * scale)
        if result.shape[:2] != expected:
            result = np.asarray(Image.fromarray(result).resize((expected[1], expected[0]), Image.Resampling.LANCZOS))
        weight = np.ones(expected, np.float32)
        ramp_x = min(job.overlap, right - left) * scale if left > 0 else 0
        ramp_y = min(job.overlap, bottom - top) * scale if top > 0 else 0
        if ramp_x:
            weight[:, :ramp_x] *= np.linspace(0.0, 1.0, ramp_x + 2, dtype=np.float32)[1:-1][None, :]
        if ramp_y:
            weight[:ramp_y, :] *= np.linspace(0.0, 1.0, ramp_y + 2, dtype=np.float32)[1:-1][:, None]
        region = out[top * scale : bottom * scale, left * scale : right * scale]
        blended = region.astype(np.float32) * (1.0 - weight[..., None]) + result.astype(np.float32) * weight[..., None]
        region[...] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        report(index + 1, len(boxes))
    cancel.raise_if_cancelled()
    return out
