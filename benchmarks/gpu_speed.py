"""GPU speed benchmark: the engine's "fastest" speed preset against plain diffusers' default call, on SD 1.5-size
(512 px) and SDXL-size (1024 px) inpainting; fast mode's seconds per image; LoRAs fused against unfused; the
low-VRAM modes' peak memory. One command; prints the table for docs/benchmarks.md.

    PYTHONPATH=. python benchmarks/gpu_speed.py                 # both models, 30 steps, 3 repeats
    PYTHONPATH=. python benchmarks/gpu_speed.py --models sd15 --repeats 5
    PYTHONPATH=. python benchmarks/gpu_speed.py --tiny           # a dry run on the CPU with the tests' tiny models

The pipelines have the real architectures (configs in benchmarks/configs/: SD 1.5 inpainting and SDXL inpainting
0.1, the published ones) with random fp16 weights, saved with save_pretrained and loaded through the engine's
public path; speed does not depend on the weights' values. The fast-mode and LoRA rows use a random LoRA of rank
64 on the attention and feed-forward layers (the size of LCM-LoRA), put in a private Hugging Face cache under the
id fast mode looks for, so nothing is downloaded.

Rows (medians of `--repeats` runs after a warm-up; every run uses the same arguments and seed):
- plain diffusers: a separately loaded pipeline called with the same arguments (`output_type="np"`);
- engine default / engine fastest: the engine on the whole frame, no composite (the same work as the plain call);
  "fastest" = fused QKV + channels_last + torch.compile(max-autotune, no CUDA graphs); its first call (the compile
  warm-up) is reported on its own; the pixel difference is against the plain call (max and mean over 0-255);
- fast mode (LCM, 4 steps, guidance 1), default and fastest;
- a LoRA fused (the engine's way) and unfused (peft layers kept), one UNet call each;
- memory modes: peak GPU memory and time for none / model_offload / sequential_offload.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIGS = Path(__file__).with_name("configs")
SIZES = {"sd15": 512, "sdxl": 1024}
FAST_IDS = {"sd15": "latent-consistency/lcm-lora-sdv1-5", "sdxl": "latent-consistency/lcm-lora-sdxl"}


def config(model: str, name: str) -> dict[str, Any]:
    folder = "sd15_inpaint" if model == "sd15" else "sdxl_inpaint"
    data = json.loads((CONFIGS / folder / f"{name}.json").read_text())
    return {k: v for k, v in data.items() if k != "architectures"}


def build(model: str, path: Path, device: str) -> Path:
    """The real architecture with random weights, saved as a diffusers folder (fp16)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        PNDMScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionXLInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from tests.tiny_models import BOS_ID, EOS_ID, make_tokenizer

    def text_config(name: str) -> CLIPTextConfig:
        cfg = CLIPTextConfig(**config(model, name))
        cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = BOS_ID, EOS_ID, EOS_ID
        return cfg

    torch.manual_seed(0)
    with torch.device(device):  # initialise on the GPU: seconds instead of minutes for billions of parameters
        unet = UNet2DConditionModel.from_config(config(model, "unet")).half()
        vae = AutoencoderKL.from_config(config(model, "vae")).half()
        text_encoder = CLIPTextModel(text_config("text_encoder")).half()
        if model == "sdxl":
            text_encoder_2 = CLIPTextModelWithProjection(text_config("text_encoder_2")).half()
    if model == "sd15":
        pipe = StableDiffusionInpaintPipeline(
            unet=unet,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=make_tokenizer(),
            scheduler=PNDMScheduler.from_config(config(model, "scheduler")),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    else:
        pipe = StableDiffusionXLInpaintPipeline(
            unet=unet,
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=make_tokenizer(),
            tokenizer_2=make_tokenizer(),
            scheduler=EulerDiscreteScheduler.from_config(config(model, "scheduler")),
            requires_aesthetics_score=False,
            add_watermarker=False,
        )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny(model: str, path: Path) -> Path:
    from tests.tiny_models import build_sd_inpaint, build_sdxl_inpaint

    return (build_sd_inpaint if model == "sd15" else build_sdxl_inpaint)(path)


def random_lora(unet_config: dict[str, Any], path: Path, rank: int) -> Path:
    """A rank-`rank` LoRA on every attention and feed-forward projection of the UNet (LCM-LoRA's layers)."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(1)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config)
    unet.to_empty(device="cpu")
    targets = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights="gaussian"))
    state = {k: v.half() for k, v in get_peft_model_state_dict(unet).items()}
    path.mkdir(parents=True, exist_ok=True)
    StableDiffusionInpaintPipeline.save_lora_weights(
        path, unet_lora_layers=convert_state_dict_to_diffusers(state), safe_serialization=True
    )
    return path / "pytorch_lora_weights.safetensors"


def photo(size: int) -> Image.Image:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (max(2, size // 64), max(2, size // 64), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def square_mask(size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    return mask


@dataclass
class Row:
    label: str
    times: list[float] = field(default_factory=list)
    note: str = ""
    peak_gib: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


class Timer:
    def __init__(self, device: str) -> None:
        self.device = device

    def sync(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def __call__(self, fn: Any) -> tuple[float, Any]:
        self.sync()
        start = time.perf_counter()
        out = fn()
        self.sync()
        return time.perf_counter() - start, out


def uint8(raw: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(raw * 255.0), 0, 255).astype(np.uint8)


def bench_model(model: str, args: argparse.Namespace, tmp: Path, device: str) -> list[Row]:
    import torch
    from diffusers import AutoPipelineForInpainting

    from inpaint_studio.core.jobspec import Area, InpaintJob, MemoryMode, OutputSize, SpeedOptions
    from inpaint_studio.engine import adapters
    from inpaint_studio.engine.addons import resolve_addon
    from inpaint_studio.engine.runner import Engine
    from tests.tiny_addons import put_in_cache

    size = 64 if args.tiny else SIZES[model]
    steps = args.steps
    started = time.perf_counter()
    path = build_tiny(model, tmp / model) if args.tiny else build(model, tmp / model, device)
    print(f"[{model}] built in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    image, mask = photo(size), square_mask(size)
    timer = Timer(device)
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    rows: list[Row] = []

    # -- plain diffusers: its own pipeline, the default call --------------------------------------------------
    plain_pipe = AutoPipelineForInpainting.from_pretrained(str(path), dtype=dtype, use_safetensors=True).to(device)
    plain_pipe.set_progress_bar_config(disable=True)

    def plain_call() -> np.ndarray:
        return plain_pipe(
            prompt="a red apple on a table",
            image=image,
            mask_image=Image.fromarray(mask),
            height=size,
            width=size,
            strength=1.0,
            guidance_scale=7.5,
            num_inference_steps=steps,
            generator=torch.Generator("cpu").manual_seed(1),
            output_type="np",
        ).images[0]

    plain_call()  # warm-up
    plain = Row("plain diffusers, default call")
    for _ in range(args.repeats):
        elapsed, raw = timer(plain_call)
        plain.times.append(elapsed)
    reference = uint8(raw)
    rows.append(plain)
    plain_pipe = None  # its memory goes before the engine loads the same model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()

    # -- the engine: default, then fastest ------------------------------------------------------------------------
    engine = Engine()
    base = InpaintJob(
        model=str(path),
        prompt="a red apple on a table",
        steps=steps,
        seed=1,
        device=device,
        area=Area.WHOLE,
        preserve_unmasked=False,
        output_size=OutputSize.PROCESSED,
    )

    def engine_row(label: str, job: InpaintJob, warm_label: str | None = None) -> Row:
        elapsed, result = timer(lambda: engine.run(job, image, mask))
        if warm_label:
            rows.append(Row(warm_label, [elapsed], "first call: compiles; later sessions start from the saved cache"))
        row = Row(label)
        for _ in range(args.repeats):
            elapsed, result = timer(lambda: engine.run(job, image, mask))
            row.times.append(elapsed)
        difference = np.abs(np.asarray(result.images[0]).astype(int) - reference.astype(int))
        if job.fast == "off":
            row.note = f"pixels vs plain: max {difference.max()}, mean {difference.mean():.3f}"
        return row

    rows.append(engine_row("engine, default preset", base))
    fastest = base.replace(speed=SpeedOptions(preset="fastest"))
    rows.append(engine_row("engine, fastest preset", fastest, "engine, fastest: compile warm-up"))

    # -- fast mode (LCM, 4 steps, guidance 1) with a random rank-64 LoRA in a private cache -----------------------
    unet_config = json.loads((path / "unet" / "config.json").read_text())
    lora = random_lora(unet_config, tmp / f"{model}-lora", 8 if args.tiny else 64)
    import huggingface_hub.constants as constants

    cache = tmp / "hub"
    constants.HF_HUB_CACHE = str(cache)
    put_in_cache(cache, FAST_IDS[model], {"pytorch_lora_weights.safetensors": lora})
    for preset, label in (("default", "fast mode (LCM, 4 steps), default"), ("fastest", "fast mode, fastest")):
        job = base.replace(fast="lcm", speed=SpeedOptions(preset=preset))
        rows.append(engine_row(label, job))
        rows[-1].note = "seconds per image"

    # -- a LoRA fused (the engine) against unfused (peft layers kept): one UNet call each ---------------------------
    engine.run(base.replace(loras=((str(lora), 0.8),), steps=1), image, mask)
    pipe = engine.pipelines.pipelines()[0]
    unet = pipe.unet
    latent = size // pipe.vae_scale_factor
    sample = torch.randn(2, unet.config.in_channels, latent, latent, device=device, dtype=pipe.dtype)
    context = torch.randn(2, 77, unet.config.cross_attention_dim, device=device, dtype=pipe.dtype)
    added = None
    if model == "sdxl":
        added = {
            "text_embeds": torch.randn(2, 1280 if not args.tiny else 32, device=device, dtype=pipe.dtype),
            "time_ids": torch.randn(2, 6, device=device, dtype=pipe.dtype),
        }

    def unet_call() -> Any:
        with torch.inference_mode():
            return unet(sample, torch.tensor([500, 500], device=device), context, added_cond_kwargs=added)

    lora_runs = (("LoRA fused (engine), one UNet call", True), ("LoRA unfused (peft layers), one UNet call", False))
    for label, fuse in lora_runs:
        adapters.apply(pipe, adapters.AddonRequest(loras=((resolve_addon(str(lora), "lora"), 0.8),), fuse=fuse))
        unet = pipe.unet
        unet_call()
        row = Row(label)
        for _ in range(max(3, args.repeats)):
            row.times.append(timer(unet_call)[0])
        rows.append(row)
    adapters.release(pipe)

    # -- memory modes ---------------------------------------------------------------------------------------------
    if device.startswith("cuda"):
        for mode in (MemoryMode.NONE, MemoryMode.MODEL_OFFLOAD, MemoryMode.SEQUENTIAL_OFFLOAD):
            engine.release()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            job = base.replace(memory_mode=mode, steps=min(steps, 10))
            elapsed, _result = timer(lambda job=job: engine.run(job, image, mask))
            peak = torch.cuda.max_memory_allocated() / 2**30
            rows.append(Row(f"memory {mode.value} ({job.steps} steps, incl. load)", [elapsed], peak_gib=peak))
    engine.release()
    return rows


def table(results: dict[str, list[Row]], args: argparse.Namespace) -> str:
    lines = ["| model | run | median s | vs plain | notes |", "| --- | --- | ---: | ---: | --- |"]
    for model, rows in results.items():
        plain = rows[0].median
        for row in rows:
            ratio = plain / row.median if "plain" not in row.label and row.label.startswith("engine") else None
            speedup = f"{ratio:.2f}x" if ratio and "warm-up" not in row.label else ""
            notes = row.note
            if row.peak_gib is not None:
                notes = f"peak GPU memory {row.peak_gib:.2f} GiB"
            lines.append(f"| {model} | {row.label} | {row.median:.3f} | {speedup} | {notes} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="sd15,sdxl", help="comma-separated: sd15, sdxl")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny models on the CPU (checks the script)")
    parser.add_argument("--json", type=Path, help="also write the raw times here")
    args = parser.parse_args()
    import torch

    if args.tiny:
        device, args.steps = "cpu", min(args.steps, 4)
    elif not torch.cuda.is_available():
        raise SystemExit("This benchmark needs a CUDA GPU (use --tiny for a dry run on the CPU).")
    else:
        device = "cuda"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("INPAINT_STUDIO_CACHE_DIR", str(Path(folder) / "cache"))
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            results[model] = bench_model(model, args, Path(folder), device)
    name = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "CPU"
    print(f"machine: {name}, torch {torch.__version__}, python {platform.python_version()}")
    print(f"{args.steps} steps, CFG 7.5, random weights (fp16 on CUDA), whole frame, same arguments and seed")
    print()
    print(table(results, args))
    if args.json:
        data = {m: [{"label": r.label, "times": r.times, "note": r.note, "peak_gib": r.peak_gib} for r in rows]
                for m, rows in results.items()}  # fmt: skip
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
