"""The inpainting job specification: everything needed to reproduce a result.

A job is a frozen dataclass built on the UI thread (or by the CLI) and handed to the engine. Its recorded
form always holds a concrete seed (see `InpaintJob.resolved`), so a history entry can re-create its pixels.
`validate()` reports every bad value at once, one clear sentence each.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from inpaint_studio.core.errors import BadInputError

CLASSIC_MODEL = "classic"
"""Model reference of the classical (OpenCV) fill: works with nothing downloaded."""

REMOVAL_MODELS = ("lama", "mat", "migan")
"""Catalog names of the object-removal networks (resources/models.json, docs/removal.md): no prompt, one pass."""
REMOVAL_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".onnx")
"""Files that can hold a removal network (LaMa / MAT weights, an MI-GAN ONNX pipeline)."""
PREFILL_NONE = "none"

MAX_SEED = 2**32 - 1
MAX_VARIANTS = 16
MAX_STEPS = 500


class Area(str, Enum):
    """Which part of the image the model sees."""

    WHOLE = "whole"  # the whole image, resized to a size the model accepts
    MASKED = "masked"  # the mask's bounding box plus padding, at the model's native resolution


class OutputSize(str, Enum):
    """Size of the returned image."""

    ORIGINAL = "original"  # same size as the input image (default; required for compositing)
    PROCESSED = "processed"  # the size the model worked at (whole-image mode only)


class ClassicalMethod(str, Enum):
    TELEA = "telea"
    NAVIER_STOKES = "ns"
    FSR = "fsr"  # opencv-contrib xphoto fast spectral reconstruction: slower, better texture
    AUTO = "auto"


class MemoryMode(str, Enum):
    NONE = "none"
    MODEL_OFFLOAD = "model_offload"
    SEQUENTIAL_OFFLOAD = "sequential_offload"


class Task(str, Enum):
    """What a job does with its input."""

    INPAINT = "inpaint"  # repaint the masked area (the default)
    TEXT2IMG = "text2img"  # a new image from the prompt alone: no input image, no mask
    IMG2IMG = "img2img"  # redraw the whole input (or only the masked area) starting from its pixels


AUTO = "auto"
ON = "on"
OFF = "off"
_SWITCH = (AUTO, ON, OFF)
ATTENTION_CHOICES = (AUTO, "sdpa", "sliced")
SPEED_PRESETS = ("default", "fastest")  # fastest: fused QKV, channels_last, torch.compile on CUDA (engine/speed.py)
FAST_CHOICES = (OFF, "lcm", "tcd", "hyper", "lightning")  # few-step LoRAs (core/fast_modes.py)
MAX_LORAS = 8
MAX_EMBEDDINGS = 16
LORA_WEIGHT_LIMIT = 5.0
REFERENCE_INPUT = "reference"
"""Name of the IP-Adapter's reference image among a job's input images (beside "image" and "mask")."""


@dataclass(frozen=True)
class SpeedOptions:
    """Speed and memory settings that do not change what is painted, only how it is computed.

    "auto" means the device default (docs/models.md): SDPA attention except on Apple GPUs (sliced), VAE
    tiling only for working sizes above 4x the model's native pixel count, channels_last on CUDA only.
    The result records the values actually used.
    """

    attention: str = AUTO  # auto | sdpa (PyTorch scaled-dot-product attention) | sliced (lower peak memory)
    vae_tiling: str = AUTO  # auto | on | off
    channels_last: str = AUTO  # auto | on | off
    compile_unet: bool = False  # torch.compile the UNet once (dynamic shapes); slow first run, faster after
    fuse_qkv: str = AUTO  # auto | on | off: one fused query/key/value projection per attention (on with "fastest")
    preset: str = "default"  # default | fastest: fused QKV + channels_last + torch.compile (CUDA) where "auto"

    def problems(self) -> list[str]:
        out = []
        if self.attention not in ATTENTION_CHOICES:
            out.append(f"Attention '{self.attention}' is unknown; use one of: {', '.join(ATTENTION_CHOICES)}.")
        for name in ("vae_tiling", "channels_last", "fuse_qkv"):
            value = getattr(self, name)
            if value not in _SWITCH:
                out.append(f"{name.replace('_', ' ').capitalize()} '{value}' is unknown; use auto, on or off.")
        if self.preset not in SPEED_PRESETS:
            out.append(f"Speed preset '{self.preset}' is unknown; use one of: {', '.join(SPEED_PRESETS)}.")
        return out


@dataclass(frozen=True)
class MaskOptions:
    """How the painted mask is prepared before use.

    grow_px > 0 dilates, < 0 erodes. feather_px is the width of the soft edge used when compositing the
    result over the original (diffusion pipelines binarise the mask, so a soft edge only exists here).
    """

    grow_px: int = 0
    feather_px: int = 8

    def problems(self) -> list[str]:
        out = []
        if not -256 <= self.grow_px <= 256:
            out.append(f"Mask grow/shrink is {self.grow_px} px; use a value between -256 and 256.")
        if not 0 <= self.feather_px <= 256:
            out.append(f"Feather is {self.feather_px} px; use a value between 0 and 256.")
        return out


@dataclass(frozen=True)
class InpaintJob:
    """One inpainting request. Defaults give a sensible diffusion job; `model="classic"` needs no model."""

    model: str = CLASSIC_MODEL
    prompt: str = ""
    negative_prompt: str = ""
    strength: float = 1.0
    guidance_scale: float = 7.5
    steps: int = 30
    scheduler: str = "default"
    seed: int | None = None
    variants: int = 1
    mask: MaskOptions = field(default_factory=MaskOptions)
    area: Area = Area.MASKED
    padding_px: int = 64
    resolution: int | None = None  # working size of the long side; None = the model's native size
    preserve_unmasked: bool = True
    color_match: bool = False
    output_size: OutputSize = OutputSize.ORIGINAL
    classical_method: ClassicalMethod = ClassicalMethod.AUTO
    device: str = "auto"  # auto | cuda | cuda:N | mps | cpu
    memory_mode: MemoryMode = MemoryMode.NONE
    # ---- added for chains and more model families; the defaults keep older records meaning the same ----
    task: Task = Task.INPAINT
    width: int | None = None  # text-to-image output size; None = the model's native size
    height: int | None = None
    prompt_weighting: bool = False  # parse the prompts with compel's syntax: (word)1.3, word++, word--
    refiner: str | None = None  # an SDXL refiner run after the base model (SDXL base models only)
    refiner_switch: float = 0.8  # fraction of the denoising done by the base model before the refiner
    controlnet: str | None = None  # a ControlNet model reference (SD 1.5: control_v11p_sd15_inpaint)
    controlnet_scale: float = 1.0
    control_start: float = 0.0  # fraction of the denoising where the ControlNet starts / stops acting
    control_end: float = 1.0
    prior_steps: int = 25  # Kandinsky 2.2 prior (text -> image embedding)
    prior_guidance_scale: float = 4.0
    speed: SpeedOptions = field(default_factory=SpeedOptions)
    # ---- add-ons (docs/addons.md): the defaults mean none, so older records keep their meaning ----
    loras: tuple[tuple[str, float], ...] = ()  # (.safetensors file or hub reference, weight), applied in order
    embeddings: tuple[tuple[str, str], ...] = ()  # textual inversions: (file or hub reference, token; "" = own)
    ip_adapter: str | None = None  # an IP-Adapter; its reference image is the input image named "reference"
    ip_adapter_scale: float = 0.6  # how strongly the reference image steers the result
    ip_adapter_masked: bool = False  # the reference acts inside the mask only (diffusers' ip_adapter_masks)
    fast: str = OFF  # a few-step LoRA with its sampler, steps and guidance: off | lcm | tcd | hyper | lightning
    # "Remove, then refine": fill the masked area with the classical fill or a removal model first, then let
    # the diffusion model redraw it at `strength` (none | classic | lama | mat | migan | a removal model file)
    prefill: str = PREFILL_NONE

    # ---- validation -------------------------------------------------------------------------------------
    @property
    def is_classical(self) -> bool:
        return self.model == CLASSIC_MODEL or self.model.startswith(CLASSIC_MODEL + ":")

    @property
    def effective_classical_method(self) -> ClassicalMethod:
        """The method a classical fill uses: the one a "classic:<method>" model names, else `classical_method`.

        The model reference wins, so a record of "classic:telea" replays as Telea whatever the field says.
        An unknown method name raises BadInputError (`problems()` reports it first, so a validated job never
        does). Meaningless, but harmless, for a diffusion job.
        """
        suffix = _classic_suffix(self.model)
        if suffix is None:
            return self.classical_method
        try:
            return ClassicalMethod(suffix)
        except ValueError:
            raise BadInputError(_unknown_classical_method(suffix)) from None

    def problems(self) -> list[str]:
        """Every bad value, one sentence each; empty when the job is valid."""
        out: list[str] = []
        if not self.model.strip():
            out.append("No model is chosen; pick one, or use the classical fill ('classic').")
        suffix = _classic_suffix(self.model)
        if suffix is not None and suffix not in {method.value for method in ClassicalMethod}:
            out.append(_unknown_classical_method(suffix))
        if not (0.0 < self.strength <= 1.0):
            out.append(f"Strength is {self.strength}; it must be above 0 and at most 1.")
        if not (0.0 <= self.guidance_scale <= 50.0):
            out.append(f"Guidance scale is {self.guidance_scale}; use a value between 0 and 50.")
        if not (1 <= self.steps <= MAX_STEPS):
            out.append(f"Steps is {self.steps}; use between 1 and {MAX_STEPS}.")
        elif not self.is_classical and 0.0 < self.strength <= 1.0 and self.strength * self.steps < 1:
            need = 1 / self.strength  # inf for the tiniest strengths: never int() it unchecked
            advice = (
                f"raise the steps to at least {int(need) + 1} or the strength"
                if need < MAX_STEPS
                else "raise the strength"
            )
            out.append(f"Strength {self.strength} x {self.steps} steps runs no denoising step at all; {advice}.")
        if self.seed is not None and not (0 <= self.seed <= MAX_SEED):
            out.append(f"Seed {self.seed} is out of range; use a whole number from 0 to {MAX_SEED}.")
        if not (1 <= self.variants <= MAX_VARIANTS):
            out.append(f"Variants is {self.variants}; ask for between 1 and {MAX_VARIANTS}.")
        if not (0 <= self.padding_px <= 4096):
            out.append(f"Padding is {self.padding_px} px; use a value between 0 and 4096.")
        if self.resolution is not None and not (64 <= self.resolution <= 4096):
            out.append(f"Working resolution is {self.resolution} px; use between 64 and 4096, or leave it empty.")
        if self.output_size is OutputSize.PROCESSED and self.area is Area.MASKED:
            out.append("Output size 'processed' only works with area 'whole'; use 'original' for a masked region.")
        if self.output_size is OutputSize.PROCESSED and self.preserve_unmasked:
            out.append("Preserve-unmasked needs output size 'original'; turn one of them off.")
        out.extend(self.mask.problems())
        out.extend(self._task_problems())
        out.extend(self._option_problems())
        out.extend(self._prefill_problems())
        out.extend(self.speed.problems())
        out.extend(self._addon_problems())
        return out

    def _task_problems(self) -> list[str]:
        out: list[str] = []
        if self.task is not Task.INPAINT and self.is_classical:
            out.append(f"The classical fill can only inpaint; choose a diffusion model for {self.task.value}.")
        if self.task is Task.TEXT2IMG:
            if self.strength != 1.0:
                out.append("Strength has no meaning for text-to-image (there is no input image); leave it at 1.")
            for name in ("width", "height"):
                value = getattr(self, name)
                if value is not None and not (64 <= value <= 4096 and value % 8 == 0):
                    out.append(f"The {name} is {value} px; use a multiple of 8 between 64 and 4096, or leave it empty.")
        elif self.width is not None or self.height is not None:
            out.append("Width and height only apply to text-to-image; use the working resolution for other tasks.")
        if self.controlnet is not None and self.task is not Task.INPAINT:
            out.append("A ControlNet can only be used for inpainting here; remove it or set the task to inpaint.")
        return out

    def _option_problems(self) -> list[str]:
        out: list[str] = []
        if self.refiner is not None and not self.refiner.strip():
            out.append("The refiner is empty; name an SDXL refiner model or leave it unset.")
        if not (0.0 < self.refiner_switch < 1.0):
            out.append(f"Refiner switch is {self.refiner_switch}; use a fraction between 0 and 1 (0.8 is usual).")
        if self.controlnet is not None and not self.controlnet.strip():
            out.append("The ControlNet is empty; name a ControlNet model or leave it unset.")
        if not (0.0 <= self.controlnet_scale <= 2.0):
            out.append(f"ControlNet scale is {self.controlnet_scale}; use a value between 0 and 2.")
        if not (0.0 <= self.control_start < self.control_end <= 1.0):
            out.append(
                f"ControlNet start {self.control_start} and end {self.control_end} must satisfy 0 <= start < end <= 1."
            )
        if not (1 <= self.prior_steps <= MAX_STEPS):
            out.append(f"Prior steps is {self.prior_steps}; use between 1 and {MAX_STEPS}.")
        if not (0.0 <= self.prior_guidance_scale <= 50.0):
            out.append(f"Prior guidance scale is {self.prior_guidance_scale}; use a value between 0 and 50.")
        return out

    def _addon_problems(self) -> list[str]:
        out: list[str] = []
        if len(self.loras) > MAX_LORAS:
            out.append(f"{len(self.loras)} LoRAs are listed; use at most {MAX_LORAS} at once.")
        seen: set[str] = set()
        for reference, weight in self.loras:
            name = _short_name(reference)
            if not reference.strip():
                out.append("A LoRA has no file or hub id; choose one or remove the empty entry.")
            elif reference.strip() in seen:
                out.append(f"The LoRA {name} is listed twice; keep one entry and set its weight there.")
            seen.add(reference.strip())
            if not (math.isfinite(weight) and -LORA_WEIGHT_LIMIT <= weight <= LORA_WEIGHT_LIMIT):
                out.append(
                    f"The weight of the LoRA {name} is {weight}; use a value between "
                    f"{-LORA_WEIGHT_LIMIT:g} and {LORA_WEIGHT_LIMIT:g} (1 is full strength, 0 is off)."
                )
        if len(self.embeddings) > MAX_EMBEDDINGS:
            out.append(f"{len(self.embeddings)} embeddings are listed; use at most {MAX_EMBEDDINGS} at once.")
        tokens: set[str] = set()
        for reference, token in self.embeddings:
            if not reference.strip():
                out.append("An embedding has no file or hub id; choose one or remove the empty entry.")
            if token and (token != token.strip() or any(c.isspace() or c in ",()[]:" for c in token)):
                out.append(
                    f"The embedding token {token!r:.40} must be one word without spaces, commas, brackets or colons."
                )
            key = token or reference.strip()
            if key in tokens:
                out.append(f"The embedding {token or _short_name(reference)} is listed twice; keep one entry.")
            tokens.add(key)
        if self.ip_adapter is not None and not self.ip_adapter.strip():
            out.append("The IP-Adapter is empty; name an IP-Adapter (e.g. h94/IP-Adapter) or leave it unset.")
        if not (0.0 <= self.ip_adapter_scale <= 2.0):
            out.append(f"Reference scale is {self.ip_adapter_scale}; use a value between 0 and 2 (0.6 is usual).")
        if self.fast not in FAST_CHOICES:
            out.append(f"Fast mode '{self.fast}' is unknown; use one of: {', '.join(FAST_CHOICES)}.")
        return out

    def _prefill_problems(self) -> list[str]:
        prefill = self.prefill.strip()
        if prefill == PREFILL_NONE:
            return []
        choices = f"'{PREFILL_NONE}', '{CLASSIC_MODEL}', {', '.join(REMOVAL_MODELS)} or a removal model file"
        if not prefill:
            return [f"The pre-fill is empty; use {choices}."]
        out: list[str] = []
        named = prefill == CLASSIC_MODEL or prefill in REMOVAL_MODELS
        if not named and not prefill.lower().endswith(REMOVAL_FILE_SUFFIXES):
            out.append(f"The pre-fill {prefill!r:.60} is not a removal model; use {choices}.")
        if self.is_classical or self.model.strip() in REMOVAL_MODELS:
            out.append(
                "A pre-fill prepares the area for a diffusion model to redraw; choose a diffusion model, "
                f"or set the pre-fill to '{PREFILL_NONE}'."
            )
        elif self.task is not Task.INPAINT:
            out.append(
                f"A pre-fill only works when inpainting; set the task to inpaint or the pre-fill to '{PREFILL_NONE}'."
            )
        elif self.strength >= 1.0:
            # At strength 1 the diffusion model starts from pure noise: the pre-filled pixels would not count.
            out.append("At strength 1 the pre-filled area is replaced entirely; lower the strength (0.5-0.8 is usual).")
        return out

    def validate(self) -> InpaintJob:
        problems = self.problems()
        if problems:
            raise BadInputError(" ".join(problems))
        return self

    # ---- reproducibility --------------------------------------------------------------------------------
    def resolved(self) -> InpaintJob:
        """A copy with a concrete seed (random when none was chosen): the form that goes into history."""
        if self.seed is not None:
            return self
        return dataclasses.replace(self, seed=secrets.randbelow(MAX_SEED + 1))

    def variant_seeds(self) -> list[int]:
        """Seed of each variant: the job's seed, then +1, +2, ... (so variant k re-runs alone)."""
        if self.seed is None:
            raise ValueError("resolve the job before asking for its variant seeds")
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.variants)]

    def replace(self, **changes: Any) -> InpaintJob:
        return dataclasses.replace(self, **changes)

    # ---- serialisation (history records, project files, recipes) ------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, Enum):
                data[key] = value.value
        for key in ("loras", "embeddings"):  # plain JSON data: lists, as they come back from a file
            data[key] = [list(pair) for pair in data[key]]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InpaintJob:
        """Build a job from plain data; unknown keys are an error (a typo must not pass silently).

        Records come from files (projects, recipes, history), so every value's type is checked here: a
        job built from data never fails later with a type error, only with the sentences of `problems()`.
        Whole numbers are accepted where a fraction is expected; true/false is not a number.
        """
        if not isinstance(data, Mapping):
            raise BadInputError(f"A job must be a set of named settings, not {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise BadInputError(f"Unknown job setting(s): {', '.join(unknown)}; check the spelling.")
        kwargs = dict(data)
        try:
            if "mask" in kwargs:
                kwargs["mask"] = _options_from(MaskOptions, kwargs["mask"], "mask")
            if "speed" in kwargs:
                kwargs["speed"] = _options_from(SpeedOptions, kwargs["speed"], "speed")
            if "loras" in kwargs:
                kwargs["loras"] = _pairs_from(kwargs["loras"], "loras", "float", 1.0)
            if "embeddings" in kwargs:
                kwargs["embeddings"] = _pairs_from(kwargs["embeddings"], "embeddings", "str", "")
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"A job setting has a value that is not allowed: {exc}.") from exc
        for name, enum in (
            ("area", Area),
            ("output_size", OutputSize),
            ("classical_method", ClassicalMethod),
            ("memory_mode", MemoryMode),
            ("task", Task),
        ):
            if name in kwargs:
                try:
                    kwargs[name] = enum(kwargs[name])
                except (TypeError, ValueError) as exc:
                    choices = ", ".join(member.value for member in enum)
                    raise BadInputError(
                        f"The job setting '{name}' is {kwargs[name]!r:.40}; use one of: {choices}."
                    ) from exc
        for name, value in kwargs.items():
            _check_kind(name, value, _FIELD_KINDS[name])
        return cls(**kwargs)


