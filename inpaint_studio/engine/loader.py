"""Loading inpainting pipelines, keeping one loaded, and releasing its memory on a switch.

All loading goes through the public diffusers API a user's model takes: AutoPipelineForInpainting for
diffusers folders and hub snapshots (it picks the class from model_index.json), `from_single_file` for a
.safetensors checkpoint. Only safetensors weights are read (`use_safetensors=True`), from local files only;
no remote code is ever trusted (no `trust_remote_code`, no `custom_pipeline`: tests/hardening/test_security.py
checks every loading call). The one exception to "safetensors only" is a pickled checkpoint the user allowed
explicitly (models.resolve_model, `allow_unsafe`), which diffusers reads with torch's weights-only unpickler.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.core.jobspec import MemoryMode
from inpaint_studio.engine.devices import check_memory_mode, pick_dtype
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.models import ControlNetInfo, ModelInfo
from inpaint_studio.engine.warmup import import_engine_libraries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadKey:
    """What identifies a loaded pipeline: a change in any field means a reload."""

    path: str
    device: str
    dtype: str
    memory_mode: MemoryMode


def _has_fp16_variant(folder: Path) -> bool:
    return any(folder.glob("*/*.fp16.safetensors"))


def load_pipeline(info: ModelInfo, device: str, memory_mode: MemoryMode = MemoryMode.NONE) -> Any:
    """Build the inpainting pipeline for `info` on `device` (no caching; see PipelineManager)."""
    import_engine_libraries()  # once per process: without stalling a window, or transformers' warnings
    import torch
    from diffusers import AutoPipelineForInpainting, StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline

    if info.path is None:
        raise ModelUnavailableError(f"{info.name} has no files to load; choose a diffusers model.")
    check_memory_mode(memory_mode, device)
    _quiet_library_progress()
    dtype = pick_dtype(device)
    common: dict[str, Any] = {"dtype": dtype, "use_safetensors": True}
    try:
        if info.source in ("single_file", "legacy_checkpoint"):
            if info.source == "legacy_checkpoint":
                # Allowed by the user (models.detect_legacy_checkpoint already read it weights-only); diffusers
                # reads it again with torch.load(weights_only=True) too.
                log.warning("loading the pickled checkpoint %s, which the user allowed explicitly", info.path)
            cls = StableDiffusionXLInpaintPipeline if info.family.is_sdxl else StableDiffusionInpaintPipeline
            kwargs = dict(common)
            if info.config_dir is not None:
                kwargs.update(config=str(info.config_dir), local_files_only=True)
            pipe = cls.from_single_file(str(info.path), **kwargs)
        else:
            kwargs = dict(common, local_files_only=True)
            if dtype == torch.float16 and _has_fp16_variant(info.path):
                kwargs["variant"] = "fp16"
            if info.family in (Family.SD, Family.SD_INPAINT):
                # Artists' own images: the NSFW checker blanks false positives and costs memory.
                kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
            pipe = AutoPipelineForInpainting.from_pretrained(str(info.path), **kwargs)
    except Exception as exc:
        if info.source == "single_file" and info.config_dir is None and _is_offline_error(exc):
            raise ModelUnavailableError(
                f"The checkpoint {info.name} needs its model configuration from the Hugging Face hub once; "
                "connect to the internet and try again, or put a diffusers config folder named 'config' beside it."
            ) from exc
        if not isinstance(exc, (OSError, ValueError, KeyError, RuntimeError)):
            raise
        text = str(exc)
        if "custom code" in text:
            raise ModelUnavailableError(
                f"The model {info.name} ships its own Python code, which this app never runs; choose a model "
                "made of diffusers' own components."
            ) from exc
        if "no file named" in text and ".safetensors" in text:
            raise ModelUnavailableError(
                f"The model {info.name} has no .safetensors weights for a part of it (pickled weights are never "
                "loaded: they can run code); download its safetensors version."
            ) from exc
        raise ModelUnavailableError(
            f"The model {info.name} could not be loaded ({_short(exc)}); it may be incomplete: "
            "download it again or choose another model."
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    if memory_mode is MemoryMode.NONE:
        pipe.to(device)
    else:
        _enable_offload(pipe, memory_mode, device)
    # PyTorch's scaled-dot-product attention is diffusers' default processor on torch 2: nothing to enable.
    return pipe


def _quiet_library_progress() -> None:
    """The libraries' own loading bars go to stderr; the app shows its own progress (CLI bar, GUI)."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def _is_offline_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError"})


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


@dataclass(frozen=True)
class Variant:
    """A pipeline built on the loaded checkpoint's modules with from_pipe: another task, or a ControlNet.

    `task` is "inpaint", "text2img" or "img2img"; `controlnet` is the ControlNet folder, if any.
    """

    task: str = "inpaint"
    controlnet: str | None = None


BASE = Variant()


