"""The job options of the headless commands, as one table: flag, job field, help.

`add_job_options()` puts them on a sub-command's parser; `job_from_args()` turns what was given into an
InpaintJob through `InpaintJob.from_dict`, so the CLI checks values with the same sentences as projects and
recipes, and every default is the job's own (an option that is not given is not set). A new job field
needs one row here to be usable from `inpaint`, `outpaint` and `batch` alike.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from inpaint_studio.core.fast_modes import DEFAULT_FAST
from inpaint_studio.core.generation_settings import get_path
from inpaint_studio.core.jobspec import (
    ATTENTION_CHOICES,
    FAST_CHOICES,
    SPEED_PRESETS,
    Area,
    ClassicalMethod,
    InpaintJob,
    MemoryMode,
)

SWITCH = ("auto", "on", "off")


@dataclass(frozen=True)
class JobOption:
    flag: str  # "--guidance"
    path: str  # the job field it sets: "guidance_scale", "mask.feather_px"
    help: str
    kind: type | Callable[[str], Any] | None = None  # int / float / str / a parser; None for a flag
    choices: tuple[str, ...] | None = None
    sets: Any = True  # a flag sets the field to this (--no-preserve sets preserve_unmasked False)
    repeat: bool = False  # may be given several times: the field is the list of the values, in order
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return "job__" + self.path.replace(".", "__")


def _values(enum: type[Enum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w./-]+)?$")


def lora_item(text: str) -> list[Any]:
    """`FILE_OR_ID[:WEIGHT]` -> [reference, weight]; a path that exists is taken whole (Windows drive colons)."""
    head, sep, tail = text.rpartition(":")
    if sep and head and not Path(text).exists():
        try:
            return [head, float(tail)]
        except ValueError:
            pass
    return [text, 1.0]


def embedding_item(text: str) -> list[str]:
    """`FILE_OR_ID[:TOKEN]` -> [reference, token] ("" = the file's own token, else its file name)."""
    head, sep, tail = text.rpartition(":")
    if (
        sep
        and head
        and tail
        and not Path(text).exists()
        and not any(c in tail for c in "/\\")
        and (head.lower().endswith(".safetensors") or Path(head).exists() or _HUB_ID.match(head))
    ):
        return [head, tail]
    return [text, ""]


JOB_OPTIONS: tuple[JobOption, ...] = (
    JobOption(
        "--model",
        "model",
        "hub id, diffusers folder, .safetensors file, 'classic', or a removal model: lama, mat, migan or its file",
        str,
    ),
    JobOption("--prompt", "prompt", "what to paint into the masked area", str),
    JobOption("--negative", "negative_prompt", "what to avoid", str),
    JobOption("--strength", "strength", "0-1: how much the area may change", float),
    JobOption("--guidance", "guidance_scale", "how closely to follow the prompt", float),
    JobOption("--steps", "steps", "denoising steps", int),
    JobOption("--scheduler", "scheduler", "sampler name, e.g. 'DPM++ 2M Karras', 'Euler a'", str),
    JobOption("--seed", "seed", "a whole number; random (and printed) when omitted", int),
    JobOption("--variants", "variants", "number of results (seeds seed, seed+1, ...)", int),
    JobOption("--area", "area", "what the model sees", str, _values(Area)),
    JobOption("--padding", "padding_px", "context around the mask, in pixels", int),
    JobOption("--resolution", "resolution", "working long side in px (default: the model's own)", int),
    JobOption("--grow", "mask.grow_px", "grow (>0) or shrink (<0) the mask, in pixels", int),
    JobOption("--feather", "mask.feather_px", "soft edge width, in pixels", int),
    JobOption("--no-preserve", "preserve_unmasked", "keep the model's pixels outside the mask too", sets=False),
    JobOption("--color-match", "color_match", "match the fill's colours to its surroundings"),
    JobOption("--method", "classical_method", "classical fill method", str, _values(ClassicalMethod)),
    JobOption("--device", "device", "auto, cuda, cuda:N, mps or cpu", str),
    JobOption("--memory", "memory_mode", "CPU offload mode", str, _values(MemoryMode)),
    JobOption("--weighted", "prompt_weighting", "prompt weighting: (word)1.3, word++, word-- (compel)"),
    JobOption("--refiner", "refiner", "an SDXL refiner run after an SDXL model", str),
    JobOption("--refiner-switch", "refiner_switch", "share of the steps done before the refiner", float),
    JobOption("--controlnet", "controlnet", "ControlNet, e.g. lllyasviel/control_v11p_sd15_inpaint", str),
    JobOption("--control-scale", "controlnet_scale", "ControlNet strength", float),
    JobOption("--control-start", "control_start", "0-1: when the ControlNet starts", float),
    JobOption("--control-end", "control_end", "0-1: when the ControlNet stops", float),
    JobOption("--prior-steps", "prior_steps", "Kandinsky 2.2 prior steps", int),
    JobOption("--prior-guidance", "prior_guidance_scale", "Kandinsky 2.2 prior guidance", float),
    JobOption("--attention", "speed.attention", "attention kernel", str, ATTENTION_CHOICES),
    JobOption("--vae-tiling", "speed.vae_tiling", "tiled VAE for big areas", str, SWITCH),
    JobOption("--channels-last", "speed.channels_last", "UNet memory layout", str, SWITCH),
    JobOption("--compile", "speed.compile_unet", "torch.compile the UNet (slow first run)"),
    JobOption("--fuse-qkv", "speed.fuse_qkv", "one fused query/key/value projection per attention", str, SWITCH),
    JobOption(
        "--speed-preset", "speed.preset", "fastest: fused QKV, channels_last, compile on CUDA", str, SPEED_PRESETS
    ),
    JobOption(
        "--lora",
        "loras",
        "a LoRA (.safetensors or hub id) with its weight, e.g. style.safetensors:0.8; repeatable",
        lora_item,
        repeat=True,
        metavar="FILE_OR_ID[:WEIGHT]",
    ),
    JobOption(
        "--embedding",
        "embeddings",
        "a textual-inversion embedding (.safetensors) and the token that calls it; repeatable",
        embedding_item,
        repeat=True,
        metavar="FILE[:TOKEN]",
    ),
    JobOption("--ip-adapter", "ip_adapter", "IP-Adapter for --reference, e.g. h94/IP-Adapter", str),
    JobOption("--reference-scale", "ip_adapter_scale", "how strongly the reference image steers", float),
    JobOption("--reference-masked", "ip_adapter_masked", "the reference acts inside the mask only"),
    JobOption("--fast", "fast", f"fast mode: a few-step LoRA ({DEFAULT_FAST}) with its sampler", sets=DEFAULT_FAST),
    JobOption("--fast-mode", "fast", "which few-step LoRA fast mode uses", str, FAST_CHOICES),
    JobOption(
        "--prefill",
        "prefill",
        "remove, then refine: fill the mask first with classic, lama, mat, migan or a removal model file, "
        "then redraw it with the diffusion model at --strength",
        str,
    ),
)


def add_job_options(parser: argparse.ArgumentParser, options: Iterable[JobOption] = JOB_OPTIONS) -> None:
    """Add the options; none has an argparse default, so job_from_args sees only what was given."""
    defaults = InpaintJob()
    group = parser.add_argument_group("job options (defaults in brackets)")
    for option in options:
        default = get_path(defaults, option.path)
        shown = getattr(default, "value", default)
        if option.kind is None:
            group.add_argument(
                option.flag,
                dest=option.dest,
                action="store_const",
                const=option.sets,
                default=argparse.SUPPRESS,
                help=option.help,
            )
        elif option.repeat:
            group.add_argument(
                option.flag,
                dest=option.dest,
                type=option.kind,
                action="append",
                default=argparse.SUPPRESS,
                metavar=option.metavar,
                help=option.help,
            )
        else:
            group.add_argument(
                option.flag,
                dest=option.dest,
                type=option.kind,
                choices=option.choices,
                default=argparse.SUPPRESS,
                metavar=None if option.choices else (option.metavar or option.kind.__name__.upper()),
                help=f"{option.help} [{'random' if option.path == 'seed' else shown}]",
            )


def given_job_values(args: argparse.Namespace) -> dict[str, Any]:
    """The job options given on the command line, as a nested job dict (for InpaintJob.from_dict)."""
    data: dict[str, Any] = {}
    for option in JOB_OPTIONS:
        if hasattr(args, option.dest):
            head, _, tail = option.path.partition(".")
            if tail:
                data.setdefault(head, {})[tail] = getattr(args, option.dest)
            else:
                data[head] = getattr(args, option.dest)
    return data


def job_from_args(args: argparse.Namespace, base: Mapping[str, Any] | None = None) -> InpaintJob:
    """The job the command line describes: `base` (e.g. a --job file's settings) with the given options over
    it; checked (BadInputError with one sentence per problem)."""
    data = {**(base or {})}
    for key, value in given_job_values(args).items():
        if isinstance(value, dict) and isinstance(data.get(key), Mapping):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return InpaintJob.from_dict(data).validate()