def _classic_suffix(model: str) -> str | None:
    """The method name after "classic:" in a model reference (stripped, as models.resolve_model reads it)."""
    reference = model.strip()
    prefix = CLASSIC_MODEL + ":"
    return reference[len(prefix) :] if reference.startswith(prefix) else None


def _unknown_classical_method(name: str) -> str:
    choices = ", ".join(f"{CLASSIC_MODEL}:{method.value}" for method in ClassicalMethod)
    return f"The classical fill method {name!r:.40} is unknown; use the model '{CLASSIC_MODEL}' or one of: {choices}."


# What each plain-data value must be: "str", "int", "float", "bool", with "?" when None is allowed.
_FIELD_KINDS: dict[str, str] = {
    "model": "str",
    "prompt": "str",
    "negative_prompt": "str",
    "strength": "float",
    "guidance_scale": "float",
    "steps": "int",
    "scheduler": "str",
    "seed": "int?",
    "variants": "int",
    "mask": "object",
    "area": "object",
    "padding_px": "int",
    "resolution": "int?",
    "preserve_unmasked": "bool",
    "color_match": "bool",
    "output_size": "object",
    "classical_method": "object",
    "device": "str",
    "memory_mode": "object",
    "task": "object",
    "width": "int?",
    "height": "int?",
    "prompt_weighting": "bool",
    "refiner": "str?",
    "refiner_switch": "float",
    "controlnet": "str?",
    "controlnet_scale": "float",
    "control_start": "float",
    "control_end": "float",
    "prior_steps": "int",
    "prior_guidance_scale": "float",
    "speed": "object",
    "loras": "object",  # checked by _pairs_from
    "embeddings": "object",
    "ip_adapter": "str?",
    "ip_adapter_scale": "float",
    "ip_adapter_masked": "bool",
    "fast": "str",
    "prefill": "str",
    # MaskOptions / SpeedOptions
    "grow_px": "int",
    "feather_px": "int",
    "attention": "str",
    "vae_tiling": "str",
    "channels_last": "str",
    "compile_unet": "bool",
    "fuse_qkv": "str",
    "preset": "str",
}
_KIND_WORDS = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false"}