def load_controlnet(info: ControlNetInfo, device: str) -> Any:
    import_engine_libraries()
    from diffusers import ControlNetModel

    try:
        model = ControlNetModel.from_pretrained(
            str(info.path), dtype=pick_dtype(device), use_safetensors=True, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnavailableError(
            f"The ControlNet {info.name} could not be loaded ({_short(exc)}); download it again or choose another."
        ) from exc
    return model


def build_variant(base: Any, variant: Variant, controlnet: Any = None) -> Any:
    """A pipeline for `variant` that shares every module of `base` (from_pipe copies no weights)."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    if variant.controlnet is not None:
        unet_dim = base.unet.config.cross_attention_dim
        if controlnet.config.cross_attention_dim != unet_dim:
            raise BadInputError(
                f"The ControlNet {Path(variant.controlnet).name} was made for another model family "
                f"(text width {controlnet.config.cross_attention_dim}, the model has {unet_dim}); "
                "choose a ControlNet for this base model."
            )
        pipe = AutoPipelineForInpainting.from_pipe(base, controlnet=controlnet)
    elif variant.task == "text2img":
        pipe = AutoPipelineForText2Image.from_pipe(base)
    elif variant.task == "img2img":
        pipe = AutoPipelineForImage2Image.from_pipe(base)
    else:
        return base
    pipe.set_progress_bar_config(disable=True)
    return pipe


class PipelineManager:
    """Keeps one checkpoint loaded and reuses it while the same model/device/mode is asked for.

    Other tasks on the same checkpoint (text-to-image, image-to-image, ControlNet inpainting) are
    from_pipe variants of the loaded pipeline: they share its modules, are cached beside it and released
    with it. Switching checkpoint releases everything first, so peak memory never holds two models.
    Thread safe: the GUI's worker thread and a CLI call the same object.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._key: LoadKey | None = None
        self._pipe: Any = None
        self._info: ModelInfo | None = None
        self._variants: dict[Variant, Any] = {}
        self._controlnets: dict[str, Any] = {}
        self._hooked: Any = None  # the pipeline whose offload hooks are installed (offload modes only)

    @property
    def loaded(self) -> ModelInfo | None:
        return self._info

    def pipelines(self) -> list[Any]:
        """Every pipeline held now: the loaded one first, then its variants."""
        with self._lock:
            return [] if self._pipe is None else [self._pipe, *self._variants.values()]

    def get(
        self,
        info: ModelInfo,
        device: str,
        memory_mode: MemoryMode = MemoryMode.NONE,
        variant: Variant = BASE,
        controlnet: ControlNetInfo | None = None,
    ) -> Any:
        if info.path is None:
            raise BadInputError(f"{info.name} is not a diffusion model.")
        key = LoadKey(str(info.path), device, str(pick_dtype(device)), memory_mode)
        with self._lock:
            if self._key != key or self._pipe is None:
                self.release()
                log.info("loading %s on %s (%s)", info.name, device, memory_mode.value)
                self._pipe = load_pipeline(info, device, memory_mode)
                self._key, self._info = key, info
                self._hooked = self._pipe if memory_mode is not MemoryMode.NONE else None
            if variant == BASE:
                pipe = self._pipe
            else:
                pipe = self._variants.get(variant)
                if pipe is None:
                    model = None
                    if variant.controlnet is not None:
                        assert controlnet is not None and str(controlnet.path) == variant.controlnet
                        model = self._controlnet(controlnet, device, memory_mode)
                    pipe = build_variant(self._pipe, variant, model)
                    self._variants[variant] = pipe
            if memory_mode is not MemoryMode.NONE and self._hooked is not pipe:
                # Offload hooks chain the modules of one pipeline; a variant has another module order.
                _enable_offload(pipe, memory_mode, device)
                self._hooked = pipe
            return pipe

    def _controlnet(self, info: ControlNetInfo, device: str, memory_mode: MemoryMode) -> Any:
        key = str(info.path)
        if key not in self._controlnets:
            self._controlnets.clear()  # one ControlNet at a time, like one checkpoint
            self._variants = {v: p for v, p in self._variants.items() if v.controlnet is None}
            model = load_controlnet(info, device)
            if memory_mode is MemoryMode.NONE:
                model.to(device)
            self._controlnets[key] = model
        return self._controlnets[key]

    def release(self) -> None:
        """Drop the loaded pipeline and its variants and return their memory (CPU and GPU)."""
        with self._lock:
            if self._pipe is None:
                return
            device = self._key.device if self._key else "cpu"
            self._pipe = None
            self._variants.clear()
            self._controlnets.clear()
            self._hooked = None
            self._key = None
            self._info = None
            gc.collect()
            free_device_cache(device)


def _enable_offload(pipe: Any, memory_mode: MemoryMode, device: str) -> None:
    if memory_mode is MemoryMode.MODEL_OFFLOAD:
        pipe.enable_model_cpu_offload(device=device)
    elif memory_mode is MemoryMode.SEQUENTIAL_OFFLOAD:
        pipe.enable_sequential_cpu_offload(device=device)


def free_device_cache(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
