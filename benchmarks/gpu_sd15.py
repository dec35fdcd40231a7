"""GPU benchmark (run on a machine with CUDA): full-size SD 1.5 inpainting, engine vs plain diffusers.

The pipeline has SD 1.5 inpainting's real architecture (configs in benchmarks/configs/sd15_inpaint/, the
published ones) with random weights, so no download is needed: speed does not depend on the weights' values.
It is saved with save_pretrained and loaded through the engine's public path, like a user's model.

Prints a table: 512x512, 30 steps, fp16 -- the engine (crop, resize, composite included) vs calling the same
loaded pipeline directly with identical arguments (alternated, after warm-up); masked-region mode on a
6000x4000 photo vs a 512x512 image; peak GPU memory.

    PYTHONPATH=. python benchmarks/gpu_sd15.py [--repeats 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIGS = Path(__file__).with_name("configs") / "sd15_inpaint"


def build_random_sd15_inpaint(path: Path) -> Path:
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.tiny_models import BOS_ID, EOS_ID, make_tokenizer

    def config(name: str) -> dict:
        return json.loads((CONFIGS / f"{name}.json").read_text())

    torch.manual_seed(0)
    with torch.device("cuda"):  # initialise on the GPU: seconds instead of minutes for 1 B parameters
        unet = UNet2DConditionModel.from_config(config("unet"))
        vae = AutoencoderKL.from_config(config("vae"))
        text_config = CLIPTextConfig(**{k: v for k, v in config("text_encoder").items() if k != "architectures"})
        text_config.bos_token_id, text_config.eos_token_id, text_config.pad_token_id = BOS_ID, EOS_ID, EOS_ID
        text_encoder = CLIPTextModel(text_config)
    pipe = StableDiffusionInpaintPipeline(
        unet=unet.half(),
        vae=vae.half(),
        text_encoder=text_encoder.half(),
        tokenizer=make_tokenizer(),
        scheduler=PNDMScheduler.from_config(config("scheduler")),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def photo(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def blob_mask(width: int, height: int, size: int = 300) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cx, cy = width // 2, height // 2
    mask[cy - size // 2 : cy + size // 2, cx - size // 2 : cx + size // 2] = 255
    return mask


def timed(fn) -> float:
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    import torch

    from inpaint_studio.core.errors import EngineError
    from inpaint_studio.core.jobspec import Area, InpaintJob, OutputSize
    from inpaint_studio.engine.runner import Engine

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model = build_random_sd15_inpaint(Path(tmp) / "sd15-inpaint-random")
        build_s = time.perf_counter() - t0
        engine = Engine()
        base = InpaintJob(model=str(model), prompt="a red apple on a table", steps=args.steps, seed=1, device="cuda")
        image, mask = photo(512, 512), blob_mask(512, 512)
        plain = base.replace(area=Area.WHOLE, preserve_unmasked=False, output_size=OutputSize.PROCESSED)
        t0 = time.perf_counter()
        nan_note = ""
        try:
            engine.run(plain, image, mask)  # load + warm up
        except EngineError as exc:  # random fp16 weights may overflow; timing is still meaningful
            nan_note = f" (engine reported: {exc})"
        load_s = time.perf_counter() - t0
        pipe = engine.pipelines._pipe

        def direct():
            return pipe(
                prompt=plain.prompt,
                image=image,
                mask_image=Image.fromarray(mask),
                height=512,
                width=512,
                strength=plain.strength,
                guidance_scale=plain.guidance_scale,
                num_inference_steps=plain.steps,
                generator=torch.Generator("cpu").manual_seed(1),
                output_type="np",
            ).images[0]

        def via_engine(job, img, msk):
            try:
                return engine.run(job, img, msk)
            except EngineError:
                return None

        direct()
        engine_t, direct_t = [], []
        torch.cuda.reset_peak_memory_stats()
        for _ in range(args.repeats):
            engine_t.append(timed(lambda: via_engine(plain, image, mask)))
            direct_t.append(timed(direct))
        peak_512 = torch.cuda.max_memory_allocated() / 2**30
        identical = None
        result = via_engine(plain, image, mask)
        if result is not None:
            raw = direct()
            identical = bool(
                np.array_equal(np.asarray(result.images[0]), np.clip(np.rint(raw * 255.0), 0, 255).astype(np.uint8))
            )

        big_image, big_mask = photo(6000, 4000), blob_mask(6000, 4000)
        masked = base  # masked region, preserve unmasked: the default job
        via_engine(masked, big_image, big_mask)
        small_t, big_t = [], []
        torch.cuda.reset_peak_memory_stats()
        for _ in range(args.repeats):
            small_t.append(timed(lambda: via_engine(masked, image, mask)))
            big_t.append(timed(lambda: via_engine(masked, big_image, big_mask)))
        peak_big = torch.cuda.max_memory_allocated() / 2**30

    med = statistics.median
    name = torch.cuda.get_device_name(0)
    print(f"machine: {name}, torch {torch.__version__}, python {platform.python_version()}")
    print(f"model: SD 1.5 inpainting architecture, random weights, fp16; build {build_s:.1f}s, load {load_s:.1f}s")
    print(f"{args.steps} steps, PNDM, CFG 7.5, 512x512{nan_note}")
    print()
    print(f"{'scenario':<34} {'median s':>9} {'min s':>8} {'it/s':>7}")
    rows = [
        ("engine, 512x512 whole, no composite", engine_t),
        ("plain diffusers, same arguments", direct_t),
        ("engine, masked region on 512x512", small_t),
        ("engine, masked region on 6000x4000", big_t),
    ]
    for label, times in rows:
        print(f"{label:<34} {med(times):>9.3f} {min(times):>8.3f} {args.steps / med(times):>7.1f}")
    print()
    ratio = med(engine_t) / med(direct_t)
    print(f"(a) engine / plain diffusers: {ratio:.3f} (goal <= 1.05); identical pixels: {identical}")
    print(f"(b) masked 6000x4000 / 512x512: {med(big_t) / med(small_t):.3f} (goal <= 1.5)")
    print(f"(d) peak GPU memory: 512x512 {peak_512:.2f} GiB, 6000x4000 masked {peak_big:.2f} GiB")


if __name__ == "__main__":
    main()