def _check_kind(name: str, value: Any, kind: str) -> None:
    if kind == "object" or (kind.endswith("?") and value is None):
        return
    base = kind.rstrip("?")
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }[base]
    if not ok:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        allowed = _KIND_WORDS[base] + (" or empty" if kind.endswith("?") else "")
        raise BadInputError(f"The job setting '{name}' is {shown}; it must be {allowed}.")


def _options_from(cls: type, value: Any, name: str) -> Any:
    """MaskOptions / SpeedOptions from a mapping (or as given), each value's type checked."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise BadInputError(f"The job setting '{name}' must be a set of named settings.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(value) - known)
    if unknown:
        raise BadInputError(f"Unknown {name} setting(s): {', '.join(unknown)}; check the spelling.")
    for key, item in value.items():
        _check_kind(key, item, _FIELD_KINDS[key])
    return cls(**value)


def _pairs_from(value: Any, name: str, second: str, default: Any) -> tuple[tuple[Any, ...], ...]:
    """LoRAs / embeddings from plain data: a list of [reference, weight or token] pairs (a bare reference
    means weight 1 / the file's own token), each value's type checked; always tuples, so equality holds."""
    what = "weight" if second == "float" else "token"
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise BadInputError(f"The job setting '{name}' must be a list of [file or hub id, {what}] pairs.")
    out = []
    for item in value:
        if isinstance(item, str):
            item = (item, default)
        if not isinstance(item, list | tuple) or len(item) != 2:
            shown = repr(item) if len(repr(item)) <= 40 else repr(item)[:37] + "..."
            raise BadInputError(f"An entry of '{name}' is {shown}; it must be a [file or hub id, {what}] pair.")
        reference, other = item
        _check_kind(f"{name} file or hub id", reference, "str")
        _check_kind(f"{name} {what}", other, second)
        out.append((reference, float(other) if second == "float" else other))
    return tuple(out)


def _short_name(reference: str) -> str:
    """How an add-on is named in a sentence: its file name, or its hub id."""
    text = reference.strip().replace("\\", "/").rstrip("/")
    return text.rsplit("/", 1)[-1] if "." in text.rsplit("/", 1)[-1] else text or "(empty)"
